#!/usr/bin/env python3
"""Import VoxForge English (http://www.voxforge.org): one archive per session.

Licence: GPL v3 (each archive's ``LICENSE``). The corpus is ~6000 archives
``<user>-<date>-<id>.tgz``, each unpacking to ``<user>-<date>-<id>/`` with
``etc/prompts-original`` (``<utt-id> transcript`` lines) and the audio in ``wav/`` or
``flac/``. ``--archive`` takes archives or a directory of them (or of unpacked
sessions); ``--download`` mirrors the 16 kHz 16-bit archives listed at REPO_URL.
Speakers are split deterministically by a hash of the user name (5 % dev, 5 % test),
so no speaker is in two sets: ``voxforge-{train,dev,test}.csv``.

    bin/import_voxforge.py data/voxforge --archive ~/Downloads/voxforge_tgz/
"""

import os
import re
import sys
import urllib.request
import zlib
from typing import Iterator, List

from util.importing import importer_cli, importers, transcripts
from util.importing.archives import ArchiveSpec

REPO_URL = (
    "https://www.repository.voxforge1.org/downloads/SpeechCorpus/Trunk/Audio/Main/"
    "16kHz_16bit/"
)
AUDIO_DIRS = (("wav", ".wav"), ("flac", ".flac"))


def split_of(user: str) -> str:
    bucket = zlib.crc32(user.encode("utf-8")) % 100
    return "dev" if bucket < 5 else "test" if bucket < 10 else "train"


def iter_samples(root: str) -> Iterator[importers.RawSample]:
    """One sample per prompt whose audio exists, for every session under ``root``."""
    for dirpath, _, filenames in importers.walk(root):
        if "prompts-original" not in filenames or os.path.basename(dirpath) != "etc":
            continue
        session_dir = os.path.dirname(dirpath)
        session = os.path.basename(session_dir)
        split = split_of(session.split("-")[0].lower())
        with open(os.path.join(dirpath, "prompts-original"), encoding="utf-8") as f:
            for line in f:
                utt_id, _, text = line.strip().partition(" ")
                for subdir, ext in AUDIO_DIRS:
                    audio = os.path.join(session_dir, subdir, utt_id + ext)
                    if os.path.isfile(audio):
                        yield importers.RawSample(
                            audio_path=audio,
                            transcript=transcripts.strip_punctuation(text),
                            sample_id=f"{session}-{utt_id}",
                            split=f"voxforge-{split}",
                        )
                        break


def _expand(paths: List[str]) -> List[str]:
    """A directory holding .tgz files stands for those files."""
    out = []
    for path in paths:
        tgz = (
            sorted(n for n in os.listdir(path) if n.endswith(".tgz"))
            if (os.path.isdir(path))
            else []
        )
        out += [os.path.join(path, n) for n in tgz] or [path]
    return out


def remote_archives() -> List[ArchiveSpec]:
    """The archives listed on the VoxForge repository's index page."""
    with urllib.request.urlopen(REPO_URL, timeout=60) as response:
        page = response.read().decode("utf-8", "replace")
    names = sorted(set(re.findall(r'href="([^"/]+\.tgz)"', page)))
    return [ArchiveSpec(n, REPO_URL + n) for n in names]


def _setup(args):
    args.archive = _expand(args.archive)
    return iter_samples, remote_archives() if args.download and not args.archive else []


def main(argv=None) -> int:
    return importer_cli.main(__doc__, iter_samples, argv, setup=_setup)


if __name__ == "__main__":
    sys.exit(main())
