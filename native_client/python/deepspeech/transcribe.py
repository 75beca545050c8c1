"""``deepspeech-transcribe``: long recordings, lists and folders -> JSON, SRT, WebVTT.

    deepspeech-transcribe --model output_graph.tflite --scorer kenlm.scorer \
        --src talks/ --recursive --dst transcripts/

DeepSpeech 0.9's ``transcribe.py`` interface (``--src FILE|DIR|LIST``, ``--dst``,
``--recursive``, ``--force``, ``--vad_aggressiveness``, ``--batch_size``) on the
TensorFlow-free client; the repository's top-level ``transcribe.py`` adds 0.9's
``--checkpoint_dir`` mode. Each file is read at any rate or channel count
(:func:`deepspeech.audio.read_audio`), split at pauses (:mod:`deepspeech.vad`), and its
segments run in batches of ``--batch_size``: threads run the model (one TFLite
interpreter each; the interpreter releases the GIL) and a pool of processes runs the
beam search, ``--workers`` of each (default: all cores). Outputs per file are described
in :mod:`deepspeech.outputs`.

Resume: a file whose outputs all exist is skipped (``--force`` redoes it); outputs are
written atomically, JSON last, so a killed run resumes where it stopped. A file that
cannot be read is skipped and reported at the end (exit status 3); the others are
still transcribed. See doc/USING.rst.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import json
import logging
import os
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from . import _decoding, outputs, vad
from .audio import read_audio
from .errors import DeepSpeechError
from .metadata import CandidateTranscript
from .model import Model

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".opus")
EXIT_SKIPPED = 3  # some files could not be read (the others were transcribed)
LOG = logging.getLogger("deepspeech.transcribe")


# --- what to transcribe, and where the outputs go ---------------------------------


@dataclass(frozen=True)
class Job:
    """One audio file and its output path without extension (``base.json`` ...)."""

    src: str
    base: str


def find_jobs(src: str, dst: Optional[str], recursive: bool) -> List[Job]:
    """Jobs for ``--src`` (audio file, directory, .catalog, .csv or list file).

    Without ``dst`` the outputs go next to each audio file. With a directory source,
    ``dst`` is a directory that mirrors the source tree; with one audio file, ``dst`` is
    a directory or the output path (any extension is dropped). Raises ValueError.
    """
    if os.path.isdir(src):
        files = _audio_in(src, recursive)
        return [Job(f, _base_under(f, src, dst)) for f in files]
    if not os.path.isfile(src):
        raise ValueError(f"--src {src!r}: no such file or directory")
    if src.lower().endswith(AUDIO_EXTENSIONS):
        if dst is None:
            return [Job(src, os.path.splitext(src)[0])]
        if os.path.isdir(dst) or dst.endswith(os.sep):
            stem = os.path.splitext(os.path.basename(src))[0]
            return [Job(src, os.path.join(dst, stem))]
        return [Job(src, os.path.splitext(dst)[0])]
    if src.endswith(".catalog"):
        return _catalog_jobs(src, dst)
    root = os.path.dirname(os.path.abspath(src))
    return [Job(f, _base_under(f, root, dst)) for f in _listed(src)]


def _audio_in(directory: str, recursive: bool) -> List[str]:
    if not recursive:
        names = sorted(os.listdir(directory))
        return [
            os.path.join(directory, n)
            for n in names
            if n.lower().endswith(AUDIO_EXTENSIONS)
            and os.path.isfile(os.path.join(directory, n))
        ]
    found = []
    for root, dirs, names in os.walk(directory):
        dirs.sort()
        found += [
            os.path.join(root, n)
            for n in sorted(names)
            if n.lower().endswith(AUDIO_EXTENSIONS)
        ]
    return found


def _base_under(path: str, root: str, dst: Optional[str]) -> str:
    stem = os.path.splitext(path)[0]
    if dst is None:
        return stem
    rel = os.path.relpath(os.path.abspath(stem), os.path.abspath(root))
    if rel.startswith(os.pardir):
        rel = os.path.basename(stem)
    return os.path.join(dst, rel)


def _catalog_jobs(path: str, dst: Optional[str]) -> List[Job]:
    """DSAlign's catalog (DeepSpeech 0.9): [{"audio": path, "tlog": path}, ...]."""
    if dst:
        raise ValueError("--dst is not supported with a .catalog --src (it names them)")
    root = os.path.dirname(os.path.abspath(path))
    with open(path, encoding="utf-8") as f:
        entries = json.load(f)
    try:
        return [
            Job(
                os.path.join(root, e["audio"]),
                os.path.splitext(os.path.join(root, e["tlog"]))[0],
            )
            for e in entries
        ]
    except (TypeError, KeyError) as err:
        raise ValueError(f"{path}: catalog entries need 'audio' and 'tlog'") from err


