#!/usr/bin/env python3
"""Import TIMIT (https://catalog.ldc.upenn.edu/LDC93S1): 630 speakers, 6300 utterances.

Licence: LDC User Agreement (not free: buy it from the LDC, then pass the archive or
the extracted directory with ``--archive``; there is no ``--download``). The layout is
``TIMIT/{TRAIN,TEST}/DR<n>/<speaker>/<utt>.WAV`` (NIST SPHERE despite the name, which
libsndfile reads) with ``<utt>.TXT`` holding ``<start sample> <end sample> <text>``;
upper or lower case names both work. Each utterance is cut to its sample offsets,
lowercased and stripped of punctuation. Writes ``timit-train.csv`` and
``timit-test.csv``.

    bin/import_timit.py data/timit --archive TIMIT.zip
"""

import os
import sys
from typing import Iterator

from util.importing import importer_cli, importers, transcripts

TIMIT_RATE = 16000  # Hz: the .TXT offsets count samples at this rate


def iter_samples(root: str) -> Iterator[importers.RawSample]:
    """One sample per ``.TXT``/``.WAV`` pair under a TRAIN or TEST directory."""
    for dirpath, _, filenames in importers.walk(root):
        parts = [p.lower() for p in os.path.relpath(dirpath, root).split(os.sep)]
        split = next((p for p in parts if p in ("train", "test")), None)
        if split is None:
            continue
        by_lower = {f.lower(): f for f in filenames}
        for name in sorted(f for f in filenames if f.lower().endswith(".txt")):
            stem = name[:-4]
            wav = by_lower.get(stem.lower() + ".wav")
            if wav is None:
                continue
            with open(os.path.join(dirpath, name), encoding="utf-8") as f:
                start, end, text = f.read().strip().split(maxsplit=2)
            speaker, region = parts[-1], parts[-2]
            yield importers.RawSample(
                audio_path=os.path.join(dirpath, wav),
                transcript=transcripts.strip_punctuation(text),
                sample_id=f"timit-{split}-{region}-{speaker}-{stem.lower()}",
                split=f"timit-{split}",
                start_s=int(start) / TIMIT_RATE,
                end_s=int(end) / TIMIT_RATE,
            )


def main(argv=None) -> int:
    return importer_cli.main(__doc__, iter_samples, argv)


if __name__ == "__main__":
    sys.exit(main())
