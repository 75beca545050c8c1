"""The ``deepspeech`` command: transcribe audio files with an exported model.

    deepspeech --model output_graph.tflite --scorer kenlm.scorer --audio a.wav b.flac

One line per file (``path: transcript`` when several), in input order. Directories are
searched for wav/flac/mp3/ogg files. ``--extended`` and ``--json`` print exactly what
DeepSpeech 0.9's client printed (the transcript rebuilt from the metadata's tokens; an
indented ``{"transcripts": [{"confidence", "words": [{"word", "start_time",
"duration"}]}]}`` document per file with ``--candidate_transcripts`` candidates).
``--jsonl`` prints one richer JSON object per line and file (file, duration,
transcript, candidates, and with ``--word_timings`` word start/end times);
``--word_timings`` alone prints ``word[start-end]`` text.

Bad input never stops a run: a file that cannot be read (missing, empty, not audio)
is reported on stderr (with ``--jsonl`` also as ``{"file": ..., "error": ...}``) and
skipped; the others are transcribed. Exit status (doc/USING.rst): 0 every file
transcribed, 1 an error before transcribing (model, scorer, no audio files) or no
file readable (as 0.9's client for its one ``--audio`` file), 2 an invalid option,
3 some files skipped, the others transcribed.

Several files use every core (``--threads``, default one per core): threads read the
files and run the model (the TFLite interpreter releases the GIL while it runs, one
single-threaded interpreter per thread), and a pool of as many processes runs the beam
search (flashlight's holds the GIL) on batches of :data:`BATCH_FILES` files, while the
threads go on with the next files. ``--stream`` decodes each file in a thread.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import itertools
import json
import math
import os
import sys
import time
import warnings
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from . import __version__, _decoding
from .audio import AudioError, read_audio
from .errors import DeepSpeechError
from .metadata import Metadata
from .model import Model

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".opus")
BATCH_FILES = 8  # files per beam search batch (output appears batch by batch)
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_SKIPPED = 0, 1, 2, 3  # module docstring


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="deepspeech", description="Speech-to-text with a DeepSpeech TFLite model"
    )
    p.add_argument("--model", help="exported .tflite model")
    p.add_argument("--scorer", help="external scorer (.scorer package)")
    p.add_argument("--audio", nargs="+", help="audio files or directories")
    p.add_argument("--beam_width", type=_positive_int,
                   help="beam width (default: the model's)")  # fmt: skip
    p.add_argument("--lm_alpha", type=_finite_float,
                   help="LM weight (default: the scorer's)")  # fmt: skip
    p.add_argument("--lm_beta", type=_finite_float,
                   help="word bonus (default: the scorer's)")  # fmt: skip
    p.add_argument("--hot_words", help="word:boost[,word:boost...] (needs --scorer)")
    p.add_argument(
        "--json",
        action="store_true",
        help="DeepSpeech 0.9's JSON: candidates with word timings",
    )
    p.add_argument(
        "--candidate_transcripts",
        type=_positive_int,
        default=3,
        help="with --json/--jsonl: number of candidates",
    )
    p.add_argument(
        "--extended",
        action="store_true",
        help="DeepSpeech 0.9's output from the extended metadata",
    )
    p.add_argument(
        "--jsonl",
        action="store_true",
        help="one JSON object per line and file (file, duration, "
        "transcript, candidates)",
    )
    p.add_argument("--word_timings", action="store_true",
                   help="word start/end times: word[start-end] text, or 'words' "
                        "in --jsonl objects")  # fmt: skip
    p.add_argument("--stream", type=_positive_int, metavar="CHUNK",
                   help="feed the audio in chunks of CHUNK samples")  # fmt: skip
    p.add_argument("--threads", type=_positive_int, default=None,
                   help="files in parallel: model threads and beam search "
                        "processes (default: CPU cores)")  # fmt: skip
    p.add_argument("--version", action="store_true", help="print the version and exit")
    return p


def _files(paths: Sequence[str]) -> List[str]:
    """Files to transcribe, in order: each path, or a directory's audio files.

    Raises ValueError for a directory without audio files; a missing file is
    returned as it is and reported when it is read.
    """
    out: List[str] = []
    for path in paths:
        if os.path.isdir(path):
            found = [
                os.path.join(root, n)
                for root, _, names in sorted(os.walk(path))
                for n in sorted(names)
                if n.lower().endswith(AUDIO_EXTENSIONS)
            ]
            if not found:
                raise ValueError(
                    f"--audio: directory {path!r} holds no audio files (looked for "
                    f"{', '.join(AUDIO_EXTENSIONS)} in it and below)"
                )
            out += found
        else:
            out.append(path)
    return out


def _hot_words(model: Model, spec: Optional[str]) -> None:
    for item in filter(None, (spec or "").split(",")):
        word, _, boost = item.rpartition(":")
        if not word:
            raise ValueError(f"--hot_words: {item!r} is not word:boost")
        model.addHotWord(word, float(boost))


def _n_results(args: argparse.Namespace) -> int:
    if args.extended:  # 0.9: --extended wins over --json and decodes one candidate
        return 1
    return args.candidate_transcripts if args.json or args.jsonl else 1


def _transcribe(model: Model, path: str, args: argparse.Namespace) -> Dict[str, Any]:
    """One file, start to end, in the calling thread (a skip record if unreadable)."""
    try:
        audio, duration = read_audio(path, model.sampleRate())
    except AudioError as err:
        return _skipped(path, err)
    if args.stream:
        stream = model.createStream()
        for start in range(0, len(audio), args.stream):
            stream.feedAudioContent(audio[start : start + args.stream])
        meta = stream.finishStreamWithMetadata(_n_results(args))
    else:
        meta = model.sttWithMetadata(audio, _n_results(args))
    return _result(path, duration, meta)


def _probabilities(model: Model, path: str) -> Tuple[str, float, Any]:
    """(path, duration s, probs float32 [T, n_classes]) of one file, or
    (path, 0, AudioError) when it cannot be read."""
    try:
        audio, duration = read_audio(path, model.sampleRate())
    except AudioError as err:
        return path, 0.0, err
    return path, duration, model.probabilities(audio)


def _batches(items: Iterable[Any], size: int) -> Iterator[List[Any]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _transcribe_all(
    model: Model, files: Sequence[str], args: argparse.Namespace, workers: int
) -> Iterator[Dict[str, Any]]:
    """Results of ``files`` in input order, using ``workers`` threads and processes.

    An unreadable file gives a skip record (``"error"``) in its place.
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        if args.stream or workers == 1:
            yield from pool.map(lambda f: _transcribe(model, f, args), files)
            return
        settings = model._settings()
        decoder = _decoding.batch_decoder(
            model.alphabet, settings, _n_results(args), workers
        )
        with decoder:
            loaded = pool.map(lambda f: _probabilities(model, f), files)
            for batch in _batches(loaded, BATCH_FILES):
                good = [item for item in batch if not isinstance(item[2], Exception)]
                decoded = iter(
                    _decoding.decode_batch(
                        decoder, [probs for _, _, probs in good], model.alphabet,
                        model._frame_s,
                    )  # fmt: skip
                )
                for path, duration, probs in batch:
                    if isinstance(probs, Exception):
                        yield _skipped(path, probs)
                    else:
                        meta = Metadata(tuple(next(decoded)))
                        yield _result(path, duration, meta)


