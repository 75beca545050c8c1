#!/usr/bin/env python3
"""Prepare LDC93S1 (one TIMIT sentence, free from LDC) as a one-row training CSV.

Writes ``TARGET_DIR/LDC93S1.wav`` and ``TARGET_DIR/ldc93s1.csv`` with the columns
``wav_filename,wav_filesize,transcript``; the wav path is relative, so it resolves
against the CSV's directory. By default the copy bundled in ``data/ldc93s1/`` is used
(the 16 kHz mono WAV is copied byte for byte); ``--download`` fetches the files from
https://catalog.ldc.upenn.edu/desc/addenda/ instead. Licence: LDC's free sample,
for research and demonstration.

``LDC93S1.txt`` holds ``<start sample> <end sample> <text>``; the CSV gets the text
lowercased and without punctuation other than apostrophes, as DeepSpeech's importer
wrote it.
"""

import os
import sys
from typing import Iterator

from util.importing import importer_cli, importers, transcripts
from util.importing.archives import ArchiveSpec

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUNDLED_DIR = os.path.join(REPO_ROOT, "data", "ldc93s1")
BASE_URL = "https://catalog.ldc.upenn.edu/desc/addenda/"
FILES = tuple(ArchiveSpec(n, BASE_URL + n) for n in ("LDC93S1.wav", "LDC93S1.txt"))


def normalize_transcript(line: str) -> str:
    """``'0 46797 She had ... year.'`` -> ``'she had ... year'``."""
    parts = line.strip().split(maxsplit=2)
    if len(parts) < 3 or not (parts[0].isdigit() and parts[1].isdigit()):
        raise ValueError(f"expected '<start> <end> <text>', got {line.strip()!r}")
    return transcripts.strip_punctuation(parts[2])


def iter_samples(root: str) -> Iterator[importers.RawSample]:
    with open(os.path.join(root, "LDC93S1.txt"), encoding="utf-8") as f:
        text = normalize_transcript(f.read())
    yield importers.RawSample(
        os.path.join(root, "LDC93S1.wav"), text, "LDC93S1", split="ldc93s1"
    )


def _setup(args):
    if not (args.download or args.archive):
        args.archive = [BUNDLED_DIR]
    return iter_samples, [] if args.archive else FILES


def main(argv=None) -> int:
    return importer_cli.main(__doc__, iter_samples, argv, setup=_setup, wav_subdir="")


if __name__ == "__main__":
    sys.exit(main())
