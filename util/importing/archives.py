"""Fetch and unpack corpus archives: resumable download, checksum, safe extraction.

The importers' I/O half (``util.importing.importers`` owns conversion and CSVs). Corpora
are tens of GB, so a download goes to ``<name>.part`` and an interrupted one resumes
with an HTTP ``Range`` request; only a complete (and, when the checksum is known,
verified) file is renamed to its final name, so a later run never trusts a truncated
archive. Extraction refuses members that would land outside the destination (absolute
paths, ``..``, links pointing out: CVE-2007-4559 "tarfile path traversal") and records a
stamp file when it finishes, so a re-run skips an archive already unpacked.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from typing import Optional

from absl import logging

from util.progress import Progress

DOWNLOAD_TIMEOUT_S = 60  # s without data before a download gives up
CHUNK_BYTES = 1 << 20  # 1 MiB read/hash block
TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tar.xz")
ZIP_SUFFIXES = (".zip",)
STAMP_PREFIX = ".extracted-"  # marks an archive fully unpacked into a directory


class ArchiveError(ValueError):
    """An archive that cannot be found, fetched, verified or unpacked safely."""


@dataclass(frozen=True)
class ArchiveSpec:
    """One downloadable file of a corpus.

    ``sha256`` is checked after a download and before trusting a file found on disk;
    ``None`` when the publisher gives none (OpenSLR publishes md5 only).
    """

    filename: str
    url: Optional[str] = None  # None: not freely downloadable (e.g. LDC corpora)
    sha256: Optional[str] = None


def is_archive(path: str) -> bool:
    """True when ``path`` names a tar or zip archive (by its suffix)."""
    return path.lower().endswith(TAR_SUFFIXES + ZIP_SUFFIXES)


def sha256_of(path: str) -> str:
    """Hex sha256 of the file at ``path``, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path: str, sha256: Optional[str]) -> None:
    """Raise ArchiveError when ``sha256`` is known and ``path`` does not match it."""
    if sha256 is None:
        return
    actual = sha256_of(path)
    if actual != sha256.lower():
        raise ArchiveError(
            f"{path} has sha256 {actual}, expected {sha256}; delete it and download "
            "it again"
        )


def download(spec: ArchiveSpec, target_dir: str, show_progress: bool = False) -> str:
    """Fetch ``spec.url`` to ``target_dir/spec.filename``, resuming a ``.part`` file.

    Returns the final path. Raises ArchiveError on a network error or a download cut
    short of the size the server announced (the ``.part`` file stays, so the next call
    resumes), or a checksum mismatch (the file is deleted). Only a file whose size
    (and checksum, when known) is right gets the final name.
    """
    if spec.url is None:
        raise ArchiveError(
            f"{spec.filename} cannot be downloaded (not freely distributed); get it "
            "from its publisher and pass it with --archive"
        )
    os.makedirs(target_dir, exist_ok=True)
    final = os.path.join(target_dir, spec.filename)
    part = final + ".part"
    try:
        _fetch_into(spec.url, part, show_progress)
    except ArchiveError:
        raise
    except (urllib.error.URLError, OSError) as err:
        raise ArchiveError(
            f"could not download {spec.url} ({err}); re-run to resume, or download "
            f"it yourself and pass --archive"
        ) from err
    try:
        verify(part, spec.sha256)
    except ArchiveError:
        os.remove(part)
        raise
    os.replace(part, final)
    logging.info("downloaded %s", final)
    return final


def _fetch_into(url: str, part: str, show_progress: bool) -> None:
    """Append the rest of ``url`` to ``part`` (a Range request when it has bytes)."""
    have = os.path.getsize(part) if os.path.exists(part) else 0
    request = urllib.request.Request(url)
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # nothing past our bytes: complete, or too long
            _check_size(url, have, _range_total(err.headers.get("Content-Range")))
            return
        raise
    with response:
        resumed = have > 0 and response.status == 206
        if have and not resumed:
            logging.info("%s: server ignored the Range request; restarting", url)
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        progress = Progress(
            f"Downloading {os.path.basename(part)}", total, show_progress
        )
        with open(part, "ab" if resumed else "wb") as out:
            for block in iter(lambda: response.read(CHUNK_BYTES), b""):
                out.write(block)
                have += len(block)
                progress.update(have)
        progress.finish()
    _check_size(url, have, total)


