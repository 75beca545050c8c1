"""Tests for util/preflight.py and --remove_export: output locations checked first."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess

import pytest

from util.config import Config, ExportConfig
from util.export import prepare_export_dir
from util.preflight import OutputLocationError, check_outputs


@contextlib.contextmanager
def read_only_dir(path):
    """``path`` as a read-only directory: a read-only tmpfs as root (root ignores
    permission bits), chmod 555 otherwise."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        path.chmod(0o555)
        try:
            yield path
        finally:
            path.chmod(0o755)
        return
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)],
        capture_output=True,
    )
    if mounted.returncode != 0:
        pytest.skip("root without mount permission: no read-only directory to test")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def config(tmp_path, **sections) -> Config:
    base = Config()
    cfg = dataclasses.replace(
        base,
        checkpoint=dataclasses.replace(
            base.checkpoint,
            load_checkpoint_dir=str(tmp_path / "ckpt"),
            save_checkpoint_dir=str(tmp_path / "ckpt"),
        ),
        train=dataclasses.replace(base.train, summary_dir=str(tmp_path / "summaries")),
    )
    for name, values in sections.items():
        cfg = dataclasses.replace(
            cfg, **{name: dataclasses.replace(getattr(cfg, name), **values)}
        )
    return cfg


def test_writable_locations_pass_and_create_nothing(tmp_path):
    cfg = config(tmp_path, export={"export_dir": str(tmp_path / "a" / "export")})
    check_outputs(cfg, training=True, evaluating=True)
    assert os.listdir(tmp_path) == []


def test_checkpoint_dir_that_is_a_file(tmp_path):
    (tmp_path / "ckpt").write_text("x")
    with pytest.raises(OutputLocationError, match="--checkpoint_dir .* is a file"):
        check_outputs(config(tmp_path), training=True, evaluating=False)
    # Not training: the checkpoint dir is only read, so it is not checked.
    check_outputs(config(tmp_path), training=False, evaluating=False)


def test_directory_under_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    cfg = config(tmp_path, train={"summary_dir": str(tmp_path / "file" / "sub")})
    with pytest.raises(OutputLocationError, match="--summary_dir .* is under the file"):
        check_outputs(cfg, training=True, evaluating=False)


@pytest.mark.parametrize("flag", ["checkpoint", "export", "summary"])
def test_read_only_locations_fail_naming_the_flag(tmp_path, flag):
    with read_only_dir(tmp_path / "ro") as ro:
        target = str(ro / "out")
        cfg = {
            "checkpoint": lambda: config(
                tmp_path,
                checkpoint={
                    "save_checkpoint_dir": target,
                    "load_checkpoint_dir": target,
                },
            ),
            "export": lambda: config(tmp_path, export={"export_dir": target}),
            "summary": lambda: config(tmp_path, train={"summary_dir": target}),
        }[flag]()
        name = {"summary": "summary_dir"}.get(flag, f"{flag}_dir")
        with pytest.raises(OutputLocationError, match=f"--{name} .* is not writable"):
            check_outputs(cfg, training=True, evaluating=True)


@pytest.mark.parametrize("name", ["..", ".", "", "a/b"])
def test_export_file_name_must_be_a_plain_name(tmp_path, name):
    cfg = config(
        tmp_path,
        export={"export_dir": str(tmp_path / "e"), "export_file_name": name},
    )
    with pytest.raises(OutputLocationError, match="--export_file_name"):
        check_outputs(cfg, training=False, evaluating=True)


def test_remove_export_removes_only_what_an_export_writes(tmp_path):
    export = tmp_path / "export"
    (export / "output_graph" / "variables").mkdir(parents=True)
    (export / "output_graph.tflite").write_text("model")
    (export / "metadata.json").write_text("{}")
    (export / "notes.txt").write_text("mine")
    (export / "data").mkdir()
    exp = ExportConfig(export_dir=str(export), remove_export=True)
    prepare_export_dir(exp)
    assert sorted(os.listdir(export)) == ["data", "notes.txt"]
