"""Tests for util/samples.py: CSV reading, path resolution and bad-sample detection."""

from __future__ import annotations

import csv
import logging
import math
import os
from pathlib import Path
from typing import Sequence, Tuple

import numpy as np
import pytest
import soundfile

from ctcdecode import Alphabet
from util import samples as S
from util.config import FeatureConfig

REPO_ROOT = Path(__file__).resolve().parents[1]
LDC93S1_DIR = REPO_ROOT / "data" / "ldc93s1"
LDC93S1_TEXT = "she had your dark suit in greasy wash water all year"


def write_sine(
    path: Path, seconds: float, rate: int = 16000, channels: int = 1, hz: float = 440.0
) -> Path:
    """A 16-bit PCM sine WAV of ``seconds`` at ``rate`` Hz."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(round(seconds * rate))) / rate
    wave = 0.5 * np.sin(2 * np.pi * hz * t)
    if channels > 1:
        wave = np.stack([wave] * channels, axis=1)
    soundfile.write(str(path), wave, rate, subtype="PCM_16")
    return path


def write_csv(path: Path, rows: Sequence[Tuple[str, object, str]]) -> Path:
    """A sample CSV with DeepSpeech's header and ``rows``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(S.CSV_COLUMNS)
        writer.writerows(rows)
    return path


def row_for(wav: Path, transcript: str, name: str = "") -> Tuple[str, object, str]:
    size = os.path.getsize(wav) if wav.exists() else 0
    return (name or str(wav), size, transcript)


@pytest.fixture
def english() -> Alphabet:
    return Alphabet(str(REPO_ROOT / "data" / "alphabet.txt"))


@pytest.fixture
def cfg() -> FeatureConfig:
    return FeatureConfig()


def test_ctc_required_frames(english: Alphabet) -> None:
    assert S.ctc_required_frames(english.encode("hello")) == 6
    assert S.ctc_required_frames([]) == 0
    assert S.ctc_required_frames([1, 1, 1]) == 5
    assert S.ctc_required_frames([1, 2, 1]) == 3


def test_relative_paths_resolve_against_csv_dir(
    tmp_path: Path, english: Alphabet, cfg: FeatureConfig, monkeypatch
) -> None:
    data = tmp_path / "corpus"
    near = write_sine(data / "a.wav", 1.0)
    deep = write_sine(data / "wavs" / "b.wav", 1.5)
    absolute = write_sine(tmp_path / "elsewhere" / "c.wav", 0.5)
    csv_path = write_csv(
        data / "train.csv",
        [
            row_for(near, "one", "a.wav"),
            row_for(deep, "two", "wavs/b.wav"),
            row_for(absolute, "three"),
        ],
    )
    monkeypatch.chdir(tmp_path / "elsewhere")  # cwd must not matter
    result = S.read_sample_set(str(csv_path), english, cfg, skip_bad=False)
    assert [s.wav_filename for s in result.samples] == [
        str(near),
        str(deep),
        str(absolute),
    ]
    assert result.name == str(csv_path)
    assert not result.bad


def test_sample_fields(tmp_path: Path, english: Alphabet, cfg: FeatureConfig) -> None:
    wav = write_sine(tmp_path / "a.wav", 1.0)
    ldc = LDC93S1_DIR / "LDC93S1.wav"
    csv_path = write_csv(
        tmp_path / "s.csv",
        [("a.wav", "garbage", "hello world"), row_for(ldc, LDC93S1_TEXT)],
    )
    first, second = S.read_sample_set(str(csv_path), english, cfg).samples
    assert first == S.Sample(
        wav_filename=str(wav),
        wav_filesize=os.path.getsize(wav),  # garbage in the CSV -> size on disk
        transcript="hello world",
        labels=tuple(english.encode("hello world")),
        n_frames=cfg.n_frames(16000),
        duration_s=pytest.approx(1.0),
        csv=str(csv_path),
        row=2,
    )
    n_ldc = soundfile.info(str(ldc)).frames
    assert second.row == 3
    assert second.n_frames == cfg.n_frames(n_ldc)
    assert second.duration_s == pytest.approx(n_ldc / 16000)
    assert english.decode(second.labels) == LDC93S1_TEXT