def _listed(path: str) -> List[str]:
    """Audio paths of a DeepSpeech CSV (wav_filename) or of a list, one per line."""
    root = os.path.dirname(os.path.abspath(path))
    with open(path, encoding="utf-8", newline="") as f:
        if path.lower().endswith(".csv"):
            rows = csv.DictReader(f)
            if "wav_filename" not in (rows.fieldnames or []):
                raise ValueError(f"{path}: a CSV --src needs a wav_filename column")
            names = [row["wav_filename"] for row in rows]
        else:
            lines = (line.strip() for line in f)
            names = [n for n in lines if n and not n.startswith("#")]
    return [os.path.join(root, n) for n in names]


# --- transcription -------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """Segmentation and batching (the CLI's options)."""

    vad_aggressiveness: int = 3
    batch_size: int = 40  # segments per model/decoder batch (DeepSpeech 0.9: 40)
    max_segment_ms: int = 30000
    workers: int = 1


class Transcriber:
    """Transcribes files with one model, a thread pool and a decoder process pool.

    Use as a context manager (the pools are closed at exit).
    """

    def __init__(self, model: Model, settings: Settings) -> None:
        self.model = model
        self.settings = settings
        self._threads = concurrent.futures.ThreadPoolExecutor(settings.workers)
        self._decoder = None
        if settings.workers > 1:
            self._decoder = _decoding.batch_decoder(
                model.alphabet, model._settings(), 1, settings.workers
            )

    def __enter__(self) -> "Transcriber":
        return self

    def __exit__(self, *exc: Any) -> None:
        self._threads.shutdown()
        if self._decoder is not None:
            self._decoder.close()

    def transcribe_file(
        self, path: str, on_audio: Callable[[float], None] = lambda s: None
    ) -> Dict[str, Any]:
        """The result dict of one file (:mod:`deepspeech.outputs`).

        ``on_audio(seconds)`` is called as batches of segments finish. Raises what
        reading the file raises (RuntimeError, OSError, ValueError).
        """
        rate = self.model.sampleRate()
        audio, duration = read_audio(path, rate)
        segments = vad.split(
            audio,
            rate,
            self.settings.vad_aggressiveness,
            max_segment_ms=self.settings.max_segment_ms,
        )
        results = []
        done = 0
        for batch in _batches(segments, self.settings.batch_size):
            results += self._batch(audio, batch)
            end = batch[-1].end
            on_audio((end - done) / rate)
            done = end
        on_audio((len(audio) - done) / rate)
        return file_result(path, duration, rate, results)

    def _batch(self, audio: np.ndarray, batch: Sequence[vad.Segment]) -> List[Dict]:
        rate = self.model.sampleRate()
        probs = list(
            self._threads.map(
                lambda s: self.model.probabilities(audio[s.start : s.end]), batch
            )
        )
        if self._decoder is not None:
            best = [
                c[0]
                for c in _decoding.decode_batch(
                    self._decoder, probs, self.model.alphabet, self.model._frame_s
                )
            ]
        else:
            best = [self.model._metadata(p, 1).transcripts[0] for p in probs]
        return [
            segment_result(s.start / rate, s.end / rate, p, c, self.model.alphabet)
            for s, p, c in zip(batch, probs, best)
        ]


def _batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def segment_result(
    start: float,
    end: float,
    probs: np.ndarray,
    best: CandidateTranscript,
    alphabet: "_decoding.Alphabet",
) -> Dict[str, Any]:
    """A segment's dict: times in s from the file's start, words with confidence."""
    confidences = _word_confidences(best, probs, alphabet)
    words = [
        {
            "word": w.word,
            "start": round(start + w.start_time, 3),
            "end": round(start + w.end_time, 3),
            "confidence": c,
        }
        for w, c in zip(best.words, confidences)
    ]
    return {
        "start": round(start, 3),
        "end": round(end, 3),
        "transcript": best.text,
        "confidence": float(best.confidence),
        "words": words,
    }


def _word_confidences(
    best: CandidateTranscript, probs: np.ndarray, alphabet: "_decoding.Alphabet"
) -> List[Optional[float]]:
    """Per word: mean probability of its characters at their emission frames."""
    out: List[Optional[float]] = []
    current: List[float] = []
    for token in list(best.tokens) + [None]:
        if token is None or token.text == " ":
            if current:
                out.append(round(float(np.mean(current)), 4))
            current = []
            continue
        try:  # a character of a bytes model: its first byte, at the token's frame
            label = alphabet.encode(token.text)[0]
            current.append(float(probs[token.timestep, label]))
        except (ValueError, IndexError):  # U+FFFD of a cut-off character: no label
            current.append(float("nan"))
    return [None if c is not None and np.isnan(c) else c for c in out]


