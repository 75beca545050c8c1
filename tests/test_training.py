"""Tests for util/training.py: epochs, resume (even after kill -9), bad batches."""

from __future__ import annotations

import csv
import logging
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from util import steps as steps_module
from util.checkpoints import BEST_DIR
from util.distributed import make_strategy
from util.model import trainable_variables
from util.samples import BadSamplesError
from util.training import build_session, train

LDC93S1_TEXT = "she had your dark suit in greasy wash water all year"


def session_for(cfg, alphabet):
    return build_session(cfg, alphabet, make_strategy([]))


def weights_of(session):
    return [v.numpy().copy() for v in trainable_variables(session.model)]


def messages(caplog, level=logging.INFO):
    return [r.getMessage() for r in caplog.records if r.levelno >= level]


def test_two_epochs_with_dev_set(tiny_config, alphabet, sample_csv):
    csv_path = sample_csv()
    cfg = tiny_config(
        data={"train_files": (csv_path,), "dev_files": (csv_path,)},
        train={"epochs": 2},
    )
    session = session_for(cfg, alphabet)
    initial = weights_of(session)
    result = train(session)
    assert result.epochs_completed == 2
    assert int(session.state.epoch.numpy()) == 2
    assert int(session.state.global_step.numpy()) == 6  # 3 samples, batch size 1
    assert int(session.state.step_in_epoch.numpy()) == 0
    assert np.isfinite(result.last_train_loss)
    assert np.isfinite(result.best_dev_loss)
    assert not result.stopped_early
    ckpt_dir = cfg.checkpoint.save_checkpoint_dir
    assert tf.train.latest_checkpoint(os.path.join(ckpt_dir, BEST_DIR))
    assert tf.train.latest_checkpoint(ckpt_dir).endswith("train-6")
    assert not all(np.array_equal(a, b) for a, b in zip(weights_of(session), initial))


def test_resume_mid_epoch_is_exact(tiny_config, alphabet, sample_csv, tmp_path, caplog):
    """Interrupted after 2 of 4 batches and resumed: the weights of a straight run."""
    csv_path = sample_csv(("a", "ab", "abc", "b"))

    def config(name):
        directory = str(tmp_path / name)
        return tiny_config(
            data={"train_files": (csv_path,)},
            checkpoint={
                "checkpoint_secs": 0,  # save after every batch
                "load_checkpoint_dir": directory,
                "save_checkpoint_dir": directory,
            },
        )

    interrupted = session_for(config("resumed"), alphabet)
    real_step, calls = interrupted.steps.train_step, []

    def dies_on_third_batch(batch, seed):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # stands in for a killed process
        return real_step(batch, seed)

    interrupted.steps.train_step = dies_on_third_batch
    with pytest.raises(KeyboardInterrupt):
        train(interrupted)

    resumed = session_for(config("resumed"), alphabet)
    with caplog.at_level(logging.INFO):
        train(resumed)
    logged = messages(caplog)
    assert any("resumed training from last checkpoint" in m for m in logged)
    assert any("epoch 0: resuming after 2 of 4 batches" in m for m in logged)
    assert int(resumed.state.global_step.numpy()) == 4
    assert int(resumed.state.epoch.numpy()) == 1

    straight = session_for(config("straight"), alphabet)
    train(straight)
    for got, want in zip(weights_of(resumed), weights_of(straight)):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def latest_step(ckpt_dir: str) -> int:
    path = tf.train.latest_checkpoint(ckpt_dir)
    return int(path.rsplit("-", 1)[1]) if path else 0


def checkpoint_counters(ckpt_dir: str):
    """(epoch, global_step) stored in the latest 'last' checkpoint."""
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(ckpt_dir))
    value = "/.ATTRIBUTES/VARIABLE_VALUE"
    return (
        int(reader.get_tensor("state/epoch" + value)),
        int(reader.get_tensor("state/global_step" + value)),
    )


