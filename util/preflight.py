"""Checks of a run's output locations, before any work (issue 11, items 1 and 5).

A run that can only fail at its first save should fail at start-up: a
``--checkpoint_dir`` that is a file or read-only used to fail after a full
``--checkpoint_secs`` interval, a read-only ``--export_dir`` after training and testing.
Each location is probed by creating (and removing) a file in it or in its nearest
existing parent, which also catches read-only mounts that ``os.access`` misses for root.
Nothing is created that the run would not create anyway.

``--remove_export`` empties only what an export writes (util/export.py), and is refused
outright when the export directory is or contains a checkpoint directory: DeepSpeech
0.9 removed the whole directory, which deleted every checkpoint when the two were the
same.
"""

import os
import tempfile
from typing import List, Optional, Tuple

from util.config import Config, ExportConfig


class OutputLocationError(ValueError):
    """An output location cannot be written; the message names the flag and the fix."""


def check_outputs(cfg: Config, training: bool, evaluating: bool) -> None:
    """Raise OutputLocationError for the first unusable location this run writes.

    ``training``: checkpoints and summaries are written; ``evaluating``: the chief
    tests, exports or infers (the export dir and ``--test_output_file``).
    """
    if training:
        check_directory("--checkpoint_dir", cfg.checkpoint.save_checkpoint_dir)
        if cfg.train.summary_dir:
            check_directory("--summary_dir", cfg.train.summary_dir)
    if evaluating and cfg.export.export_dir:
        check_export_file_name(cfg.export)
        check_directory("--export_dir", cfg.export.export_dir)
        if cfg.export.remove_export:
            check_remove_export(cfg)
    if evaluating and cfg.eval.test_output_file:
        path = cfg.eval.test_output_file
        if os.path.isdir(path):
            raise OutputLocationError(
                f"--test_output_file {path} is a directory; give a file name"
            )
        check_directory("--test_output_file", os.path.dirname(os.path.abspath(path)))


def check_directory(flag: str, path: str) -> None:
    """``path`` is, or can be created as, a writable directory."""
    existing = _nearest_existing(path)
    if not os.path.isdir(existing):
        what = (
            "is a file"
            if existing == os.path.abspath(path)
            else f"is under the file {existing}"
        )
        raise OutputLocationError(
            f"{flag} {path} {what}, not a directory; give a directory path"
        )
    try:
        with tempfile.TemporaryFile(dir=existing, prefix=".deepspeech-probe-"):
            pass
    except OSError as err:
        where = (
            ""
            if existing == os.path.abspath(path)
            else f" (it would be created in {existing})"
        )
        raise OutputLocationError(
            f"{flag} {path} is not writable{where}: {err.strerror or err}. Fix the "
            "permissions or choose another location; nothing was done yet"
        ) from None


def check_export_file_name(exp: ExportConfig) -> None:
    """A plain file name: ``--remove_export`` deletes ``<export_dir>/<name>``."""
    name = exp.export_file_name
    if (
        not name
        or name in (".", "..")
        or os.sep in name
        or (os.altsep or os.sep) in name
    ):
        raise OutputLocationError(
            f"--export_file_name {name!r} must be a plain file name (no directory "
            "parts), e.g. output_graph"
        )


def check_remove_export(cfg: Config) -> None:
    """Refuse ``--remove_export`` when the export dir holds what the run must keep."""
    export_dir = _real(cfg.export.export_dir or "")
    for flag, path in _kept_locations(cfg):
        real = _real(path)
        if real == export_dir or _is_under(real, export_dir):
            same = "is" if real == export_dir else "contains"
            raise OutputLocationError(
                f"--export_dir {cfg.export.export_dir} {same} {flag} {path}: with "
                "--remove_export that would risk what the run must keep. Give the "
                "export its own directory (e.g. --export_dir "
                f"{os.path.join(cfg.export.export_dir or '.', 'export')}); nothing was "
                "done yet"
            )


def _kept_locations(cfg: Config) -> List[Tuple[str, str]]:
    kept = [
        ("--checkpoint_dir", cfg.checkpoint.save_checkpoint_dir),
        ("--load_checkpoint_dir", cfg.checkpoint.load_checkpoint_dir),
    ]
    return [(flag, path) for flag, path in kept if path]


def _nearest_existing(path: str) -> str:
    current: Optional[str] = os.path.abspath(path)
    while current and not os.path.lexists(current):
        parent = os.path.dirname(current)
        current = parent if parent != current else None
    return current or os.sep


def _real(path: str) -> str:
    return os.path.realpath(os.path.expanduser(path))


def _is_under(path: str, directory: str) -> bool:
    return os.path.commonpath([path, directory]) == directory