def _result(path: str, duration: float, meta: Metadata) -> Dict[str, Any]:
    best = meta.transcripts[0]
    return {
        "file": path,
        "duration": duration,
        "transcript": best.text,
        "words": best.to_dict()["words"],
        "transcripts": [t.to_dict() for t in meta.transcripts],
        "metadata": meta,
    }


def upstream_words(candidate: Any) -> List[Dict[str, Any]]:
    """Words as 0.9's client.py listed them (its words_from_candidate_transcript).

    A word runs from its first token to the next space token, or to the last token;
    its duration is the start of that closing token minus its own start (never
    negative), rounded to 4 places. A closing space with no word before it gives an
    empty word, as there. (Our own ``--word_timings`` end a word with its last frame.)
    """
    words: List[Dict[str, Any]] = []
    word, start = "", 0  # an int, as there: an empty word prints "start_time": 0
    tokens = candidate.tokens
    for i, token in enumerate(tokens):
        if token.text != " ":
            if not word:
                start = token.start_time
            word += token.text
        if token.text == " " or i == len(tokens) - 1:
            duration = max(token.start_time - start, 0)
            words.append(
                {"word": word, "start_time": round(start, 4),
                 "duration": round(duration, 4)}
            )  # fmt: skip
            word, start = "", 0
    return words


