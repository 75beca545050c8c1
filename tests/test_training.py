"""Tests for util/training.py: epochs, resume (even after kill -9), bad batches."""

from __future__ import annotations

import csv
import glob
import logging
import os
import shutil
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
from util.training import (
    StopRequest,
    TrainingInterrupted,
    build_session,
    format_summary,
    set_tags,
    train,
)

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
    assert any(
        "Epoch 1 | 1 of 1 epochs without dev-loss improvement > 1e+09" in m
        for m in messages(caplog)
    )
    assert result.best_epoch in (0, 1)  # 1 if it improved, if by less than 1e9
    summary = format_summary(result, [("test", 0.5, 0.25)], "/tmp/export")
    assert f"best dev loss:   {result.best_dev_loss:.3f} at epoch " in summary
    assert f"at epoch {result.best_epoch}" in summary
    assert "2 done in all, 2 in this run (stopped early)" in summary
    assert "test test: WER 0.500, CER 0.250" in summary
    assert cfg.checkpoint.save_checkpoint_dir in summary
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
    ckpt_dir = cfg.checkpoint.save_checkpoint_dir  # holds the lock file, nothing else
    assert os.listdir(ckpt_dir) == ["training.lock"]


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


# --- issue 10/11: stop requests, finished runs, patience, summaries ------------------


def stopping_after(session, n_batches: int, stop):
    """Wrap train_step so that ``stop`` is requested after ``n_batches`` steps."""
    real_step, calls = session.steps.train_step, []

    def step(batch, seed):
        result = real_step(batch, seed)
        calls.append(1)
        if len(calls) == n_batches:
            stop.request("SIGINT")
        return result

    session.steps.train_step = step


def test_stop_request_saves_between_batches_and_resume_is_exact(
    tiny_config, alphabet, sample_csv, tmp_path
):
    """A Ctrl-C (StopRequest) mid-epoch saves at once, not after --checkpoint_secs."""
    csv_path = sample_csv(("a", "ab", "abc", "b"))

    def config(name):
        directory = str(tmp_path / name)
        return tiny_config(
            data={"train_files": (csv_path,)},
            train={"epochs": 2},
            checkpoint={
                "load_checkpoint_dir": directory,
                "save_checkpoint_dir": directory,
            },
        )

    stopped = session_for(config("resumed"), alphabet)
    stop = StopRequest()
    stopping_after(stopped, 3, stop)
    with pytest.raises(TrainingInterrupted) as info:
        train(stopped, stop)
    assert info.value.reason == "SIGINT"
    assert (info.value.epoch, info.value.step) == (0, 3)
    assert info.value.checkpoint.endswith("train-3")
    assert latest_step(str(tmp_path / "resumed")) == 3

    resumed = session_for(config("resumed"), alphabet)
    train(resumed)
    straight = session_for(config("straight"), alphabet)
    train(straight)
    assert int(resumed.state.global_step.numpy()) == 8
    for got, want in zip(weights_of(resumed), weights_of(straight)):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_rerun_of_a_finished_training_says_so(
    tiny_config, alphabet, sample_csv, caplog
):
    cfg = tiny_config(data={"train_files": (sample_csv(),)}, train={"max_epochs": 1})
    train(session_for(cfg, alphabet))
    again = session_for(cfg, alphabet)
    with caplog.at_level(logging.WARNING):
        result = train(again)
    assert result.already_finished and result.epochs_this_run == 0
    assert int(again.state.global_step.numpy()) == 3  # nothing trained
    assert any(
        "nothing to train" in m and "already done 1 epochs, --max_epochs 1" in m
        for m in messages(caplog, logging.WARNING)
    )


def scalars(summary_dir: str, run: str):
    """[(tag, step, value)] of every scalar in ``summary_dir/run``, in file order."""
    found = []
    pattern = os.path.join(summary_dir, run, "events.out.tfevents.*")
    for path in sorted(glob.glob(pattern)):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                number = float(tf.make_ndarray(value.tensor))
                found.append((value.tag, event.step, number))
    return found


def test_tensorboard_tags_lr_and_no_step_logged_twice_after_a_resume(
    tiny_config, alphabet, sample_csv, tmp_path
):
    csv_path = sample_csv(("a", "ab", "abc", "b"))
    dev_path = os.path.join(os.path.dirname(csv_path), "dev.csv")
    shutil.copy(csv_path, dev_path)
    summary_dir = str(tmp_path / "summaries")
    cfg = tiny_config(
        data={"train_files": (csv_path,), "dev_files": (dev_path,)},
        train={"epochs": 2, "max_epochs": 2, "summary_dir": summary_dir},
    )
    first = session_for(cfg, alphabet)
    stop = StopRequest()
    stopping_after(first, 6, stop)  # saves at step 4 (epoch end) and 6 (the stop)
    real_save = first.checkpoints.save_last

    def dies_at_the_stop(step):
        if step == 6:  # the process dies (kill -9) before the stop's save
            raise SystemExit("killed")
        return real_save(step)

    first.checkpoints.save_last = dies_at_the_stop
    with pytest.raises(SystemExit):
        train(first, stop)
    train(session_for(cfg, alphabet))

    train_scalars = scalars(summary_dir, "train")
    loss_steps = [step for tag, step, _ in train_scalars if tag == "loss"]
    assert sorted(loss_steps) == list(range(1, 9))  # each step once, none twice
    assert [s for tag, s, _ in train_scalars if tag == "learning_rate"] == [4, 8]
    dev_tags = {tag for tag, _, _ in scalars(summary_dir, "dev")}
    assert dev_tags == {"loss", "loss/dev"}
    assert not any("//" in tag or "csv" in tag for tag in dev_tags)


