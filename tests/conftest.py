"""Shared pytest fixtures: repository paths, the alphabet, test audio, tiny configs."""

from __future__ import annotations

import csv
import dataclasses
import logging
import os
import subprocess
import sys
from typing import Callable

import numpy as np
import pytest
import soundfile as sf

from ctcdecode import Alphabet
from util.config import Config

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# absl's logger level before any test (or TensorFlow) touched it.
_ABSL_LEVEL = logging.getLogger("absl").level


@pytest.fixture(autouse=True)
def _keep_absl_log_level():
    """Undo TF's side effect on absl's logger level, before and after each test.

    ``tf.saved_model.save`` leaves the ``absl`` logger at WARNING, and then ``caplog``
    in any later test stops seeing the INFO records of util/ modules. Resetting to the
    level captured at import (not the one found at setup) also covers module-scoped
    fixtures, which pytest sets up before this function-scoped one.
    """
    logger = logging.getLogger("absl")
    logger.setLevel(_ABSL_LEVEL)
    yield
    logger.setLevel(_ABSL_LEVEL)


@pytest.fixture(scope="session")
def repo_root() -> str:
    """Absolute path of the repository root, whatever the working directory."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def alphabet(repo_root: str) -> Alphabet:
    """DeepSpeech's English alphabet from ``data/alphabet.txt`` (28 labels + blank)."""
    return Alphabet(os.path.join(repo_root, "data", "alphabet.txt"))


@pytest.fixture(scope="session")
def ldc93s1_wav(repo_root: str) -> str:
    """Path of LDC93S1.wav: 16 kHz mono 16-bit, 2.92 s, DeepSpeech's smoke-test clip."""
    return os.path.join(repo_root, "data", "ldc93s1", "LDC93S1.wav")


@pytest.fixture(scope="session")
def pcm(ldc93s1_wav: str) -> np.ndarray:
    """LDC93S1 as the exported model and the client take it: int16 samples, 16 kHz."""
    samples, rate = sf.read(ldc93s1_wav, dtype="int16")
    assert rate == 16000
    return samples


@pytest.fixture
def sine_wav(tmp_path) -> Callable[..., str]:
    """Factory writing a 16-bit PCM sine WAV into ``tmp_path``; returns its path.

    ``sine_wav(sample_rate=16000, n_channels=1, duration_s=1.0, freq_hz=440.0,
    amplitude=0.5, name=None)``. Channel ``c`` has frequency ``freq_hz * (c + 1)``
    so that channels differ. Written with soundfile, not ``util.audio``, so audio
    tests do not depend on the code they test.
    """

    def make(
        sample_rate: int = 16000,
        n_channels: int = 1,
        duration_s: float = 1.0,
        freq_hz: float = 440.0,
        amplitude: float = 0.5,
        name: str = "",
    ) -> str:
        t = np.arange(int(round(sample_rate * duration_s))) / sample_rate
        channels = [
            amplitude * np.sin(2 * np.pi * freq_hz * (c + 1) * t)
            for c in range(n_channels)
        ]
        data = np.stack(channels, axis=1)  # [n, channels] float64
        path = tmp_path / (name or f"sine_{sample_rate}hz_{n_channels}ch.wav")
        sf.write(str(path), data, sample_rate, subtype="PCM_16", format="WAV")
        return str(path)

    return make


# --- tiny configs and CSVs for model, training, checkpoint and export tests ---------

TINY_TRANSCRIPTS = ("a", "ab", "abc")


@pytest.fixture
def tiny_config(tmp_path, repo_root: str) -> Callable[..., Config]:
    """Factory of a small, fast Config whose directories all live in ``tmp_path``.

    ``tiny_config(model={...}, data={...}, train={...}, checkpoint={...}, ...)``: each
    keyword overrides fields of that section. Defaults: n_hidden 16, no dropout,
    1 epoch, lr 0.003, no progress bars, checkpoints in ``tmp_path/ckpt``.
    """
    defaults = {
        "model": {"n_hidden": 16, "dropout_rate": 0.0},
        "data": {
            "alphabet_config_path": os.path.join(repo_root, "data", "alphabet.txt")
        },
        "train": {
            "epochs": 1,
            "learning_rate": 0.003,
            "show_progressbar": False,
            "summary_dir": str(tmp_path / "summaries"),
        },
        "checkpoint": {
            "load_checkpoint_dir": str(tmp_path / "ckpt"),
            "save_checkpoint_dir": str(tmp_path / "ckpt"),
        },
    }

    def make(**sections) -> Config:
        base = Config()
        replaced = {}
        for name in set(defaults) | set(sections):
            values = {**defaults.get(name, {}), **sections.get(name, {})}
            replaced[name] = dataclasses.replace(getattr(base, name), **values)
        return dataclasses.replace(base, **replaced)

    return make


@pytest.fixture
def sample_csv(tmp_path, sine_wav) -> Callable[..., str]:
    """Factory writing a sample CSV of sine WAVs into ``tmp_path``; returns its path.

    ``sample_csv(transcripts=TINY_TRANSCRIPTS, name="samples.csv", duration_s=0.5)``:
    row k is a ``duration_s + 0.1 * k`` s sine at ``300 * (k + 1)`` Hz, so the rows
    differ in length (and sort in CSV order) and in content.
    """

    def make(
        transcripts=TINY_TRANSCRIPTS, name: str = "samples.csv", duration_s: float = 0.5
    ) -> str:
        path = tmp_path / name
        with open(path, "w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["wav_filename", "wav_filesize", "transcript"])
            for k, text in enumerate(transcripts):
                wav = sine_wav(
                    duration_s=duration_s + 0.1 * k,
                    freq_hz=300.0 * (k + 1),
                    name=f"{path.stem}_{k}.wav",
                )
                writer.writerow([os.path.basename(wav), os.path.getsize(wav), text])
        return str(path)

    return make


@pytest.fixture(scope="session")
def run_python(repo_root: str) -> Callable[..., subprocess.CompletedProcess]:
    """Run Python ``code`` in a fresh interpreter in the repo root; return the result.

    For what must happen before TensorFlow initialises its devices (splitting the CPU
    into logical devices for ``MirroredStrategy``), which a pytest process that has
    already run TF cannot do. Fails the test, showing the output, on a non-zero exit.
    """

    def run(code: str, timeout: float = 300) -> subprocess.CompletedProcess:
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}  # util: installed
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=repo_root,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            pytest.fail(f"subprocess failed:\n{result.stdout}\n{result.stderr}")
        return result

    return run


@pytest.fixture(scope="session")
def ldc93s1_model(tmp_path_factory):
    """(tflite, scorer, checkpoint dir) of a small unidirectional model trained on
    LDC93S1 and padded/resampled variants of it (tests/helpers.py), so that it
    transcribes the clip exactly when the VAD cuts it out of a long recording or a
    browser streams it. Trained once per session (about 1-2 minutes on 2 cores).
    """
    from helpers import ldc93s1_scorer, train_robust_ldc93s1

    out = tmp_path_factory.mktemp("ldc93s1_model")
    tflite = train_robust_ldc93s1(str(out))
    scorer = ldc93s1_scorer(str(out / "kenlm.scorer"))
    return tflite, scorer, str(out / "ckpt")
