"""bin/data_set_tool.py .tar/.tar.gz/.tgz targets: DeepSpeech's ``TarWriter`` layout
(``samples`` directory entry, ``--include`` files at the root, WAVs
``samples/sampleNNNNNNNN.wav``, ``samples.csv`` last), readable as a training set once
extracted, and never a truncated archive under the target's name."""

from __future__ import annotations

import csv
import importlib.util
import io
import os
import tarfile

import pytest

from util.config import FeatureConfig
from util.samples import read_sample_set

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRANSCRIPTS = ("a", "bb", "ccc")


@pytest.fixture(scope="module")
def tool():
    path = os.path.join(REPO, "bin", "data_set_tool.py")
    spec = importlib.util.spec_from_file_location("data_set_tool_tar", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["set.tar", "set.tar.gz", "set.tgz"])
def test_tar_layout_and_training_set(tool, tmp_path, sample_csv, alphabet, name):
    source = sample_csv(transcripts=TRANSCRIPTS)
    include = os.path.join(REPO, "data", "alphabet.txt")
    target = str(tmp_path / name)
    assert tool.main([source, target, "--include", include, "--workers", "2"]) == 0
    assert _is_gzip(target) == (name != "set.tar")
    with tarfile.open(target) as tar:  # autodetects gzip
        members = tar.getmembers()
        names = [m.name for m in members]
        assert names == [
            "samples",
            "alphabet.txt",
            "samples/sample00000000.wav",
            "samples/sample00000001.wav",
            "samples/sample00000002.wav",
            "samples.csv",
        ]
        assert members[0].isdir()
        rows = list(
            csv.DictReader(io.StringIO(tar.extractfile("samples.csv").read().decode()))
        )
        assert [r["transcript"] for r in rows] == list(TRANSCRIPTS)  # shortest first
        for row in rows:
            assert int(row["wav_filesize"]) == tar.getmember(row["wav_filename"]).size
        tar.extractall(tmp_path / "x", filter="data")
    extracted = read_sample_set(
        str(tmp_path / "x" / "samples.csv"), alphabet, FeatureConfig()
    )
    assert [s.transcript for s in extracted.samples] == list(TRANSCRIPTS)


def _is_gzip(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def test_unlabeled_tar_has_no_transcript_column(tool, tmp_path, sample_csv):
    target = str(tmp_path / "noise.tar")
    assert tool.main([sample_csv(), target, "--unlabeled"]) == 0
    with tarfile.open(target) as tar:
        header = tar.extractfile("samples.csv").read().decode().splitlines()[0]
    assert header == "wav_filename,wav_filesize"


def test_bad_targets_and_includes(tool, tmp_path, sample_csv, capsys):
    source = sample_csv()
    assert tool.main([source, str(tmp_path / "x.zip")]) == 1
    assert ".tar, .tar.gz or .tgz" in capsys.readouterr().err
    assert tool.main([source, str(tmp_path / "x.csv"), "--include", source]) == 1
    assert "--include: only .tar" in capsys.readouterr().err
    missing = str(tmp_path / "nope.txt")
    assert tool.main([source, str(tmp_path / "x.tar"), "--include", missing]) == 1
    assert "no such file" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "x.tar")


def test_interrupted_write_leaves_no_archive(tool, tmp_path, sample_csv, monkeypatch):
    calls = []

    def failing(tar, name, data):
        calls.append(name)
        if len(calls) == 2:
            raise OSError("No space left on device")
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))

    monkeypatch.setattr(tool, "_add_bytes", failing)
    target = str(tmp_path / "set.tar")
    assert tool.main([sample_csv(), target]) == 1
    assert not os.path.exists(target) and not os.path.exists(target + ".partial")