def file_result(
    path: str, duration: float, sample_rate: int, segments: List[Dict[str, Any]]
) -> Dict[str, Any]:
    return {
        "file": path,
        "duration": round(duration, 3),
        "sample_rate": sample_rate,
        "transcript": " ".join(s["transcript"] for s in segments if s["transcript"]),
        "segments": segments,
    }


# --- a run over many files ---------------------------------------------------------


@dataclass
class RunReport:
    done: List[str]
    already_done: List[str]
    failed: List[Tuple[str, str]]  # (file, reason)
    audio_s: float
    n_segments: int
    wall_s: float

    def summary(self) -> str:
        rtf = self.wall_s / self.audio_s if self.audio_s else 0.0
        lines = [
            f"Transcribed {len(self.done)} files ({self.audio_s:.1f} s of audio, "
            f"{self.n_segments} segments) in {self.wall_s:.1f} s (real-time factor "
            f"{rtf:.3f}); {len(self.already_done)} already done (use --force to redo)"
        ]
        if self.failed:
            lines.append(f"Skipped {len(self.failed)} files that could not be read:")
            lines += [f"  {path}: {reason}" for path, reason in self.failed]
        return "\n".join(lines)


def run(
    transcriber: Transcriber,
    jobs: Sequence[Job],
    formats: Sequence[str],
    force: bool,
    progress: Optional["Progress"] = None,
) -> RunReport:
    """Transcribe ``jobs`` in order, skipping finished ones unless ``force``."""
    start = time.perf_counter()
    report = RunReport([], [], [], 0.0, 0, 0.0)
    todo = []
    for job in jobs:
        if not force and outputs.is_done(job.base, formats):
            report.already_done.append(job.src)
        else:
            todo.append(job)
    progress = progress or Progress(todo, show_bar=False)
    for job in todo:
        try:
            result = transcriber.transcribe_file(job.src, progress.add_audio)
        except (RuntimeError, OSError, ValueError) as err:
            # RuntimeError covers soundfile's LibsndfileError and DeepSpeechError.
            report.failed.append((job.src, str(err) or type(err).__name__))
            progress.file_done(job.src, failed=True)
            continue
        outputs.write_all(result, job.base, formats)
        report.done.append(job.src)
        report.audio_s += result["duration"]
        report.n_segments += len(result["segments"])
        progress.file_done(job.src)
    progress.finish()
    report.wall_s = time.perf_counter() - start
    return report


class Progress:
    """A progressbar2 bar over audio seconds (on a TTY), or a log line per file."""

    def __init__(self, jobs: Sequence[Job], show_bar: bool) -> None:
        self.n_files = len(jobs)
        self.files_done = 0
        self.audio_done = 0.0
        self.total_s = sum(_duration(j.src) for j in jobs)
        self.start = time.perf_counter()
        self.bar = None
        if show_bar and self.total_s > 0:
            import progressbar

            self.bar = progressbar.ProgressBar(
                max_value=self.total_s,
                widgets=[
                    progressbar.Variable("files", format="files {formatted_value}"),
                    " | audio ",
                    progressbar.Percentage(),
                    " ",
                    progressbar.Bar(),
                    " ",
                    progressbar.ETA(),
                ],
                variables={"files": f"0/{self.n_files}"},
                fd=sys.stderr,
            )
            self.bar.start()

    def add_audio(self, seconds: float) -> None:
        self.audio_done = min(self.total_s, self.audio_done + seconds)
        if self.bar is not None:
            self.bar.update(self.audio_done)

    def file_done(self, path: str, failed: bool = False) -> None:
        self.files_done += 1
        files = f"{self.files_done}/{self.n_files}"
        if self.bar is not None:
            self.bar.update(self.audio_done, files=files)
            return
        elapsed = time.perf_counter() - self.start
        LOG.info(
            "%s %s (%s files, %.0f/%.0f audio s, %.0f s)",
            "skipped" if failed else "transcribed",
            path,
            files,
            self.audio_done,
            self.total_s,
            elapsed,
        )

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.finish()


def _duration(path: str) -> float:
    """Seconds of audio in ``path`` from its header; 0 if it cannot be read."""
    import soundfile

    try:
        info = soundfile.info(path)
        return info.frames / float(info.samplerate)
    except (RuntimeError, OSError, ValueError):
        return 0.0


# --- command line --------------------------------------------------------------------


