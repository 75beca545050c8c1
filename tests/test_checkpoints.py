"""Tests for util/checkpoints.py: save/restore, best vs last, refused mismatches."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from ctcdecode import Alphabet
from util import checkpoints as ckpt
from util.config import Config
from util.distributed import make_strategy
from util.model import trainable_variables
from util.training import build_session

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def session_for(cfg: Config, alphabet: Alphabet):
    return build_session(cfg, alphabet, make_strategy([]))


def perturb(session, amount: float = 0.1) -> None:
    """Move every weight, as training would, so a restore differs from the init."""
    for k, var in enumerate(trainable_variables(session.model)):
        var.assign_add(tf.fill(var.shape, amount * (k + 1)))


def logits_of(session) -> np.ndarray:
    rng = np.random.default_rng(0)
    features = tf.constant(rng.normal(size=[2, 15, 26]).astype(np.float32))
    return session.model(features, tf.constant([15, 11])).numpy()


def weights_of(session):
    return [v.numpy().copy() for v in trainable_variables(session.model)]


def test_save_last_restore_gives_identical_logits(tiny_config, alphabet):
    cfg = tiny_config()
    first = session_for(cfg, alphabet)
    perturb(first)
    first.state.global_step.assign(7)
    first.state.epoch.assign(3)
    first.optimizer.learning_rate.assign(0.0005)
    path = first.checkpoints.save_last(7)
    assert os.path.basename(path) == "train-7"

    fresh = session_for(cfg, alphabet)
    assert not np.allclose(logits_of(fresh), logits_of(first))
    assert fresh.checkpoints.restore_for_training() == "last"
    np.testing.assert_array_equal(logits_of(fresh), logits_of(first))
    assert int(fresh.state.global_step.numpy()) == 7
    assert int(fresh.state.epoch.numpy()) == 3
    assert float(fresh.optimizer.learning_rate.numpy()) == pytest.approx(0.0005)

    for_eval = session_for(cfg, alphabet)
    assert for_eval.checkpoints.restore_for_evaluation() == path
    np.testing.assert_array_equal(logits_of(for_eval), logits_of(first))


def test_config_and_alphabet_written_beside_weights(tiny_config, alphabet):
    cfg = tiny_config()
    session_for(cfg, alphabet).checkpoints.save_best(1)
    ckpt_dir = cfg.checkpoint.save_checkpoint_dir
    assert ckpt.load_saved_config(ckpt_dir) == cfg
    assert Alphabet(os.path.join(ckpt_dir, ckpt.ALPHABET_FILE)) == alphabet
    assert tf.train.latest_checkpoint(os.path.join(ckpt_dir, ckpt.BEST_DIR))
    assert not [f for f in os.listdir(ckpt_dir) if ".tmp-" in f]


@pytest.mark.parametrize(
    "best_step, last_step, expected", [(5, 10, "last"), (10, 5, "best"), (8, 8, "best")]
)
def test_auto_picks_the_newer_of_best_and_last(
    tiny_config, alphabet, best_step, last_step, expected
):
    cfg = tiny_config()
    saver = session_for(cfg, alphabet)
    snapshots = {}
    for kind, step in sorted(
        [("best", best_step), ("last", last_step)], key=lambda ks: (ks[1], ks[0])
    ):
        perturb(saver, 0.01 * step)
        saver.state.global_step.assign(step)
        getattr(saver.checkpoints, f"save_{kind}")(step)
        snapshots[kind] = weights_of(saver)

    fresh = session_for(cfg, alphabet)
    assert fresh.checkpoints.restore_for_training() == expected
    assert int(fresh.state.global_step.numpy()) == max(best_step, last_step)
    for got, want in zip(weights_of(fresh), snapshots[expected]):
        np.testing.assert_array_equal(got, want)


def test_explicit_best_and_last(tiny_config, alphabet):
    cfg = tiny_config()
    saver = session_for(cfg, alphabet)
    saver.checkpoints.save_best(2)
    saver.checkpoints.save_last(4)
    for kind in ("best", "last"):
        cfg_kind = tiny_config(checkpoint={"load_train": kind, "load_evaluate": kind})
        assert (
            session_for(cfg_kind, alphabet).checkpoints.restore_for_training() == kind
        )
        path = session_for(cfg_kind, alphabet).checkpoints.restore_for_evaluation()
        assert path.endswith({"best": "best_dev-2", "last": "train-4"}[kind])


def test_other_n_hidden_is_refused_naming_the_field(tiny_config, alphabet):
    session_for(tiny_config(model={"n_hidden": 16}), alphabet).checkpoints.save_last(1)
    bigger = session_for(tiny_config(model={"n_hidden": 32}), alphabet)
    with pytest.raises(ckpt.CheckpointMismatchError, match="model.n_hidden") as err:
        bigger.checkpoints.restore_for_training()
    assert "16" in str(err.value) and "32" in str(err.value)
    with pytest.raises(ckpt.CheckpointMismatchError, match="model.n_hidden"):
        bigger.checkpoints.restore_for_evaluation()


def test_other_direction_count_is_refused(tiny_config, alphabet):
    session_for(tiny_config(), alphabet).checkpoints.save_last(1)
    uni = session_for(tiny_config(model={"bidirectional": False}), alphabet)
    with pytest.raises(ckpt.CheckpointMismatchError, match="model.bidirectional"):
        uni.checkpoints.restore_for_training()


def test_other_alphabet_is_refused(tiny_config, alphabet, tmp_path):
    session_for(tiny_config(), alphabet).checkpoints.save_last(1)
    other_path = tmp_path / "other_alphabet.txt"
    other_path.write_text("a\nb\nc\n \n", encoding="utf-8")
    other = Alphabet(str(other_path))
    cfg = tiny_config(data={"alphabet_config_path": str(other_path)})
    with pytest.raises(ckpt.CheckpointMismatchError, match="alphabet"):
        session_for(cfg, other).checkpoints.restore_for_training()


def test_checkpoint_without_config_is_refused(tiny_config, alphabet):
    cfg = tiny_config()
    session_for(cfg, alphabet).checkpoints.save_last(1)
    os.remove(os.path.join(cfg.checkpoint.save_checkpoint_dir, ckpt.CONFIG_FILE))
    with pytest.raises(ckpt.CheckpointMismatchError, match=ckpt.CONFIG_FILE):
        session_for(cfg, alphabet).checkpoints.restore_for_training()


def test_load_last_without_checkpoint_names_the_dir(tiny_config, alphabet):
    cfg = tiny_config(checkpoint={"load_train": "last"})
    session = session_for(cfg, alphabet)
    with pytest.raises(FileNotFoundError, match=cfg.checkpoint.load_checkpoint_dir):
        session.checkpoints.restore_for_training()
    with pytest.raises(FileNotFoundError, match=cfg.checkpoint.load_checkpoint_dir):
        session.checkpoints.restore_for_evaluation()


def test_auto_without_checkpoint_starts_fresh(tiny_config, alphabet):
    session = session_for(tiny_config(), alphabet)
    initial = weights_of(session)
    assert session.checkpoints.restore_for_training() == "init"
    for got, want in zip(weights_of(session), initial):
        np.testing.assert_array_equal(got, want)


def test_load_train_init_ignores_an_existing_checkpoint(tiny_config, alphabet):
    saver = session_for(tiny_config(), alphabet)
    initial = weights_of(saver)
    perturb(saver)
    saver.state.global_step.assign(9)
    saver.state.epoch.assign(2)
    saver.checkpoints.save_last(9)

    fresh = session_for(tiny_config(checkpoint={"load_train": "init"}), alphabet)
    assert fresh.checkpoints.restore_for_training() == "init"
    assert int(fresh.state.global_step.numpy()) == 0
    assert int(fresh.state.epoch.numpy()) == 0
    for got, want in zip(weights_of(fresh), initial):
        np.testing.assert_array_equal(got, want)


def test_non_chief_writes_nothing(tiny_config, alphabet):
    cfg = tiny_config()
    session = build_session(cfg, alphabet, make_strategy([]), is_chief=False)
    assert session.checkpoints.save_last(1) is None
    assert session.checkpoints.save_best(1) is None
    assert not os.path.exists(cfg.checkpoint.save_checkpoint_dir)


def test_max_to_keep(tiny_config, alphabet):
    cfg = tiny_config(checkpoint={"max_to_keep": 2})
    session = session_for(cfg, alphabet)
    for step in range(1, 5):
        session.checkpoints.save_last(step)
    kept = sorted(
        f
        for f in os.listdir(cfg.checkpoint.save_checkpoint_dir)
        if f.endswith(".index")
    )
    assert kept == ["train-3.index", "train-4.index"]


# --- issue 11: damaged checkpoints, locks, failed saves ------------------------------


def three_checkpoints(cfg, alphabet):
    """Save train-1..3 with distinct weights; returns the weights of each."""
    saver = session_for(cfg, alphabet)
    snapshots = {}
    for step in (1, 2, 3):
        perturb(saver, 0.01 * step)
        saver.state.global_step.assign(step)
        saver.checkpoints.save_last(step)
        snapshots[step] = weights_of(saver)
    return snapshots


def damage(ckpt_dir: str, how: str) -> None:
    data = os.path.join(ckpt_dir, "train-3.data-00000-of-00001")
    if how == "truncated":
        with open(data, "r+b") as f:
            f.truncate(os.path.getsize(data) // 2)
    elif how == "flipped":
        raw = bytearray(open(data, "rb").read())
        raw[len(raw) // 2] ^= 0xFF
        open(data, "wb").write(bytes(raw))
    elif how == "deleted shard":
        os.remove(data)
    elif how == "bad index":
        with open(os.path.join(ckpt_dir, "train-3.index"), "r+b") as f:
            f.truncate(50)


@pytest.mark.parametrize("how", ["truncated", "flipped", "deleted shard", "bad index"])
def test_damaged_latest_falls_back_to_newest_intact(tiny_config, alphabet, how, caplog):
    cfg = tiny_config()
    snapshots = three_checkpoints(cfg, alphabet)
    damage(cfg.checkpoint.save_checkpoint_dir, how)
    fresh = session_for(cfg, alphabet)
    with caplog.at_level("WARNING"):
        assert fresh.checkpoints.restore_for_training() == "last"
    assert int(fresh.state.global_step.numpy()) == 2
    for got, want in zip(weights_of(fresh), snapshots[2]):
        np.testing.assert_array_equal(got, want)
    text = caplog.text
    assert "train-3 is unreadable" in text and "newest intact" in text
    evaluated = session_for(cfg, alphabet).checkpoints.restore_for_evaluation()
    assert evaluated.endswith("train-2")


def test_no_intact_checkpoint_is_an_error_listing_them(tiny_config, alphabet):
    cfg = tiny_config(checkpoint={"max_to_keep": 1})
    session_for(cfg, alphabet).checkpoints.save_last(1)
    os.remove(
        os.path.join(cfg.checkpoint.save_checkpoint_dir, "train-1.data-00000-of-00001")
    )
    with pytest.raises(ckpt.CheckpointError, match=r"(?s)train-1.*--load_train init"):
        session_for(cfg, alphabet).checkpoints.restore_for_training()


def test_corrupt_state_file_is_an_error_naming_it(tiny_config, alphabet):
    cfg = tiny_config()
    three_checkpoints(cfg, alphabet)
    state = os.path.join(cfg.checkpoint.save_checkpoint_dir, "checkpoint")
    open(state, "wb").write(b"\xff\xfe garbage \x00")
    with pytest.raises(ckpt.CheckpointError) as err:
        session_for(cfg, alphabet)
    assert state in str(err.value) and 'model_checkpoint_path: "train-3"' in str(
        err.value
    )


def test_corrupt_config_json_is_an_error_naming_it(tiny_config, alphabet):
    cfg = tiny_config()
    three_checkpoints(cfg, alphabet)
    path = os.path.join(cfg.checkpoint.save_checkpoint_dir, ckpt.CONFIG_FILE)
    open(path, "w").write("{ not json")
    with pytest.raises(ckpt.CheckpointError, match=f"{path} is corrupt"):
        session_for(cfg, alphabet).checkpoints.restore_for_training()
    with pytest.raises(ckpt.CheckpointError, match=f"{path} is corrupt"):
        ckpt.as_trained(cfg, alphabet)


def test_lock_refuses_a_second_holder_naming_the_first(tmp_path):
    directory = str(tmp_path / "ckpt")
    with ckpt.DirLock(directory):
        with pytest.raises(ckpt.CheckpointLockedError) as err:
            with ckpt.DirLock(directory):
                pass
        assert f"pid {os.getpid()} on " in str(err.value)
    with ckpt.DirLock(directory):  # released: free again
        pass


def test_lock_of_a_killed_holder_is_not_stale(tmp_path):
    directory = str(tmp_path / "ckpt")
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from util.checkpoints import DirLock\n"
         f"with DirLock({directory!r}):\n print('held', flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ckpt.CheckpointLockedError, match=f"pid {holder.pid} on"):
            ckpt.DirLock(directory).__enter__()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with ckpt.DirLock(directory):  # the kernel dropped the dead holder's lock
        pass


def test_failed_save_removes_its_partial_files_and_keeps_the_previous(
    tiny_config, alphabet, monkeypatch
):
    cfg = tiny_config()
    session = session_for(cfg, alphabet)
    session.checkpoints.save_last(1)
    ckpt_dir = cfg.checkpoint.save_checkpoint_dir
    real_save = tf.train.CheckpointManager.save

    def disk_full(self, checkpoint_number=None, **kwargs):
        os.makedirs(os.path.join(ckpt_dir, f"train-{checkpoint_number}_temp"))
        open(os.path.join(ckpt_dir, f"train-{checkpoint_number}.index"), "w").close()
        raise tf.errors.ResourceExhaustedError(
            None, None, "train-2_temp/part-00000; No space left on device"
        )

    monkeypatch.setattr(tf.train.CheckpointManager, "save", disk_full)
    with pytest.raises(ckpt.CheckpointSaveError) as err:
        session.checkpoints.save_last(2)
    message = str(err.value)
    assert "the disk is full" in message and "train-1 is intact" in message
    assert "\n" not in message  # one paragraph
    monkeypatch.setattr(tf.train.CheckpointManager, "save", real_save)
    assert sorted(os.listdir(ckpt_dir)) == sorted(
        ["alphabet.txt", "checkpoint", "config.json", "train-1.index",
         "train-1.data-00000-of-00001"]
    )  # fmt: skip
    assert tf.train.latest_checkpoint(ckpt_dir).endswith("train-1")
