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

DeepSpeech 0.9's command line works too (no sub-command): combine CSV and ``.sdb``
sources into one sample database or CSV, shortest samples first, as 0.9 did::

    bin/data_set_tool.py train.csv more.sdb train.sdb --audio-type opus --workers 4
    bin/data_set_tool.py train.sdb train_wavs.csv

``--audio-type opus|wav`` (default opus; needs libopus and opuslib), ``--bitrate``,
``--workers``, ``--unlabeled`` (audio only) and ``--absolute-paths`` (CSV targets) keep
their 0.9 meaning. A CSV target gets its WAVs in a directory named after it (which must
not exist yet). A ``.tar``, ``.tar.gz`` or ``.tgz`` target is DeepSpeech's
``TarWriter`` layout: a ``samples/`` directory of WAVs ``samples/sampleNNNNNNNN.wav``,
then ``samples.csv`` (paths relative to the archive root; no transcript column with
``--unlabeled``), and each ``--include`` file at the root; extract it and train on
``samples.csv``. ``--augment`` (0.9's, repeatable) writes augmented copies: the
sample- and signal-domain kinds of doc/TRAINING.rst "Augmentation", at clock 0 as in
0.9, seeded per sample by ``--random_seed``.
Train on a database by passing it wherever a CSV goes (doc/DATA.rst).
"""

import argparse
import csv
import io
import os
import sys
import tarfile
from concurrent.futures import ThreadPoolExecutor
from typing import List, Optional, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from ctcdecode import load_alphabet  # noqa: E402
from util import tfrecords  # noqa: E402
from util.audio import audio_info, read_audio, write_wav  # noqa: E402
from util.augmentations import parse_augmentations  # noqa: E402
from util.config import FeatureConfig  # noqa: E402
from util.importing import shards  # noqa: E402
from util.importing.importers import write_csv  # noqa: E402
from util.progress import Progress  # noqa: E402
from util.sample_collections import (  # noqa: E402
    AUDIO_TYPE_OPUS,
    AUDIO_TYPE_WAV,
    SDBReader,
    SDBWriter,
    audio_header,
    decode_audio,
    encode_audio,
    is_sdb,
)
from util.samples import Sample, read_csv_rows, read_sample_set  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def shard_name(prefix: str, k: int, n: int) -> str:
    return f"{prefix}-{k:05d}-of-{n:05d}{tfrecords.SUFFIX}"


def _record(sample: Sample, kind: str, cfg: FeatureConfig) -> bytes:
    audio, _ = read_audio(sample.wav_filename, cfg.audio_sample_rate)
    if kind == tfrecords.KIND_AUDIO:
        return shards.audio_example(
            sample.transcript, sample.wav_filename, audio, cfg.audio_sample_rate
        )
    from util.features import compute_features

    features, _ = compute_features(audio, cfg)
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


# -- DeepSpeech 0.9's command line --------------------------------------------------

DS09_AUDIO_TYPES = {"opus": AUDIO_TYPE_OPUS, "wav": AUDIO_TYPE_WAV}


def build_ds09_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Tool for building a combined SDB or CSV sample-set from other "
        "sets (DeepSpeech 0.9's arguments)"
    )
    parser.add_argument("sources", nargs="+", help="source CSV and/or SDB files")
    parser.add_argument("target", help="SDB or CSV file to create")
    parser.add_argument(
        "--audio-type", default="opus", choices=sorted(DS09_AUDIO_TYPES)
    )
    parser.add_argument("--bitrate", type=int, help="bitrate of lossy (opus) samples")
    parser.add_argument("--workers", type=int, default=None, help="encoding threads")
    parser.add_argument("--unlabeled", action="store_true", help="audio only")
    parser.add_argument("--absolute-paths", action="store_true",
                        help="CSV targets: absolute sample paths")  # fmt: skip
    parser.add_argument(
        "--augment",
        action="append",
        help="augment the samples (DeepSpeech.py's --augment; sample "
        "and signal domains)",
    )
    parser.add_argument(
        "--random_seed",
        type=int,
        default=4568,
        help="seed of the augmentations (DeepSpeech.py's default)",
    )
    parser.add_argument("--include", action="append",
                        help="a file for the root of .tar(.gz) targets")  # fmt: skip
    return parser


def _ds09_items(sources: Sequence[str], labeled: bool) -> List[tuple]:
    """(duration s, source, key, transcript) of every sample, shortest first."""
    items = []
    for source in sources:
        if is_sdb(source):
            with SDBReader(source) as reader:
                if labeled and reader.transcript_column is None:
                    raise ValueError(f"{source}: no transcripts (use --unlabeled)")
                for entry in reader:
                    rate, _, n = audio_header(entry.audio, reader.audio_type, source)
                    items.append((n / rate, source, entry.index, entry.transcript))
        else:
            for row in read_csv_rows(source):
                info = audio_info(row.wav_filename)
                items.append(
                    (info.duration_s, source, row.wav_filename, row.transcript)
                )
    return sorted(items, key=lambda item: item[0])


def _ds09_audio(
    item: tuple, audio_type: str, bitrate: Optional[int], augment=None, index: int = 0
) -> bytes:
    """The sample's audio as ``audio_type`` bytes (copied when already so and not
    augmented); ``augment(mono, rate, index)``: --augment's augmenter."""
    _, source, key, _ = item
    if is_sdb(source):
        with SDBReader(source) as reader:
            audio = reader[key].audio
            if reader.audio_type == audio_type and bitrate is None and not augment:
                return audio
            data, rate = decode_audio(audio, reader.audio_type, f"{source}:{key}")
    else:
        rate = audio_info(key).sample_rate
        data, _ = read_audio(key, rate)
        data = data[:, None]
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if augment:
        mono = augment(mono, rate, index)
    return encode_audio(mono, rate, audio_type, bitrate)