def upstream_json(meta: Metadata) -> str:
    """DeepSpeech 0.9 client.py's ``--json`` document (metadata_json_output)."""
    return json.dumps(
        {
            "transcripts": [
                {"confidence": t.confidence, "words": upstream_words(t)}
                for t in meta.transcripts
            ]
        },
        indent=2,
    )


def _skipped(path: str, err: Exception) -> Dict[str, Any]:
    return {"file": path, "error": str(err)}


def _format(result: Dict[str, Any], args: argparse.Namespace, several: bool) -> str:
    meta = result.pop("metadata")
    if args.extended:  # 0.9: the transcript rebuilt from the first candidate's tokens
        return _prefixed(result, meta.transcripts[0].text, several)
    if args.json:
        return _prefixed(result, upstream_json(meta), several)
    if args.jsonl:
        if not args.word_timings:
            result = {k: v for k, v in result.items() if k != "words"}
        return json.dumps(result, ensure_ascii=False)
    text = result["transcript"]
    if args.word_timings:
        text = " ".join(
            f"{w['word']}[{w['start_time']:.2f}-{w['start_time'] + w['duration']:.2f}]"
            for w in result["words"]
        )
    return _prefixed(result, text, several)


def _prefixed(result: Dict[str, Any], text: str, several: bool) -> str:
    return f"{result['file']}: {text}" if several else text


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command; returns the exit status (module docstring).

    An invalid option exits with status 2 (argparse's SystemExit).
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if args.version:
        print(f"deepspeech {__version__}")
        return EXIT_OK
    if not args.model or not args.audio:
        parser.error("--model and --audio are required")
    if (args.lm_alpha is not None or args.lm_beta is not None) and not args.scorer:
        parser.error("--lm_alpha and --lm_beta need --scorer")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        return _run(args)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"Warning: {message}", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    warnings.showwarning = _show_warning  # restored by main's catch_warnings
    try:
        start = time.perf_counter()
        files = _files(args.audio)
        workers = max(1, min(args.threads or os.cpu_count() or 1, len(files)))
        model = Model(
            args.model, num_threads=1 if workers > 1 else None,
            max_interpreters=workers,
        )  # fmt: skip
        model.configureDecoder(
            args.beam_width, args.scorer, args.lm_alpha, args.lm_beta
        )
        _hot_words(model, args.hot_words)
        print(f"Loaded model in {time.perf_counter() - start:.3f}s.", file=sys.stderr)
        skipped = 0
        for result in _transcribe_all(model, files, args, workers):
            if "error" in result:
                skipped += 1
                print(f"deepspeech: skipped: {result['error']}", file=sys.stderr)
                if args.jsonl:
                    print(json.dumps(result, ensure_ascii=False), flush=True)
                continue
            print(_format(result, args, len(files) > 1), flush=True)
    except (DeepSpeechError, ValueError, OSError, RuntimeError) as err:
        # RuntimeError: the TFLite runtime's errors (unreadable audio files are skipped)
        print(f"deepspeech: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    if skipped:
        print(
            f"deepspeech: {skipped} of {len(files)} files skipped (see above); "
            f"{len(files) - skipped} transcribed",
            file=sys.stderr,
        )
        # Nothing transcribed at all (e.g. 0.9's one --audio file unreadable): an
        # error, exit 1 as DeepSpeech 0.9's client; some transcribed: 3.
        return EXIT_ERROR if skipped == len(files) else EXIT_SKIPPED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