def make_bad_csv(tmp_path: Path) -> Path:
    """Rows 2 and 9 are good; rows 3..8 each have one kind of problem."""
    good = write_sine(tmp_path / "good.wav", 1.0)
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"this is not audio at all\n" * 80)
    empty = tmp_path / "empty.wav"
    soundfile.write(str(empty), np.zeros([0], np.int16), 16000, subtype="PCM_16")
    short = write_sine(tmp_path / "short.wav", 0.1)  # 4 frames
    return write_csv(
        tmp_path / "bad.csv",
        [
            row_for(good, "fine"),
            ("missing.wav", 100, "gone"),
            row_for(garbage, "noise"),
            row_for(empty, "nothing"),
            row_for(good, "   "),
            row_for(good, "café straße"),
            row_for(short, "far too long a transcript"),
            row_for(good, "also fine"),
        ],
    )


EXPECTED_BAD = [
    (3, "missing.wav", S.MISSING_FILE),
    (4, "garbage.wav", S.UNREADABLE),
    (5, "empty.wav", S.EMPTY_AUDIO),
    (6, "good.wav", S.EMPTY_TRANSCRIPT),
    (7, "good.wav", S.OUT_OF_ALPHABET),
    (8, "short.wav", S.CTC_INFEASIBLE),
]


def test_bad_samples_are_skipped_with_reason_and_row(
    tmp_path: Path, english: Alphabet, cfg: FeatureConfig, caplog
) -> None:
    csv_path = make_bad_csv(tmp_path)
    with caplog.at_level(logging.INFO):
        result = S.read_sample_set(str(csv_path), english, cfg, skip_bad=True)
    assert [s.row for s in result.samples] == [2, 9]
    assert [s.transcript for s in result.samples] == ["fine", "also fine"]
    got = [(b.row, os.path.basename(b.wav_filename), b.reason) for b in result.bad]
    assert got == EXPECTED_BAD
    assert all(b.csv == str(csv_path) for b in result.bad)
    details = {b.reason: b.detail for b in result.bad}
    assert details[S.OUT_OF_ALPHABET] == "'é', 'ß'"  # in order of appearance
    needed = S.ctc_required_frames(english.encode("far too long a transcript"))
    assert details[S.CTC_INFEASIBLE] == (
        f"needs {needed} frames, audio has {cfg.n_frames(1600)}"
    )
    assert result.total_duration_s == pytest.approx(2.0)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "skipping 6 bad sample(s)" in warnings[0]
    assert f"{csv_path}:8 " in warnings[0]
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any(
        f"{csv_path}: 2 samples (0:00:02 of audio); 6 skipped" in m for m in infos
    )


def test_skip_bad_false_raises_naming_every_row(
    tmp_path: Path, english: Alphabet, cfg: FeatureConfig
) -> None:
    csv_path = make_bad_csv(tmp_path)
    with pytest.raises(S.BadSamplesError) as caught:
        S.read_sample_set(str(csv_path), english, cfg, skip_bad=False)
    message = str(caught.value)
    assert "6 bad sample(s)" in message and "--skip_bad_samples" in message
    for row, name, reason in EXPECTED_BAD:
        assert f"{csv_path}:{row} {tmp_path / name}: {reason} (" in message
    assert len(caught.value.bad) == 6
    assert isinstance(caught.value, ValueError)


def test_error_message_lists_at_most_20_rows() -> None:
    bad = [
        S.BadSample("x.csv", i, "a.wav", S.MISSING_FILE, "no such file")
        for i in range(25)
    ]
    message = str(S.BadSamplesError(bad))
    assert "x.csv:19 a.wav" in message and "x.csv:20 a.wav" not in message
    assert "25 bad sample(s)" in message and "and 5 more" in message


def test_limit_takes_first_rows(
    tmp_path: Path, english: Alphabet, cfg: FeatureConfig
) -> None:
    wav = write_sine(tmp_path / "a.wav", 0.5)
    rows = [row_for(wav, text) for text in ["one", "two", "three", "four"]]
    csv_path = write_csv(tmp_path / "s.csv", rows)
    limited = S.read_sample_set(str(csv_path), english, cfg, limit=2)
    assert [s.transcript for s in limited.samples] == ["one", "two"]
    everything = S.read_sample_set(str(csv_path), english, cfg, limit=0)
    assert len(everything.samples) == 4


