#!/usr/bin/env python3
"""Import your own recordings: audio + same-name .txt files, or a CSV/TSV manifest.

Folder mode (``--archive DIR`` or an archive of it): every audio file
(``.wav .flac .mp3 .ogg .sph .m4a .opus``) with a ``<same name>.txt`` beside it becomes
a sample; the .txt holds the transcript. Manifest mode (``--manifest FILE``): a CSV
(``,``) or TSV (``.tsv``, tab) with a header naming the audio column (``path``,
``wav_filename``, ``audio`` or ``file``) and the transcript column (``transcript``,
``sentence`` or ``text``); relative paths resolve against the manifest's directory.
Everything goes to ``<--split>.csv`` (default ``train.csv``), or, with
``--dev_percent``/``--test_percent``, to ``train.csv``, ``dev.csv`` and ``test.csv``:
by speaker when ``--speaker_from`` says where the speaker is (``parent``: the folder
holding the file; ``column:NAME``: a manifest column; ``regex:PATTERN``: group 1 of
PATTERN searched in the path relative to the folder or manifest), so no speaker is in
two splits, else by sample; the same ``--seed`` gives the same split. Licence: yours.

    bin/import_dir.py data/mine --archive ~/recordings --alphabet data/alphabet.txt \\
        --normalize --dev_percent 10 --test_percent 10 --speaker_from parent
    bin/import_dir.py data/mine --manifest ~/recordings/list.tsv
"""

import csv
import dataclasses
import functools
import os
import sys
from typing import Dict, Iterator, List, Optional, Tuple

from util.importing import importer_cli, importers
from util.importing.splits import SplitSpec, assign_splits, read_speakers

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".sph", ".m4a", ".opus")
PATH_COLUMNS = ("path", "wav_filename", "audio", "file")
TEXT_COLUMNS = ("transcript", "sentence", "text")


def _sample_id(base: str, audio: str) -> str:
    return os.path.splitext(os.path.relpath(audio, base))[0].replace(os.sep, "__")


def iter_folder(root: str, split: str) -> Iterator[importers.RawSample]:
    for dirpath, _, filenames in importers.walk(root):
        for name in sorted(filenames):
            stem, ext = os.path.splitext(name)
            txt = os.path.join(dirpath, stem + ".txt")
            if ext.lower() in AUDIO_EXTENSIONS and os.path.isfile(txt):
                with open(txt, encoding="utf-8") as f:
                    text = f.read()
                audio = os.path.join(dirpath, name)
                yield importers.RawSample(audio, text, _sample_id(root, audio), split)


def _manifest_rows(manifest: str) -> Iterator[Tuple[str, str, Dict[str, str]]]:
    """(audio path, transcript, the whole row) of each manifest row."""
    base = os.path.dirname(os.path.abspath(manifest))
    delimiter = "\t" if manifest.lower().endswith(".tsv") else ","
    with open(manifest, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        fields = reader.fieldnames or []
        path_col = next((c for c in PATH_COLUMNS if c in fields), None)
        text_col = next((c for c in TEXT_COLUMNS if c in fields), None)
        if path_col is None or text_col is None:
            raise ValueError(
                f"{manifest} needs an audio column ({', '.join(PATH_COLUMNS)}) and a "
                f"transcript column ({', '.join(TEXT_COLUMNS)}); it has {fields}"
            )
        for row in reader:
            yield os.path.join(base, row[path_col]), row[text_col], row


def iter_samples(
    root: str,
    manifest: Optional[str] = None,
    split: str = "train",
    spec: SplitSpec = SplitSpec(),
    speaker_from: str = "",
    notes: Optional[List[str]] = None,
) -> List[importers.RawSample]:
    """Folder mode over ``root``, or the rows of ``manifest`` when given; with an
    active ``spec`` each sample's split is train, dev or test (``notes`` gets the
    split summary)."""
    if manifest:
        base = os.path.dirname(os.path.abspath(manifest))
        rows = list(_manifest_rows(manifest))
        samples = [
            importers.RawSample(a, text, _sample_id(base, a), split)
            for a, text, _ in rows
        ]
        columns: Optional[List[Dict[str, str]]] = [row for _, _, row in rows]
    else:
        base, samples, columns = root, list(iter_folder(root, split)), None
    if not spec.active:
        return samples
    speakers = None
    if speaker_from:
        paths = [s.audio_path for s in samples]
        speakers = read_speakers(speaker_from, paths, base, columns)
    result = assign_splits([s.sample_id for s in samples], spec, speakers)
    if notes is not None:
        notes.append(result.summary(speakers is not None, spec.seed))
    return [dataclasses.replace(s, split=result.split_of[s.sample_id]) for s in samples]


def _add_arguments(parser) -> None:
    parser.add_argument(
        "--manifest", help="CSV/TSV listing audio paths and transcripts"
    )
    parser.add_argument(
        "--split", help="name of the output CSV (default: train); not with --*_percent"
    )
    parser.add_argument(
        "--dev_percent", type=float, default=0.0, help="share of samples for dev.csv"
    )
    parser.add_argument(
        "--test_percent", type=float, default=0.0, help="share of samples for test.csv"
    )
    parser.add_argument(
        "--speaker_from",
        default="",
        help="split by speaker: parent | column:NAME | regex:PATTERN (see above)",
    )
    parser.add_argument("--seed", type=int, default=4568, help="seed of the split")


def _setup(args, notes: List[str]):
    """The sample source for these arguments; ValueError for a bad combination."""
    spec = SplitSpec(args.dev_percent, args.test_percent, args.seed)
    if spec.active and args.split:
        raise ValueError(
            "--split names one CSV; --dev_percent/--test_percent make three"
        )
    if args.speaker_from and not spec.active:
        raise ValueError("--speaker_from needs --dev_percent and/or --test_percent")
    if args.manifest and not args.archive:
        args.archive = [os.path.dirname(os.path.abspath(args.manifest))]
    run = functools.partial(
        iter_samples,
        manifest=args.manifest,
        split=args.split or "train",
        spec=spec,
        speaker_from=args.speaker_from,
        notes=notes,
    )
    return run, ()


def main(argv=None) -> int:
    notes: List[str] = []  # the split summary, shown with the report
    return importer_cli.main(
        __doc__,
        iter_samples,
        argv,
        add_arguments=_add_arguments,
        setup=functools.partial(_setup, notes=notes),
        notes=notes,
    )


if __name__ == "__main__":
    sys.exit(main())