def test_resume_after_kill_9(repo_root, ldc93s1_wav, tmp_path):
    """A run killed with SIGKILL goes on from its last checkpoint, not epoch 0."""
    csv_path = tmp_path / "ldc93s1.csv"
    with open(csv_path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["wav_filename", "wav_filesize", "transcript"])
        writer.writerow([ldc93s1_wav, os.path.getsize(ldc93s1_wav), LDC93S1_TEXT])
    ckpt_dir = str(tmp_path / "ckpt")
    command = [
        sys.executable, os.path.join(repo_root, "DeepSpeech.py"),
        "--train_files", str(csv_path), "--n_hidden", "16", "--checkpoint_secs", "1",
        "--checkpoint_dir", ckpt_dir, "--summary_dir", str(tmp_path / "summaries"),
        "--show_progressbar=false",
    ]  # fmt: skip
    log_path = tmp_path / "first.log"
    with open(log_path, "w") as log:
        first = subprocess.Popen(
            command + ["--epochs", "100000"], cwd=repo_root, stdout=log, stderr=log
        )
        try:
            deadline = time.monotonic() + 120
            while latest_step(ckpt_dir) < 3 and first.poll() is None:
                assert time.monotonic() < deadline, "no checkpoint within 120 s"
                time.sleep(0.05)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait()
    assert first.returncode == -signal.SIGKILL, log_path.read_text()
    killed_epoch, killed_step = checkpoint_counters(ckpt_dir)
    assert killed_epoch >= 3 and killed_step >= 3

    second = subprocess.run(
        command + ["--epochs", "2"],  # 0.9's meaning: two more epochs
        cwd=repo_root, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    log = second.stdout + second.stderr
    assert second.returncode == 0, log
    assert "resumed training from last checkpoint" in log
    assert "Epoch 0 |" not in log
    assert f"Epoch {killed_epoch} | train loss" in log
    # One utterance per epoch, so a run that never restarted has done one step per
    # epoch in all. (The kill may have hit between the mid-epoch save after the only
    # batch and the end-of-epoch save of the same step: then killed_step is one ahead.)
    assert killed_step in (killed_epoch, killed_epoch + 1)
    assert checkpoint_counters(ckpt_dir) == (killed_epoch + 2, killed_epoch + 2)
    assert latest_step(ckpt_dir) == killed_epoch + 2


def test_nan_loss_batch_leaves_weights_and_names_the_file(
    tiny_config, alphabet, sample_csv, monkeypatch, caplog
):
    real_loss = steps_module.ctc_loss

    def nan_for_first_row(logits, logits_len, labels, labels_len):
        losses = real_loss(logits, logits_len, labels, labels_len)
        first = tf.range(tf.shape(losses)[0]) == 0
        return losses * tf.where(first, np.float32(np.nan), np.float32(1.0))

    monkeypatch.setattr(steps_module, "ctc_loss", nan_for_first_row)
    csv_path = sample_csv()
    cfg = tiny_config(data={"train_files": (csv_path,), "train_batch_size": 3})
    session = session_for(cfg, alphabet)
    before = weights_of(session)
    slots_before = [s.numpy().copy() for s in session.optimizer.m]
    with caplog.at_level(logging.INFO):
        result = train(session)
    for got, want in zip(weights_of(session), before):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(session.optimizer.m, slots_before):
        np.testing.assert_array_equal(got.numpy(), want)
    assert int(session.optimizer.iterations.numpy()) == 0
    assert np.isfinite(result.last_train_loss)  # the mean of the two finite losses
    warnings = messages(caplog, logging.WARNING)
    shortest = os.path.join(os.path.dirname(csv_path), "samples_0.wav")
    assert any("non-finite loss" in m and shortest in m for m in warnings)
    assert any("skipped a weight update" in m for m in warnings)
    assert any("1 updates skipped" in m for m in messages(caplog))


def test_early_stopping(tiny_config, alphabet, sample_csv, caplog):
    csv_path = sample_csv()
    cfg = tiny_config(
        data={"train_files": (csv_path,), "dev_files": (csv_path,)},
        train={"epochs": 10, "early_stop": True, "es_epochs": 1, "es_min_delta": 1e9},
    )
    session = session_for(cfg, alphabet)
    with caplog.at_level(logging.INFO):
        result = train(session)
    # Epoch 0 improves on inf; epoch 1 cannot improve by 1e9 and stops the run.
    assert result.stopped_early
    assert result.epochs_completed == 2
    assert any("early stop" in m for m in messages(caplog))


def test_reduce_lr_on_plateau(tiny_config, alphabet, sample_csv):
    csv_path = sample_csv()
    cfg = tiny_config(
        data={"train_files": (csv_path,), "dev_files": (csv_path,)},
        train={
            "epochs": 3,
            "learning_rate": 0.004,
            "reduce_lr_on_plateau": True,
            "plateau_epochs": 1,
            "plateau_reduction": 0.5,
            "es_min_delta": 1e9,
        },
    )
    session = session_for(cfg, alphabet)
    train(session)
    # Epoch 0 improves on inf; epochs 1 and 2 are plateaus: 0.004 * 0.5 * 0.5.
    assert float(session.optimizer.learning_rate.numpy()) == pytest.approx(0.001)
    # The reduced rate is part of the checkpoint, so it survives a resume.
    restored = session_for(cfg, alphabet)
    restored.checkpoints.restore_for_training()
    assert float(restored.optimizer.learning_rate.numpy()) == pytest.approx(0.001)


def append_missing_row(csv_path: str) -> None:
    with open(csv_path, "a", encoding="utf-8", newline="") as out:
        csv.writer(out).writerow(["missing.wav", "1000", "a"])


def test_bad_row_is_an_error_before_training(tiny_config, alphabet, sample_csv):
    csv_path = sample_csv()
    append_missing_row(csv_path)  # line 5: header + 3 good rows before it
    cfg = tiny_config(data={"train_files": (csv_path,), "skip_bad_samples": False})
    session = session_for(cfg, alphabet)
    with pytest.raises(BadSamplesError, match=r"samples\.csv:5 .*missing\.wav"):
        train(session)
    assert int(session.state.global_step.numpy()) == 0
    assert not os.path.exists(cfg.checkpoint.save_checkpoint_dir)


def test_bad_row_is_skipped_by_default(tiny_config, alphabet, sample_csv, caplog):
    csv_path = sample_csv()
    append_missing_row(csv_path)
    cfg = tiny_config(data={"train_files": (csv_path,)})
    session = session_for(cfg, alphabet)
    with caplog.at_level(logging.INFO):
        train(session)
    assert int(session.state.global_step.numpy()) == 3
    assert any("missing.wav" in m for m in messages(caplog, logging.WARNING))


def test_no_usable_samples_is_an_error(tiny_config, alphabet, sample_csv):
    csv_path = sample_csv(("a",), duration_s=0.01)  # too short for one feature frame
    session = session_for(tiny_config(data={"train_files": (csv_path,)}), alphabet)
    with pytest.raises(ValueError, match="no usable training samples"):
        train(session)
