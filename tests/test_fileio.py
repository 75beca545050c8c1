"""ctcdecode.fileio: one atomic-write helper (old file or whole new one, never half)."""

import os

import pytest

from ctcdecode import fileio


def test_atomic_write_text_replaces_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    fileio.atomic_write_text(str(path), "new\n")
    assert path.read_text() == "new\n"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_error_inside_the_block_keeps_the_old_file(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="half way"):
        with fileio.atomic_write(str(path), "wb") as f:
            f.write(b"partial")
            raise RuntimeError("half way")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_a_reader_during_the_write_sees_the_old_file(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    with fileio.atomic_write(str(path)) as f:
        f.write("new")
        f.flush()
        assert path.read_text() == "old"
    assert path.read_text() == "new"


def test_atomic_path_for_writers_that_open_the_file(tmp_path):
    path = tmp_path / "model.bin"
    with fileio.atomic_path(str(path)) as tmp:
        assert os.path.dirname(tmp) == str(tmp_path)
        assert os.path.basename(tmp).startswith("model.bin" + fileio.TMP_INFIX)
        with open(tmp, "wb") as out:
            out.write(b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"


def test_atomic_path_refuses_a_block_that_wrote_nothing(tmp_path):
    path = tmp_path / "out"
    with pytest.raises(FileNotFoundError, match="nothing was written"):
        with fileio.atomic_path(str(path)):
            pass
    assert not path.exists()


def test_file_and_directory_are_fsynced(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append(os.path.realpath(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(fileio.os, "fsync", fsync)
    path = tmp_path / "out.txt"
    fileio.atomic_write_text(str(path), "x")
    assert str(tmp_path) in synced  # the directory, after the rename
    assert any(os.path.basename(p).startswith("out.txt.tmp-") for p in synced)


def test_text_mode_is_utf8_and_mode_is_checked(tmp_path):
    path = tmp_path / "u.txt"
    fileio.atomic_write_text(str(path), "ü€")
    assert path.read_bytes() == "ü€".encode("utf-8")
    with pytest.raises(ValueError, match="mode"):
        with fileio.atomic_write(str(path), "a"):
            pass
