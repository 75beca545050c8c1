"""DeepSpeech 0.9 sample databases (.sdb) (issue 12): the byte layout of 0.9's
``DirectSDBWriter``/``SDB`` (training/deepspeech_training/util/sample_collections.py),
reading them wherever a CSV goes, and bin/data_set_tool.py with 0.9's arguments."""

from __future__ import annotations

import csv
import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

from util.audio import read_audio
from util.config import FeatureConfig
from util.sample_collections import (
    AUDIO_TYPE_OPUS,
    AUDIO_TYPE_WAV,
    SDBError,
    SDBReader,
    SDBWriter,
    encode_audio,
    read_sdb_audio,
)
from util.samples import OUT_OF_ALPHABET, read_sample_set

LDC93S1_TEXT = "she had your dark suit in greasy wash water all year"


def parse_like_upstream(path: str):
    """0.9's SDB reader, step by step from its source: (schema, [(audio, text)])."""
    with open(path, "rb") as fin:
        data = fin.read()
    assert data[:8] == b"SAMPLEDB"
    (meta_len,) = struct.unpack_from(">Q", data, 8)
    meta = json.loads(data[16 : 16 + meta_len].decode())
    pos = 16 + meta_len
    sample_chunk_len, n_samples = struct.unpack_from(">QQ", data, pos)
    index_at = pos + 8 + sample_chunk_len  # seek(sample_chunk_len + 8, 1) after it
    index_len, n = struct.unpack_from(">QQ", data, index_at)
    assert n == n_samples and index_len == 8 * (n + 1)
    assert index_at + 8 + index_len == len(data)
    offsets = struct.unpack_from(f">{n}Q", data, index_at + 16)
    rows = []
    for offset in offsets:
        (entry_len,) = struct.unpack_from(">I", data, offset)
        pos, columns = offset + 4, []
        for _ in meta["schema"]:
            (size,) = struct.unpack_from(">I", data, pos)
            columns.append(data[pos + 4 : pos + 4 + size])
            pos += 4 + size
        assert pos - offset - 4 == entry_len
        rows.append(columns)
    return meta["schema"], rows


@pytest.fixture
def wav_sdb(tmp_path, ldc93s1_wav, sine_wav):
    path = str(tmp_path / "set.sdb")
    audio, _ = read_audio(ldc93s1_wav, 16000)
    sine, _ = read_audio(sine_wav(duration_s=0.6), 16000)
    with SDBWriter(path, AUDIO_TYPE_WAV) as out:
        out.add(encode_audio(sine, 16000, AUDIO_TYPE_WAV), "ab")
        out.add(encode_audio(audio, 16000, AUDIO_TYPE_WAV), LDC93S1_TEXT)
        out.add(encode_audio(sine, 16000, AUDIO_TYPE_WAV), "a#b")  # not in alphabet
    return path


def test_layout_is_upstreams(wav_sdb, ldc93s1_wav):
    schema, rows = parse_like_upstream(wav_sdb)
    assert schema == [
        {"content": "speech", "mime-type": "audio/wav"},
        {"content": "transcript", "mime-type": "text/plain"},
    ]
    assert [r[1].decode() for r in rows] == ["ab", LDC93S1_TEXT, "a#b"]
    with open(ldc93s1_wav, "rb") as fin:  # 16-bit mono 16 kHz WAV: the same samples
        original = fin.read()
    assert rows[1][0][-1000:] == original[-1000:]


def test_read_wherever_a_csv_goes(wav_sdb, ldc93s1_wav, alphabet, tmp_path):
    sample_set = read_sample_set(wav_sdb, alphabet, FeatureConfig())
    assert [s.transcript for s in sample_set.samples] == ["ab", LDC93S1_TEXT]
    (bad,) = sample_set.bad
    assert (bad.csv, bad.row, bad.reason) == (wav_sdb, 2, OUT_OF_ALPHABET)
    assert bad.wav_filename == f"{wav_sdb}:2"
    ldc = sample_set.samples[1]
    assert ldc.wav_filename == f"{wav_sdb}:1"
    csv_path = tmp_path / "ldc93s1.csv"
    with open(csv_path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["wav_filename", "wav_filesize", "transcript"])
        writer.writerow([ldc93s1_wav, os.path.getsize(ldc93s1_wav), LDC93S1_TEXT])
    from_csv = read_sample_set(str(csv_path), alphabet, FeatureConfig()).samples[0]
    assert ldc.n_frames == from_csv.n_frames
    expected, _ = read_audio(ldc93s1_wav, 16000)
    assert np.array_equal(read_sdb_audio(ldc.wav_filename, 16000), expected)
    with pytest.raises(SDBError, match="not a sample database"):
        SDBReader(ldc93s1_wav)


def test_opus_round_trip(tmp_path, ldc93s1_wav):
    pytest.importorskip("opuslib")
    audio, _ = read_audio(ldc93s1_wav, 16000)
    path = str(tmp_path / "opus.sdb")
    with SDBWriter(path, AUDIO_TYPE_OPUS) as out:
        out.add(encode_audio(audio, 16000, AUDIO_TYPE_OPUS), LDC93S1_TEXT)
    schema, rows = parse_like_upstream(path)
    assert schema[0]["mime-type"] == "application/vnd.mozilla.opus"
    pcm_bytes, rate, channels, width = struct.unpack_from(">IIBB", rows[0][0])
    assert (pcm_bytes, rate, channels, width) == (2 * len(audio), 16000, 1, 2)
    back = read_sdb_audio(f"{path}:0", 16000)
    assert len(back) == len(audio)
    # Opus is lossy and delays the signal a little; the energy must still match.
    assert abs(np.sqrt(np.mean(back**2)) / np.sqrt(np.mean(audio**2)) - 1) < 0.1


def test_train_on_an_sdb(tiny_config, alphabet, wav_sdb):
    from util.distributed import make_strategy
    from util.training import build_session, train

    cfg = tiny_config(data={"train_files": (wav_sdb,), "limit_train": 1})
    result = train(build_session(cfg, alphabet, make_strategy([])))
    assert result.epochs_completed == 1 and np.isfinite(result.last_train_loss)


def test_data_set_tool_with_09_arguments(repo_root, tmp_path, wav_sdb, alphabet):
    tool = os.path.join(repo_root, "bin", "data_set_tool.py")

    def run(*args):
        return subprocess.run(
            [sys.executable, tool, *args], capture_output=True, text=True, timeout=300
        )

    csv_target = str(tmp_path / "out" / "combined.csv")
    os.makedirs(os.path.dirname(csv_target))
    result = run(wav_sdb, csv_target)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(open(csv_target, encoding="utf-8")))
    assert [r["transcript"] for r in rows] == [
        "ab",
        "a#b",
        LDC93S1_TEXT,
    ]  # shortest first
    assert rows[0]["wav_filename"] == os.path.join("combined", "sample00000000.wav")
    sdb_target = str(tmp_path / "again.sdb")
    result = run(csv_target, sdb_target, "--audio-type", "wav", "--workers", "2")
    assert result.returncode == 0, result.stderr
    _, again = parse_like_upstream(sdb_target)
    assert [r[1].decode() for r in again] == ["ab", "a#b", LDC93S1_TEXT]
    assert len(read_sample_set(sdb_target, alphabet, FeatureConfig()).samples) == 2
    result = run(csv_target, str(tmp_path / "x.sdb"), "--augment", "pitch")
    assert result.returncode == 1 and "--augment pitch" in result.stderr
    result = run(csv_target, str(tmp_path / "x.zip"))
    assert result.returncode == 1 and ".tar.gz or .tgz" in result.stderr
