#!/usr/bin/env python3
"""Import LibriSpeech (https://www.openslr.org/12): read English audiobooks, FLAC.

Licence: CC BY 4.0 (the LibriVox recordings are public domain). About 1000 h in seven
splits; each archive unpacks to ``LibriSpeech/<split>/<speaker>/<chapter>/`` holding
``<speaker>-<chapter>-<utt>.flac`` and ``<speaker>-<chapter>.trans.txt`` (one
``<utt-id> TRANSCRIPT`` line per utterance). Writes ``librivox-<split>.csv`` per split
(e.g. ``librivox-train-clean-100.csv``) and 16 kHz WAVs under ``TARGET_DIR/wav``.

    bin/import_librivox.py data/librispeech --download           # all seven splits
    bin/import_librivox.py data/librispeech --download --splits dev-clean,test-clean
    bin/import_librivox.py data/librispeech --archive dev-clean.tar.gz
"""

import os
import sys
from typing import Iterator

from util.importing import importer_cli, importers
from util.importing.archives import ArchiveSpec

BASE_URL = "https://www.openslr.org/resources/12/"
SPLITS = (
    "train-clean-100",
    "train-clean-360",
    "train-other-500",
    "dev-clean",
    "dev-other",
    "test-clean",
    "test-other",
)
ARCHIVES = tuple(ArchiveSpec(f"{s}.tar.gz", f"{BASE_URL}{s}.tar.gz") for s in SPLITS)


def iter_samples(root: str) -> Iterator[importers.RawSample]:
    """One sample per line of every ``*.trans.txt`` under ``root``."""
    for dirpath, _, filenames in importers.walk(root):
        for name in sorted(f for f in filenames if f.endswith(".trans.txt")):
            # <split>/<speaker>/<chapter>/<name>: the split is two levels up
            split = os.path.basename(os.path.dirname(os.path.dirname(dirpath)))
            with open(os.path.join(dirpath, name), encoding="utf-8") as f:
                for line in f:
                    utt_id, _, text = line.strip().partition(" ")
                    if not utt_id:
                        continue
                    yield importers.RawSample(
                        audio_path=os.path.join(dirpath, utt_id + ".flac"),
                        transcript=text.lower(),
                        sample_id=utt_id,
                        split=f"librivox-{split}",
                    )


def _add_arguments(parser):
    parser.add_argument(
        "--splits", default=",".join(SPLITS), help="comma-separated splits to fetch"
    )


def _setup(args):
    wanted = set(args.splits.split(","))
    return iter_samples, [a for a, split in zip(ARCHIVES, SPLITS) if split in wanted]


def main(argv=None) -> int:
    return importer_cli.main(
        __doc__, iter_samples, argv, add_arguments=_add_arguments, setup=_setup
    )


if __name__ == "__main__":
    sys.exit(main())
