#!/usr/bin/env python3
"""Import Mozilla Common Voice (https://commonvoice.mozilla.org/datasets): TSV + MP3.

Licence: CC0 1.0 (public domain). Download the language's archive yourself (the site
asks for an e-mail address and acceptance of its terms, so ``--download`` is not
offered) and pass it with ``--archive cv-corpus-<version>-<lang>.tar.gz`` or the
extracted directory. It holds ``cv-corpus-<version>/<lang>/clips/*.mp3`` and the tab-
separated ``train.tsv``, ``dev.tsv``, ``test.tsv`` and ``validated.tsv`` whose
``path`` column names the clip and ``sentence`` column its transcript. Writes
``train.csv``, ``dev.csv``, ``test.csv`` and ``validated.csv``; a clip listed in two
files is converted once. Non-English: pass ``--alphabet`` and usually ``--normalize``.

    bin/import_cv2.py data/cv-fr --archive cv-corpus-17.0-fr.tar.gz \\
        --alphabet data/fr/alphabet.txt --filter_alphabet --max_duration 10
"""

import csv
import os
import sys
from typing import Iterator

from util.importing import importer_cli, importers

TSV_SPLITS = ("train", "dev", "test", "validated")


def iter_samples(root: str) -> Iterator[importers.RawSample]:
    """Rows of every ``<split>.tsv`` under ``root``; clips are in ``clips/`` beside."""
    for dirpath, _, filenames in importers.walk(root):
        for split in TSV_SPLITS:
            if f"{split}.tsv" not in filenames:
                continue
            with open(os.path.join(dirpath, f"{split}.tsv"), encoding="utf-8") as f:
                # QUOTE_NONE: sentences contain quotes; Common Voice never quotes fields
                for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
                    clip = row["path"]
                    yield importers.RawSample(
                        audio_path=os.path.join(dirpath, "clips", clip),
                        transcript=row["sentence"],
                        sample_id=os.path.splitext(clip)[0],
                        split=split,
                    )


def main(argv=None) -> int:
    return importer_cli.main(__doc__, iter_samples, argv)


if __name__ == "__main__":
    sys.exit(main())
