"""Audio that passes the header check but does not decode: skipped, never fatal.

A FLAC file cut mid-stream ("flac decoder lost sync") and a float WAV holding NaN or
Inf have valid headers, so ``util.samples`` accepts them at start-up; the decode
happens later, inside tf.data. They used to crash training mid-epoch with a long
``PyFuncStateless`` traceback, at the same batch on every resume (issue 11, case 2).
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path
from typing import List

import numpy as np
import pytest
import soundfile as sf

from util import feeding
from util.config import FeatureConfig
from util.distributed import make_strategy
from util.evaluate import test_set as run_test_set
from util.samples import read_sample_set
from util.training import build_session, train

RATE = 16000  # Hz


def _tone(seconds: float, hz: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def write_cut_flac(path: Path) -> Path:
    """A FLAC whose stream stops halfway: the header still says 1 s."""
    full = path.with_suffix(".full.flac")
    sf.write(str(full), _tone(1.0, 500), RATE, subtype="PCM_16")
    data = full.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    full.unlink()
    return path


def write_float_wav(path: Path, bad_value: float) -> Path:
    """A 32-bit float WAV with one NaN or Inf sample."""
    samples = _tone(1.0, 700)
    samples[RATE // 3] = bad_value
    sf.write(str(path), samples, RATE, subtype="FLOAT")
    return path


@pytest.fixture
def mixed_csv(tmp_path: Path) -> str:
    """Good sines interleaved with a cut FLAC, a NaN WAV and an Inf WAV."""
    rows = []
    for k in range(4):
        wav = tmp_path / f"good{k}.wav"
        sf.write(str(wav), _tone(0.6 + 0.1 * k, 300 * (k + 1)), RATE, subtype="PCM_16")
        rows.append((wav, "ab"[k % 2] + "c"))
    rows.insert(1, (write_cut_flac(tmp_path / "cut.flac"), "a"))
    rows.insert(3, (write_float_wav(tmp_path / "nan.wav", np.nan), "b"))
    rows.append((write_float_wav(tmp_path / "inf.wav", np.inf), "c"))
    path = tmp_path / "mixed.csv"
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["wav_filename", "wav_filesize", "transcript"])
        writer.writerows((p.name, p.stat().st_size, text) for p, text in rows)
    return str(path)


BAD_NAMES = {"cut.flac", "nan.wav", "inf.wav"}


def names(paths) -> List[str]:
    return sorted(os.path.basename(p) for p in paths)


def warnings_of(caplog) -> List[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_bad_files_pass_the_header_check(mixed_csv: str, alphabet) -> None:
    """The premise: only decoding finds these, so the pipeline must cope."""
    sample_set = read_sample_set(mixed_csv, alphabet, FeatureConfig(), skip_bad=False)
    assert len(sample_set.samples) == 7


def test_pipeline_skips_undecodable_samples(mixed_csv, alphabet, caplog) -> None:
    samples = list(read_sample_set(mixed_csv, alphabet, FeatureConfig()).samples)
    plan = feeding.batch_plan(samples, 2, 0, 0, shuffle=False)
    with caplog.at_level(logging.WARNING):
        batches = list(
            feeding.make_dataset(samples, plan, FeatureConfig()).as_numpy_iterator()
        )
    assert [b["index"].tolist() for b in batches] == plan  # the plan is kept
    skipped = [
        samples[i].wav_filename
        for b in batches
        for i, s in zip(b["index"], b["skipped"])
        if s
    ]
    assert names(skipped) == sorted(BAD_NAMES)
    for b in batches:
        assert (b["features_len"][b["skipped"]] == 0).all()
        assert (b["features_len"][~b["skipped"]] > 0).all()
    logged = "\n".join(warnings_of(caplog))
    for sample in samples:
        if os.path.basename(sample.wav_filename) in BAD_NAMES:
            assert f"{sample.wav_filename} ({mixed_csv}:{sample.row})" in logged
    assert "flac decoder lost sync" in logged
    assert "NaN or infinite" in logged


def test_feature_cache_skips_undecodable_samples(mixed_csv, alphabet, tmp_path):
    samples = list(read_sample_set(mixed_csv, alphabet, FeatureConfig()).samples)
    cache = feeding.FeatureCache.open(str(tmp_path / "cache"), samples, FeatureConfig())
    plan = feeding.batch_plan(samples, 3, 0, 0, shuffle=False)
    batches = list(
        feeding.make_dataset(samples, plan, FeatureConfig(), cache).as_numpy_iterator()
    )
    skipped = [
        samples[i].wav_filename for b in batches for i in b["index"][b["skipped"]]
    ]
    assert names(skipped) == sorted(BAD_NAMES)


def test_training_dev_and_test_skip_undecodable_samples(
    mixed_csv, alphabet, tiny_config, caplog
) -> None:
    """Two epochs with a dev set, then a test pass: all finish, bad files named
    once per run (not every epoch), every epoch and dev pass counts them."""
    cfg = tiny_config(
        data={"train_files": (mixed_csv,), "dev_files": (mixed_csv,)},
        train={"epochs": 2},
    )
    session = build_session(cfg, alphabet, make_strategy([]))
    with caplog.at_level(logging.INFO):
        result = train(session)
    assert result.epochs_completed == 2
    assert np.isfinite(result.last_train_loss) and np.isfinite(result.best_dev_loss)
    logged = [r.getMessage() for r in caplog.records]
    epoch_lines = [m for m in logged if m.startswith("Epoch 1 | train loss")]
    assert "3 sample(s) skipped, audio does not decode" in epoch_lines[0]
    dev_lines = [m for m in logged if m.startswith("dev set")]
    assert len(dev_lines) == 2 and all("3 sample(s) skipped" in m for m in dev_lines)
    first_epoch = [m for m in logged if m.startswith("Epoch 0 | train loss")]
    assert "3 sample(s) skipped" in first_epoch[0]
    per_file = [m for m in warnings_of(caplog) if m.startswith("skipping sample")]
    assert names(m.split()[2] for m in per_file) == sorted(BAD_NAMES)  # once each

    sample_set = read_sample_set(mixed_csv, alphabet, cfg.features)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        report = run_test_set(session.steps, sample_set, cfg, alphabet)
    assert len(report.samples) == 4  # the good ones only
    assert all(
        os.path.basename(r.wav_filename) not in BAD_NAMES for r in report.samples
    )
    assert any("3 sample(s) skipped" in m for m in warnings_of(caplog))


def test_resume_over_an_undecodable_sample(mixed_csv, alphabet, tiny_config, tmp_path):
    """Interrupted before the batch holding bad files, resumed: it trains through."""
    directory = str(tmp_path / "resume")
    cfg = tiny_config(
        data={"train_files": (mixed_csv,), "train_batch_size": 2},
        checkpoint={
            "checkpoint_secs": 0,
            "load_checkpoint_dir": directory,
            "save_checkpoint_dir": directory,
        },
    )
    first = build_session(cfg, alphabet, make_strategy([]))
    real_step, calls = first.steps.train_step, []

    def dies_on_second_batch(batch, seed):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # stands in for a killed process
        return real_step(batch, seed)

    first.steps.train_step = dies_on_second_batch
    with pytest.raises(KeyboardInterrupt):
        train(first)
    resumed = build_session(cfg, alphabet, make_strategy([]))
    result = train(resumed)
    assert result.epochs_completed == 1
    assert int(resumed.state.global_step.numpy()) == 4  # 7 samples, batches of 2
