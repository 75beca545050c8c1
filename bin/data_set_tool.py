#!/usr/bin/env python3
"""Convert sample CSVs to TFRecord shards and back.

    bin/data_set_tool.py to-tfrecord data/librispeech/librivox-train-clean-100.csv \\
        data/shards/train --partition_size 2000
    bin/data_set_tool.py to-csv 'data/shards/train-*.tfrecord' data/from_shards

``to-tfrecord`` validates the CSVs like the trainer (``--alphabet``; bad rows are left
out and reported) and writes ``<prefix>-<k>-of-<n>.tfrecord``, ``--partition_size``
samples per shard, in CSV order. Each shard is written under a temporary name and
renamed when complete, so an interrupted run is restarted by running it again
(complete shards are skipped) or from a given shard with ``--starting_position``,
like tensorflow/models deep_speech_1's ``prepare_libri``. ``--kind audio`` (default)
stores 16-bit PCM at 16 kHz; ``--kind features`` stores MFCCs (default FeatureConfig),
which saves the feature computation but cannot be mixed with other sources.

Train on shards by passing them (or a glob) wherever a CSV goes:
``--train_files 'data/shards/train-*.tfrecord',extra.csv``.

``to-csv`` writes every audio record back as a WAV plus ``<--csv_name>``.
"""

import argparse
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import List, Optional, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from ctcdecode import load_alphabet  # noqa: E402
from util import tfrecords  # noqa: E402
from util.audio import read_audio, write_wav  # noqa: E402
from util.config import FeatureConfig  # noqa: E402
from util.importing import shards  # noqa: E402
from util.importing.importers import write_csv  # noqa: E402
from util.samples import Sample, read_sample_set  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def shard_name(prefix: str, k: int, n: int) -> str:
    return f"{prefix}-{k:05d}-of-{n:05d}{tfrecords.SUFFIX}"


def _record(sample: Sample, kind: str, cfg: FeatureConfig) -> bytes:
    audio, _ = read_audio(sample.wav_filename, cfg.audio_sample_rate)
    if kind == tfrecords.KIND_AUDIO:
        return shards.audio_example(
            sample.transcript, sample.wav_filename, audio, cfg.audio_sample_rate
        )
    from util.features import compute_mfcc

    features, _ = compute_mfcc(audio, cfg)
    return shards.features_example(
        sample.transcript, sample.wav_filename, features.numpy(), cfg
    )


def to_tfrecord(args: argparse.Namespace) -> List[str]:
    """Write the shards; returns the paths of the shards written by this run."""
    cfg = FeatureConfig()
    alphabet = load_alphabet(args.alphabet)
    samples: List[Sample] = []
    for csv_path in args.csv:
        samples += read_sample_set(csv_path, alphabet, cfg).samples
    size = args.partition_size
    n_shards = max(1, -(-len(samples) // size))
    os.makedirs(os.path.dirname(os.path.abspath(args.prefix)), exist_ok=True)
    written = []
    with ThreadPoolExecutor(args.workers) as pool:
        for k in range(args.starting_position, n_shards):
            path = shard_name(args.prefix, k, n_shards)
            if os.path.exists(path):
                print(f"{path} exists, skipped")
                continue
            part = samples[k * size : (k + 1) * size]
            records = list(pool.map(lambda s: _record(s, args.kind, cfg), part))
            shards.write_shard(path, records)
            written.append(path)
            print(f"wrote {path} ({len(part)} samples)")
    return written


def to_csv(args: argparse.Namespace) -> str:
    """Write each audio record as a WAV and the CSV listing them; returns the CSV."""
    wav_dir = os.path.join(args.out_dir, "wav")
    os.makedirs(wav_dir, exist_ok=True)
    rows = []
    for shard in tfrecords.shard_paths(args.shards):
        stem = os.path.basename(shard)[: -len(tfrecords.SUFFIX)]
        for index, (offset, data) in enumerate(tfrecords.iter_records(shard)):
            example = tfrecords.parse_example(data)
            audio, rate = tfrecords.example_audio(example, f"{shard}#{offset}")
            wav = os.path.join(wav_dir, f"{stem}-{index:06d}.wav")
            write_wav(wav, audio, rate)
            rows.append(
                (
                    os.path.relpath(wav, args.out_dir),
                    os.path.getsize(wav),
                    tfrecords.example_transcript(example),
                )
            )
    csv_path = os.path.join(args.out_dir, args.csv_name)
    write_csv(csv_path, rows)
    print(f"wrote {csv_path} ({len(rows)} samples)")
    return csv_path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("to-tfrecord", help="CSVs -> TFRecord shards")
    up.add_argument("csv", nargs="+", help="sample CSVs, concatenated in order")
    up.add_argument("prefix", help="shard path prefix, e.g. data/shards/train")
    up.add_argument("--partition_size", type=int, default=1000, help="samples/shard")
    up.add_argument("--starting_position", type=int, default=0, help="first shard")
    up.add_argument(
        "--kind",
        choices=(tfrecords.KIND_AUDIO, tfrecords.KIND_FEATURES),
        default=tfrecords.KIND_AUDIO,
    )
    up.add_argument(
        "--alphabet", default=os.path.join(REPO_ROOT, "data", "alphabet.txt")
    )
    up.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    down = commands.add_parser("to-csv", help="TFRecord shards -> WAVs + CSV")
    down.add_argument("shards", help="a shard or a glob of shards (quote it)")
    down.add_argument("out_dir")
    down.add_argument("--csv_name", default="samples.csv")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "to-tfrecord":
            if args.partition_size < 1 or args.starting_position < 0:
                raise ValueError(
                    "--partition_size must be >= 1, --starting_position >= 0"
                )
            to_tfrecord(args)
        else:
            to_csv(args)
    except (ValueError, OSError) as err:
        print(f"data_set_tool: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
