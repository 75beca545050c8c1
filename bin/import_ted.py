#!/usr/bin/env python3
"""Import TED-LIUM release 2 or 3 (https://www.openslr.org/51): TED talks, SPH + STM.

Licence: CC BY-NC-ND 3.0 (non-commercial, no derivatives: the cut segments may be used
for research but not redistributed as a new corpus). Release 2 (~200 h) unpacks to
``TEDLIUM_release2/{train,dev,test}/{sph,stm}/``; release 3 (~450 h) to
``TEDLIUM_release-3/data/{sph,stm}/`` (train) and ``legacy/{dev,test}/{sph,stm}/``.
Each ``<talk>.stm`` line is ``<talk> <channel> <speaker> <start s> <end s> <label>
<transcript>``; every line becomes one WAV cut from ``<talk>.sph`` (NIST SPHERE, which
libsndfile reads). Segments marked ``ignore_time_segment_in_scoring`` are left out,
``<unk>`` tokens removed and the tokenised apostrophes (``i 'm``) joined. Writes
``ted-train.csv``, ``ted-dev.csv`` and ``ted-test.csv``.

    bin/import_ted.py data/ted --download                  # release 3, ~50 GB
    bin/import_ted.py data/ted --archive TEDLIUM_release2.tar.gz
"""

import os
import sys
from typing import Iterator, List, Tuple

from util.importing import importer_cli, importers
from util.importing.archives import ArchiveSpec

RELEASES = {
    "2": ArchiveSpec(
        "TEDLIUM_release2.tar.gz",
        "https://www.openslr.org/resources/19/TEDLIUM_release2.tar.gz",
    ),
    "3": ArchiveSpec(
        "TEDLIUM_release-3.tgz",
        "https://www.openslr.org/resources/51/TEDLIUM_release-3.tgz",
    ),
}
IGNORED = "ignore_time_segment_in_scoring"


def _stm_dirs(root: str) -> List[Tuple[str, str]]:
    """(split, stm dir) pairs; release 3's ``data/`` replaces ``legacy/train``."""
    found = []
    for dirpath, dirnames, _ in importers.walk(root):
        if "stm" in dirnames and "sph" in dirnames:
            parent = os.path.basename(dirpath)
            split = "train" if parent == "data" else parent
            found.append((split, os.path.join(dirpath, "stm")))
    has_data = any(os.path.basename(os.path.dirname(d)) == "data" for _, d in found)
    return [
        (s, d) for s, d in found if not (has_data and s == "train" and "legacy" in d)
    ]


def iter_samples(root: str) -> Iterator[importers.RawSample]:
    """One sample per scored STM segment under ``root``."""
    for split, stm_dir in _stm_dirs(root):
        sph_dir = os.path.join(os.path.dirname(stm_dir), "sph")
        for name in sorted(n for n in os.listdir(stm_dir) if n.endswith(".stm")):
            with open(os.path.join(stm_dir, name), encoding="utf-8") as f:
                for line in f:
                    fields = line.split(maxsplit=6)
                    if len(fields) < 7 or fields[6].strip() == IGNORED:
                        continue
                    talk, start, end = fields[0], float(fields[3]), float(fields[4])
                    words = [w for w in fields[6].split() if w != "<unk>"]
                    cut = f"{round(start * 100):07d}-{round(end * 100):07d}"
                    yield importers.RawSample(
                        audio_path=os.path.join(sph_dir, f"{talk}.sph"),
                        transcript=" ".join(words).replace(" '", "'"),
                        sample_id=f"{talk}-{cut}",
                        split=f"ted-{split}",
                        start_s=start,
                        end_s=end,
                    )


def _add_arguments(parser):
    parser.add_argument("--release", choices=sorted(RELEASES), default="3")


def main(argv=None) -> int:
    return importer_cli.main(
        __doc__,
        iter_samples,
        argv,
        add_arguments=_add_arguments,
        setup=lambda args: (iter_samples, [RELEASES[args.release]]),
    )


if __name__ == "__main__":
    sys.exit(main())
