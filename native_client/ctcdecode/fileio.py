"""Atomic file writes: the one helper every writer in the project uses.

A file is written under a temporary name in its own directory
(``<path>.tmp-<random hex>``), flushed and fsync'd, renamed over ``path`` with
``os.replace`` and the directory fsync'd, so a reader or a crash sees the old file or
the complete new one, never half a file. On any error the temporary file is removed
and ``path`` is untouched.

It lives in ``ctcdecode`` because this is the one package that the trainer (``util``),
the import tooling (``util.importing``) and the TensorFlow-free client all import
(doc/ARCHITECTURE.rst); it imports only the standard library.

- :func:`atomic_write`: a context manager yielding an open file object.
- :func:`atomic_path`: a context manager yielding the temporary *path*, for writers
  that open the file themselves (TFRecord, TFLite, soundfile, ``shutil.copy``).
- :func:`atomic_write_text`, :func:`atomic_write_bytes`: one-call forms.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from typing import IO, Any, Iterator, Optional

TMP_INFIX = ".tmp-"  # temporary files are "<path>.tmp-<32 hex digits>"


def temporary_name(path: str) -> str:
    """A fresh temporary name beside ``path`` (same directory, so rename is atomic)."""
    return f"{path}{TMP_INFIX}{uuid.uuid4().hex}"


def fsync_directory(directory: str) -> None:
    """fsync ``directory`` so a rename inside it survives a power loss (POSIX)."""
    try:
        fd = os.open(directory or ".", os.O_RDONLY)
    except OSError:  # e.g. Windows, where directories cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def _fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield a temporary path; when the block succeeds, it replaces ``path``.

    The block writes the file at the yielded path (any writer); then the file is
    fsync'd and renamed over ``path``, and the directory fsync'd. If the block raises,
    or writes nothing, the temporary file is removed and ``path`` is left as it was.
    """
    tmp = temporary_name(path)
    try:
        yield tmp
        if not os.path.exists(tmp):
            raise FileNotFoundError(f"nothing was written to {tmp!r} for {path!r}")
        _fsync_file(tmp)
        os.replace(tmp, path)
        fsync_directory(os.path.dirname(os.path.abspath(path)))
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextlib.contextmanager
def atomic_write(
    path: str,
    mode: str = "w",
    encoding: Optional[str] = None,
    newline: Optional[str] = None,
) -> Iterator[IO[Any]]:
    """Open a temporary file for writing; it replaces ``path`` when the block succeeds.

    ``mode`` is "w" (text; ``encoding`` defaults to UTF-8) or "wb". Use as
    ``with atomic_write(path) as f: f.write(...)``.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write mode must be 'w' or 'wb', not {mode!r}")
    if mode == "w" and encoding is None:
        encoding = "utf-8"
    with atomic_path(path) as tmp:
        with open(tmp, mode, encoding=encoding, newline=newline) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())


def atomic_write_text(path: str, text: str, newline: Optional[str] = None) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_write(path, "w", newline=newline) as f:
        f.write(text)


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_write(path, "wb") as f:
        f.write(data)
