#!/usr/bin/env python3
"""Import your own recordings: audio + same-name .txt files, or a CSV/TSV manifest.

Folder mode (``--archive DIR`` or an archive of it): every audio file
(``.wav .flac .mp3 .ogg .sph .m4a .opus``) with a ``<same name>.txt`` beside it becomes
a sample; the .txt holds the transcript. Manifest mode (``--manifest FILE``): a CSV
(``,``) or TSV (``.tsv``, tab) with a header naming the audio column (``path``,
``wav_filename``, ``audio`` or ``file``) and the transcript column (``transcript``,
``sentence`` or ``text``); relative paths resolve against the manifest's directory.
Everything goes to ``<--split>.csv`` (default ``train.csv``). Licence: yours.

    bin/import_dir.py data/mine --archive ~/recordings --alphabet data/alphabet.txt \\
        --normalize --filter_alphabet
    bin/import_dir.py data/mine --manifest ~/recordings/list.tsv
"""

import csv
import functools
import os
import sys
from typing import Iterator, Optional


from util.importing import importer_cli, importers

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".sph", ".m4a", ".opus")
PATH_COLUMNS = ("path", "wav_filename", "audio", "file")
TEXT_COLUMNS = ("transcript", "sentence", "text")


def _sample_id(base: str, audio: str) -> str:
    return os.path.splitext(os.path.relpath(audio, base))[0].replace(os.sep, "__")


def iter_folder(root: str, split: str) -> Iterator[importers.RawSample]:
    for dirpath, _, filenames in sorted(os.walk(root)):
        for name in sorted(filenames):
            stem, ext = os.path.splitext(name)
            txt = os.path.join(dirpath, stem + ".txt")
            if ext.lower() in AUDIO_EXTENSIONS and os.path.isfile(txt):
                with open(txt, encoding="utf-8") as f:
                    text = f.read()
                audio = os.path.join(dirpath, name)
                yield importers.RawSample(audio, text, _sample_id(root, audio), split)


def iter_manifest(manifest: str, split: str) -> Iterator[importers.RawSample]:
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
            audio = os.path.join(base, row[path_col])
            yield importers.RawSample(
                audio, row[text_col], _sample_id(base, audio), split
            )


def iter_samples(
    root: str, manifest: Optional[str] = None, split: str = "train"
) -> Iterator[importers.RawSample]:
    """Folder mode over ``root``, or the rows of ``manifest`` when given."""
    if manifest:
        return iter_manifest(manifest, split)
    return iter_folder(root, split)


def _add_arguments(parser):
    parser.add_argument(
        "--manifest", help="CSV/TSV listing audio paths and transcripts"
    )
    parser.add_argument("--split", default="train", help="name of the output CSV")


def _setup(args):
    if args.manifest and not args.archive:
        args.archive = [os.path.dirname(os.path.abspath(args.manifest))]
    run = functools.partial(iter_samples, manifest=args.manifest, split=args.split)
    return run, ()


def main(argv=None) -> int:
    return importer_cli.main(
        __doc__, iter_samples, argv, add_arguments=_add_arguments, setup=_setup
    )


if __name__ == "__main__":
    sys.exit(main())