def _bool(text: str) -> bool:
    """absl-style boolean values, so 0.9's ``--force=true`` still parses."""
    value = text.strip().lower()
    if value in ("1", "true", "yes", "t", "y"):
        return True
    if value in ("0", "false", "no", "f", "n"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _bool_flag(
    p: argparse.ArgumentParser, name: str, default: Optional[bool], help: str
) -> None:
    """``--name``, ``--name=true|false`` or ``--name false``, as absl booleans."""
    p.add_argument(name, type=_bool, nargs="?", const=True, default=default, help=help)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The transcribe options (also used by the repository's transcribe.py)."""
    p.add_argument(
        "--src",
        required=True,
        help="audio file, directory, DSAlign .catalog, DeepSpeech CSV or "
        "a text file listing audio paths (one per line)",
    )
    p.add_argument(
        "--dst",
        help="output directory (or output path for one file); "
        "default: next to each audio file",
    )
    _bool_flag(p, "--recursive", False, "scan --src directories recursively")
    _bool_flag(p, "--force", False, "redo files whose outputs already exist")
    p.add_argument(
        "--vad_aggressiveness",
        type=int,
        default=3,
        choices=range(4),
        help="how aggressively the VAD splits (0 least .. 3 most)",
    )
    p.add_argument(
        "--batch_size",
        type=int,
        default=40,
        help="segments per batch (model threads and decoder processes)",
    )
    p.add_argument(
        "--max_segment_ms",
        type=int,
        default=30000,
        help="cut longer voiced segments at their quietest frame",
    )
    p.add_argument(
        "--outputs",
        default="json,srt,vtt",
        help=f"comma-separated formats to write: {','.join(outputs.FORMATS)}",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="model threads and decoder processes (default: CPU cores)",
    )
    p.add_argument(
        "--scorer",
        "--scorer_path",
        dest="scorer",
        help="external scorer (.scorer package)",
    )
    p.add_argument("--beam_width", type=int, help="beam width (default: the model's)")
    p.add_argument("--lm_alpha", type=float, help="LM weight (default: the scorer's)")
    p.add_argument("--lm_beta", type=float, help="word bonus (default: the scorer's)")
    _bool_flag(p, "--show_progressbar", None, "progress bar (default: on a TTY)")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="deepspeech-transcribe",
        description="Transcribe long audio files, lists and folders (VAD-split) to "
        "JSON, SRT and WebVTT with a DeepSpeech TFLite model",
    )
    p.add_argument("--model", required=True, help="exported .tflite model")
    add_arguments(p)
    return p


def formats_of(spec: str) -> List[str]:
    formats = [f.strip() for f in spec.split(",") if f.strip()]
    bad = [f for f in formats if f not in outputs.FORMATS]
    if bad or not formats:
        raise ValueError(
            f"--outputs {spec!r}: choose from {', '.join(outputs.FORMATS)}"
        )
    return formats


def load_model(args: argparse.Namespace, model_path: str, workers: int) -> Model:
    """The Model with the command line's scorer and decoder settings."""
    model = Model(model_path, num_threads=1 if workers > 1 else None)
    model.configureDecoder(args.beam_width, args.scorer, args.lm_alpha, args.lm_beta)
    return model


def transcribe_with(args: argparse.Namespace, model_path: str) -> int:
    """Run the command line ``args`` with the model at ``model_path``; exit status."""
    workers = max(1, args.workers or len(os.sched_getaffinity(0)))
    settings = Settings(
        args.vad_aggressiveness, max(1, args.batch_size), args.max_segment_ms, workers
    )
    formats = formats_of(args.outputs)
    jobs = find_jobs(args.src, args.dst, args.recursive)
    model = load_model(args, model_path, workers)
    show = (
        sys.stderr.isatty() if args.show_progressbar is None else args.show_progressbar
    )
    todo = [j for j in jobs if args.force or not outputs.is_done(j.base, formats)]
    with Transcriber(model, settings) as transcriber:
        report = run(transcriber, jobs, formats, args.force, Progress(todo, show))
    print(report.summary(), file=sys.stderr)
    return EXIT_SKIPPED if report.failed else 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    return main_with(args, args.model)


def main_with(args: argparse.Namespace, model_path: str) -> int:
    """The command's edge: logging, warnings and errors of :func:`transcribe_with`."""
    logging.basicConfig(format="%(message)s")  # does nothing if logging is set up
    LOG.setLevel(logging.INFO)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = _show_warning  # restored by catch_warnings
        try:
            return transcribe_with(args, model_path)
        except (DeepSpeechError, ValueError, OSError) as err:
            print(f"deepspeech-transcribe: error: {err}", file=sys.stderr)
            return 1


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"Warning: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