def _range_total(content_range: Optional[str]) -> Optional[int]:
    """The total of a ``Content-Range: bytes */TOTAL`` (416) header, if given."""
    if content_range and "/" in content_range:
        total = content_range.rsplit("/", 1)[1].strip()
        if total.isdigit():
            return int(total)
    return None


def _check_size(url: str, have: int, total: Optional[int]) -> None:
    """Raise when the server announced ``total`` bytes and ``have`` differs.

    http.client does not notice a connection the server closes early: ``read``
    just returns b"" and a truncated archive looked complete (issue 11, case 8).
    """
    if total is None:
        logging.warning("%s: the server gave no size; the download is unchecked", url)
    elif have < total:
        raise ArchiveError(
            f"download of {url} stopped at {have} of {total} bytes (the server closed "
            "the connection); re-run to resume it"
        )
    elif have > total:
        raise ArchiveError(
            f"download of {url} has {have} bytes, the server says {total}; delete the "
            ".part file and run again"
        )


def _stamp(archive: str, dest_dir: str) -> str:
    return os.path.join(dest_dir, STAMP_PREFIX + os.path.basename(archive))


def is_extracted(archive: str, dest_dir: str) -> bool:
    """True when :func:`extract` has finished unpacking ``archive`` in ``dest_dir``."""
    return os.path.exists(_stamp(archive, dest_dir))


def extract(archive: str, dest_dir: str) -> None:
    """Unpack ``archive`` into ``dest_dir`` once; a stamp file marks completion.

    A non-archive file (e.g. a single transcript) is copied into ``dest_dir``.
    Raises ArchiveError for an unknown or unsafe archive.
    """
    os.makedirs(dest_dir, exist_ok=True)
    stamp = _stamp(archive, dest_dir)
    if os.path.exists(stamp):
        logging.info("%s already extracted into %s", archive, dest_dir)
        return
    lower = archive.lower()
    if lower.endswith(TAR_SUFFIXES):
        _extract_tar(archive, dest_dir)
    elif lower.endswith(ZIP_SUFFIXES):
        _extract_zip(archive, dest_dir)
    else:
        shutil.copyfile(archive, os.path.join(dest_dir, os.path.basename(archive)))
    with open(stamp, "w", encoding="utf-8") as f:
        f.write(f"{os.path.abspath(archive)}\n")
    logging.info("extracted %s into %s", archive, dest_dir)


def _inside(dest_dir: str, name: str) -> bool:
    """True when member ``name`` resolves to a path inside ``dest_dir``."""
    root = os.path.realpath(dest_dir)
    target = os.path.realpath(os.path.join(root, name))
    return target == root or target.startswith(root + os.sep)


def _extract_tar(archive: str, dest_dir: str) -> None:
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for member in members:
                unsafe = not _inside(dest_dir, member.name) or (
                    (member.issym() or member.islnk())
                    and not _inside(
                        dest_dir,
                        os.path.join(os.path.dirname(member.name), member.linkname),
                    )
                )
                if unsafe or member.isdev():
                    raise ArchiveError(
                        f"{archive}: member {member.name!r} would be written outside "
                        f"{dest_dir} or is a device; refusing to extract"
                    )
            # The "data" filter (PEP 706) re-checks all of the above in the stdlib.
            tar.extractall(dest_dir, members=members, filter="data")
    except (tarfile.TarError, EOFError) as err:
        raise ArchiveError(f"cannot extract {archive}: {err}") from err


def _extract_zip(archive: str, dest_dir: str) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                if os.path.isabs(name) or not _inside(dest_dir, name):
                    raise ArchiveError(
                        f"{archive}: member {name!r} would be written outside "
                        f"{dest_dir}; refusing to extract"
                    )
            zf.extractall(dest_dir)
    except zipfile.BadZipFile as err:
        raise ArchiveError(f"cannot extract {archive}: {err}") from err
