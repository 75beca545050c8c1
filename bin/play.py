#!/usr/bin/env python3
"""Play or write (augmented) samples of a CSV, a .sdb or one audio file: hear what
training sees (DeepSpeech 0.9's ``bin/play.py``, with ``--output`` and
``--random_seed`` added).

    python bin/play.py data/train.csv --augment "reverb[delay=50,decay=2]" \\
        --number 3 --output /tmp/heard
    python bin/play.py test.wav --augment "codec[bitrate=3200]" --pipe > out.wav

Sample ``k`` (its row in the CSV or .sdb) gets the sample- and signal-domain
augmentations that training's first epoch gives row ``k`` under the same
``--random_seed``, at clock ``--clock``. Spectrogram- and features-domain kinds change
no audio and are left out (a note on stderr says which). ``--output DIR`` writes
``DIR/sampleNNNNNNNN.wav`` (NNNNNNNN: the row); ``--pipe`` writes the first as WAV to
stdout; otherwise the samples play through ``simpleaudio`` when it is installed.
"""

import argparse
import io
import os
import random
import sys
from typing import Iterator, List, Optional, Sequence, Tuple

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import soundfile  # noqa: E402

from util.audio import write_wav  # noqa: E402
from util.augment_graph import WaveformAugmenter  # noqa: E402
from util.augmentations import parse_augmentations  # noqa: E402
from util.feeding import read_sample_audio  # noqa: E402
from util.sample_collections import SDBReader, is_sdb, sample_ref  # noqa: E402
from util.samples import read_csv_rows  # noqa: E402

DEFAULT_SEED = 4568  # DeepSpeech.py's --random_seed default


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Play or write (augmented) samples of a sample DB, CSV or WAV file"
    )
    parser.add_argument("source", help="Sample DB, CSV or WAV file to play from")
    parser.add_argument(
        "--start",
        type=int,
        default=0,
        help="sample index to start at (negative: from the end)",
    )
    parser.add_argument(
        "--number",
        type=int,
        default=-1,
        help="number of samples (-1: to the end of the collection)",
    )
    parser.add_argument(
        "--random",
        action="store_true",
        help="pick samples at random (seeded by --random_seed)",
    )
    parser.add_argument(
        "--augment",
        action="append",
        help="an augmentation, as DeepSpeech.py's --augment",
    )
    parser.add_argument(
        "--clock",
        type=float,
        default=0.5,
        help="training progress the value ranges are taken at, "
        "0.0 (start values) to 1.0 (end values)",
    )
    parser.add_argument(
        "--random_seed",
        type=int,
        default=DEFAULT_SEED,
        help="DeepSpeech.py's --random_seed: the same draws as "
        "training's first epoch",
    )
    parser.add_argument(
        "--audio_sample_rate",
        type=int,
        default=16000,
        help="rate samples are read and written at (Hz)",
    )
    parser.add_argument("--output", help="write the samples as WAVs into this dir")
    parser.add_argument(
        "--pipe",
        action="store_true",
        help="write the first sample as WAV to stdout (--number 1)",
    )
    parser.add_argument("--quiet", action="store_true", help="no sample info on stderr")
    return parser  # fmt: skip


def collection(source: str) -> List[Tuple[str, str]]:
    """(reference, transcript) of every sample of a CSV, .sdb or audio file."""
    if is_sdb(source):
        with SDBReader(source) as reader:
            return [(sample_ref(source, e.index), e.transcript or "") for e in reader]
    if source.lower().endswith(".csv"):
        rows = read_csv_rows(source, required=("wav_filename",))
        return [(row.wav_filename, row.transcript) for row in rows]
    if not os.path.isfile(source):
        raise ValueError(f"{source!r} is not a file")
    return [(source, "")]


def play_order(n: int, args: argparse.Namespace) -> Iterator[int]:
    """Indices to play: from --start on (or random), --number of them."""
    if not n:
        raise ValueError(f"{args.source!r} holds no samples")
    start = args.start + n if args.start < 0 else args.start
    if not 0 <= start < n:
        raise ValueError(f"no sample with index {args.start} ({n} samples)")
    count = 1 if args.pipe else (args.number if args.number >= 0 else n - start)
    rng = random.Random(args.random_seed)
    for k in range(count):
        yield rng.randrange(n) if args.random else (start + k) % n


def run(args: argparse.Namespace) -> int:
    augmentations = parse_augmentations(args.augment)
    rate = args.audio_sample_rate
    augment = WaveformAugmenter(augmentations, rate, read_sample_audio,
                                args.random_seed)  # fmt: skip
    if augment.unheard and not args.quiet:
        kinds = ", ".join(a.KIND for a in augment.unheard)
        print(f"note: {kinds} change the spectrogram or features, not the audio: "
              "left out here, applied in training", file=sys.stderr)  # fmt: skip
    play = None if (args.output or args.pipe) else _player()
    samples = collection(args.source)
    for index in play_order(len(samples), args):
        ref, transcript = samples[index]
        audio = augment(read_sample_audio(ref, rate), index, args.clock)
        if not args.quiet:
            label = f'\n  "{transcript}"' if transcript else ""
            print(f'Sample {index} "{ref}"{label}', file=sys.stderr)
        if args.pipe:
            sys.stdout.buffer.write(_wav_bytes(audio, rate))
        elif args.output:
            os.makedirs(args.output, exist_ok=True)
            write_wav(os.path.join(args.output, f"sample{index:08d}.wav"), audio, rate)
        else:
            play(audio, rate)
    return 0


def _wav_bytes(audio: np.ndarray, rate: int) -> bytes:
    out = io.BytesIO()
    soundfile.write(out, audio, rate, subtype="PCM_16", format="WAV")
    return out.getvalue()


def _player():
    try:
        import simpleaudio
    except ImportError:
        raise ValueError(
            "playing needs the simpleaudio package (pip install simpleaudio); "
            "or write WAVs with --output DIR or --pipe"
        ) from None

    def play(audio: np.ndarray, rate: int) -> None:
        pcm = np.clip(np.round(audio * 32767), -32768, 32767).astype("<i2")
        simpleaudio.play_buffer(pcm.tobytes(), 1, 2, rate).wait_done()

    return play


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except (ValueError, OSError) as err:
        print(f"play.py: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(" Stopped", file=sys.stderr)
        return 0


if __name__ == "__main__":
    sys.exit(main())