def _ds09_augmenter(args: argparse.Namespace):
    """(mono, rate, index) -> augmented mono, or None without --augment."""
    augmentations = parse_augmentations(args.augment)
    if not augmentations:
        return None
    from util.augment_graph import WaveformAugmenter  # TensorFlow only when asked
    from util.feeding import read_sample_audio

    by_rate = {}

    def augment(mono, rate: int, index: int):
        if rate not in by_rate:
            by_rate[rate] = WaveformAugmenter(
                augmentations, rate, read_sample_audio, args.random_seed
            )
        return by_rate[rate](mono, index, 0.0)

    unheard = [a for a in augmentations if a.domain in ("spectrogram", "features")]
    if unheard:
        raise ValueError(
            f"--augment {unheard[0].KIND}: works on the spectrogram or the features, "
            "which a data set does not store; the tool applies overlay, reverb, "
            "resample, codec, volume and signal-domain kinds"
        )
    return augment


def build_ds09(args: argparse.Namespace) -> str:
    """Write ``args.target`` (.sdb, .csv, .tar, .tar.gz/.tgz) from ``args.sources``;
    returns it."""
    augment = _ds09_augmenter(args)
    extension = target_kind(args.target)
    if args.include and extension not in (".tar", ".tar.gz"):
        raise ValueError("--include: only .tar, .tar.gz and .tgz targets take files")
    for path in args.include or ():
        if not os.path.isfile(path):
            raise ValueError(f"--include {path!r}: no such file")
    audio_type = (
        DS09_AUDIO_TYPES[args.audio_type] if extension == ".sdb" else AUDIO_TYPE_WAV
    )
    items = _ds09_items(args.sources, not args.unlabeled)
    progress = Progress("data_set_tool", len(items), sys.stderr.isatty())
    with ThreadPoolExecutor(args.workers or os.cpu_count() or 1) as pool:
        audios = pool.map(
            lambda k: _ds09_audio(items[k], audio_type, args.bitrate, augment, k),
            range(len(items)),
        )
        if extension == ".sdb":
            with SDBWriter(args.target, audio_type, labeled=not args.unlabeled) as out:
                for done, (item, audio) in enumerate(zip(items, audios), 1):
                    out.add(audio, None if args.unlabeled else item[3])
                    progress.update(done)
        elif extension == ".csv":
            _write_ds09_csv(args, items, audios, progress)
        else:
            _write_ds09_tar(args, extension == ".tar.gz", items, audios, progress)
    progress.finish()
    print(f"wrote {args.target} ({len(items)} samples)")
    return args.target


def target_kind(target: str) -> str:
    """.sdb, .csv, .tar or .tar.gz (for .tgz too); ValueError for anything else."""
    lower = target.lower()
    if lower.endswith((".tar.gz", ".tgz")):
        return ".tar.gz"
    extension = os.path.splitext(lower)[1]
    if extension not in (".sdb", ".csv", ".tar"):
        raise ValueError(
            f"target {target!r}: the extension must be .sdb, .csv, .tar, .tar.gz or "
            ".tgz"
        )
    return extension


def _write_ds09_tar(args, gz: bool, items, audios, progress) -> None:
    """DeepSpeech's TarWriter: ``samples/`` (a directory entry), the WAVs
    ``samples/sampleNNNNNNNN.wav``, ``samples.csv`` last; ``--include`` files at the
    root. Written under a temporary name and renamed when complete, so an
    interrupted run never leaves a truncated archive under the target's name."""
    partial = args.target + ".partial"
    fields = ["wav_filename", "wav_filesize"] + (
        [] if args.unlabeled else ["transcript"]
    )
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(fields)
    try:
        with tarfile.open(partial, "w:gz" if gz else "w") as tar:
            directory = tarfile.TarInfo("samples")
            directory.type, directory.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(directory)
            for path in args.include or ():
                tar.add(path, arcname=os.path.basename(path), recursive=False)
            for done, (item, audio) in enumerate(zip(items, audios), 1):
                name = f"samples/sample{done - 1:08d}.wav"
                _add_bytes(tar, name, audio)
                writer.writerow(
                    [name, len(audio)] + ([] if args.unlabeled else [item[3]])
                )
                progress.update(done)
            _add_bytes(tar, "samples.csv", table.getvalue().encode("utf-8"))
        os.replace(partial, args.target)
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    tar.addfile(info, io.BytesIO(data))


def _write_ds09_csv(args, items, audios, progress) -> None:
    """0.9's CSVWriter: WAVs in <dir>/<stem>/sampleNNNNNNNN.wav beside the CSV."""
    base = os.path.dirname(os.path.abspath(args.target))
    wav_dir = os.path.join(base, os.path.splitext(os.path.basename(args.target))[0])
    if os.path.exists(wav_dir):
        raise ValueError(f"{wav_dir!r} already exists")
    os.makedirs(wav_dir)
    rows = []
    for done, (item, audio) in enumerate(zip(items, audios), 1):
        wav = os.path.join(wav_dir, f"sample{done - 1:08d}.wav")
        with open(wav, "wb") as out:
            out.write(audio)
        name = wav if args.absolute_paths else os.path.relpath(wav, base)
        rows.append((name, len(audio), "" if args.unlabeled else item[3]))
        progress.update(done)
    write_csv(args.target, rows)


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in argv if not a.startswith("-")), None)
    if first is not None and first not in ("to-tfrecord", "to-csv"):
        try:
            build_ds09(build_ds09_parser().parse_args(argv))
        except (ValueError, OSError) as err:
            print(f"data_set_tool: {err}", file=sys.stderr)
            return 1
        return 0
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