def test_null_like_transcripts_stay_text(
    tmp_path: Path, english: Alphabet, cfg: FeatureConfig
) -> None:
    wav = write_sine(tmp_path / "a.wav", 0.5)
    words = ["null", "nan", "na", "none", "true", "n'a"]
    csv_path = write_csv(tmp_path / "s.csv", [row_for(wav, w) for w in words])
    result = S.read_sample_set(str(csv_path), english, cfg, skip_bad=False)
    assert [s.transcript for s in result.samples] == words
    assert english.decode(result.samples[0].labels) == "null"


def test_resampled_and_downmixed_files_are_counted(
    tmp_path: Path, english: Alphabet, cfg: FeatureConfig, caplog
) -> None:
    ldc8k = LDC93S1_DIR / "LDC93S1_pcms16le_1_8000.wav"
    stereo = LDC93S1_DIR / "LDC93S1_pcms16le_2_44100.wav"
    plain = write_sine(tmp_path / "a.wav", 0.5)
    csv_path = write_csv(
        tmp_path / "s.csv",
        [
            row_for(ldc8k, LDC93S1_TEXT),
            row_for(stereo, LDC93S1_TEXT),
            row_for(plain, "a"),
        ],
    )
    with caplog.at_level(logging.INFO):
        result = S.read_sample_set(str(csv_path), english, cfg, skip_bad=False)
    assert (result.n_resampled, result.n_downmixed) == (2, 1)
    assert result.source_rates == (8000, 16000, 44100)
    n_8k = soundfile.info(str(ldc8k)).frames
    assert result.samples[0].n_frames == cfg.n_frames(round(n_8k * 2))
    n_44k = soundfile.info(str(stereo)).frames
    assert result.samples[1].n_frames == cfg.n_frames(math.ceil(n_44k * 16000 / 44100))
    summary = " ".join(r.getMessage() for r in caplog.records)
    assert "2 files will be resampled from rates {8000, 44100} to 16000 Hz" in summary
    assert "1 downmixed to mono" in summary


def test_csv_problems_raise_value_errors(
    tmp_path: Path, english: Alphabet, cfg: FeatureConfig
) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(S.CsvNotFoundError, match="nope.csv"):
        S.read_sample_set(str(missing), english, cfg)
    assert issubclass(S.CsvNotFoundError, ValueError)
    assert issubclass(S.CsvNotFoundError, FileNotFoundError)
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("path,text\na.wav,hello\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"wrong.csv.*transcript.*path, text"):
        S.read_sample_set(str(wrong), english, cfg)
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes(
        "wav_filename,wav_filesize,transcript\na.wav,1,café\n".encode("latin-1")
    )
    with pytest.raises(ValueError, match="latin1.csv"):
        S.read_sample_set(str(latin1), english, cfg)


def test_empty_csv_gives_empty_set(
    tmp_path: Path, english: Alphabet, cfg: FeatureConfig
) -> None:
    csv_path = write_csv(tmp_path / "s.csv", [])
    result = S.read_sample_set(str(csv_path), english, cfg, skip_bad=False)
    assert result.samples == () and result.bad == ()
    assert result.total_duration_s == 0.0


def test_unquoted_comma_names_the_line_not_a_missing_file(
    tmp_path: Path, english: Alphabet, cfg: FeatureConfig
) -> None:
    """Issue 11 case 10: pandas took the extra field for an index column, so the row
    read as wav_filename '93638' ("missing file .../93638")."""
    header = "wav_filename,wav_filesize,transcript\n"
    row = "LDC93S1.wav,93638,she had, your dark suit\n"
    for name, text, line in (
        ("first.csv", row, 2),
        ("later.csv", "a.wav,1,a\n" + row, 3),
    ):
        bad = tmp_path / name
        bad.write_text(header + text, encoding="utf-8")
        with pytest.raises(ValueError) as err:
            S.read_sample_set(str(bad), english, cfg)
        message = str(err.value)
        assert name in message and f"line {line}" in message
        assert "quote" in message and "93638" not in message