def test_set_tags_are_short_and_unique():
    assert set_tags(["/data/cv/dev.csv", "/data/ls/dev-clean.csv"]) == [
        "dev",
        "dev-clean",
    ]
    assert set_tags(["/a/x/dev.csv", "/a/y/dev.csv"]) == ["x_dev", "y_dev"]


# --- fault runs: kill -9 loop and a full disk resume to the same weights -------------


def final_weights(ckpt_dir: str):
    """{name: array} of the model's weights in the latest 'last' checkpoint."""
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(ckpt_dir))
    return {
        name: reader.get_tensor(name)
        for name in reader.get_variable_to_shape_map()
        if name.startswith("model/") and "OPTIMIZER_SLOT" not in name
    }


def fault_run_command(repo_root, csv_path, ckpt_dir, summary_dir, epochs=3):
    return [
        sys.executable, os.path.join(repo_root, "DeepSpeech.py"),
        "--train_files", csv_path, "--n_hidden", "16", "--epochs", str(epochs),
        "--max_epochs", str(epochs),
        "--checkpoint_secs", "1", "--checkpoint_dir", ckpt_dir,
        "--summary_dir", summary_dir, "--show_progressbar=false",
        "--alphabet_config_path", os.path.join(repo_root, "data", "alphabet.txt"),
    ]  # fmt: skip


def assert_same_weights(got_dir: str, want_dir: str) -> None:
    got, want = final_weights(got_dir), final_weights(want_dir)
    assert sorted(got) == sorted(want) and got
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


@pytest.mark.slow  # ~3-5 min: a straight run, then a run killed until it finishes
def test_kill_9_loop_resumes_to_the_weights_of_a_straight_run(
    repo_root, sample_csv, tmp_path
):
    csv_path = sample_csv(tuple("abcdefgh"), duration_s=1.0)
    straight = str(tmp_path / "straight")
    command = fault_run_command(repo_root, csv_path, straight, str(tmp_path / "s1"))
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr

    killed_dir = str(tmp_path / "killed")
    command = fault_run_command(repo_root, csv_path, killed_dir, str(tmp_path / "s2"))
    log_file = open(tmp_path / "killed.log", "w")
    rng, kills = np.random.default_rng(11), 0
    for _ in range(40):
        before = latest_step(killed_dir)
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log_file)
        deadline = time.monotonic() + 300
        while proc.poll() is None and latest_step(killed_dir) <= before:
            assert time.monotonic() < deadline, "no progress in 300 s"
            time.sleep(0.05)
        time.sleep(float(rng.uniform(0.0, 1.5)))  # then die at a random point
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            continue
        assert proc.returncode == 0, (tmp_path / "killed.log").read_text()
        break
    print(f"kill -9 loop: {kills} kills, then a run to the end")
    assert kills >= 3
    assert checkpoint_counters(killed_dir) == checkpoint_counters(straight)
    assert_same_weights(killed_dir, straight)


@pytest.mark.slow  # needs root (mount); ~2 min
def test_disk_full_fails_cleanly_and_resume_reaches_the_same_weights(
    repo_root, sample_csv, tmp_path
):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    csv_path = sample_csv(tuple("abcdefgh"), duration_s=1.0)
    straight = str(tmp_path / "straight")
    command = fault_run_command(repo_root, csv_path, straight, str(tmp_path / "s1"))
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr

    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(disk)],
        capture_output=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr!r}")
    try:
        ckpt_dir = str(disk / "ckpt")
        command = fault_run_command(repo_root, csv_path, ckpt_dir, str(tmp_path / "s2"))
        full = subprocess.run(command, capture_output=True, text=True, timeout=600)
        assert full.returncode == 1, full.stderr
        errors = [line for line in full.stderr.splitlines() if line.startswith("E")]
        assert len(errors) == 1 and "the disk is full" in errors[0], full.stderr
        assert "Traceback" not in full.stderr
        assert "is intact and a re-run resumes from it" in errors[0]
        assert not [p for p in os.listdir(ckpt_dir) if "_temp" in p or ".tmp" in p]
        stopped_at = checkpoint_counters(ckpt_dir)
        print(f"disk full at (epoch, step) {stopped_at}: {errors[0]}")
        subprocess.run(
            ["mount", "-o", "remount,size=64m", str(disk)], check=True
        )  # the user frees space
        resumed = subprocess.run(command, capture_output=True, text=True, timeout=600)
        assert resumed.returncode == 0, resumed.stderr
        assert "resumed training from last checkpoint" in resumed.stderr
        assert_same_weights(ckpt_dir, straight)
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_lr_warmup_and_cosine_decay_per_step(tiny_config, alphabet, sample_csv):
    """--lr_warmup_steps/--lr_decay set each update's rate from the global step:
    3 samples x 2 epochs = 6 updates; the last (step 5) used the schedule's value."""
    from util.optimizer import scheduled_learning_rate

    csv_path = sample_csv()
    cfg = tiny_config(
        data={"train_files": (csv_path,)},
        train={"epochs": 2, "learning_rate": 0.004, "lr_warmup_steps": 2,
               "lr_decay": "cosine", "lr_decay_floor": 0.1},
    )  # fmt: skip
    session = session_for(cfg, alphabet)
    train(session)
    assert int(session.state.global_step.numpy()) == 6
    last = scheduled_learning_rate(5, 0.004, 6, 2, "cosine", 0.1)
    assert float(session.optimizer.learning_rate.numpy()) == pytest.approx(last)
    assert 0.0004 < last < 0.004
