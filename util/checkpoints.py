"""Checkpoints: 'last' and 'best dev' managers, config/alphabet beside, safe resume.

Layout of a checkpoint directory::

    checkpoint, train-N.index, train-N.data-*      the 'last' checkpoints (max_to_keep)
    best_dev/checkpoint, best_dev/best_dev-N.*      the best dev-loss checkpoint
    config.json, alphabet.txt                       what the weights mean

TF writes each checkpoint's files before it atomically rewrites the ``checkpoint`` state
file, so a process killed mid-save leaves the previous checkpoint in force;
config.json and alphabet.txt are written to a temporary file and renamed. Loading
compares the saved geometry and alphabet with the current ones and refuses a mismatch,
naming the differing fields (DeepSpeech#511: a stale checkpoint dir cost a user days of
shape errors).
"""

import dataclasses
import os
import shutil
import tempfile
from typing import Dict, List, Optional, Tuple

import tensorflow as tf
from absl import logging

from ctcdecode import Alphabet, load_alphabet
from ctcdecode.fileio import atomic_write_text
from util.config import CheckpointConfig, Config

CONFIG_FILE = "config.json"
ALPHABET_FILE = "alphabet.txt"
BEST_DIR = "best_dev"
# Fields that decide the meaning and shape of the weights.
GEOMETRY_FIELDS = {
    "model": ("n_hidden", "n_context", "bidirectional", "layer_norm"),
    "features": (
        "audio_sample_rate",
        "feature_win_len",
        "feature_win_step",
        "n_mfcc",
        "n_filterbank",
        "lower_frequency_limit",
    ),
}


class CheckpointMismatchError(ValueError):
    """A checkpoint was made for another geometry or alphabet."""


class TrainingState(tf.Module):
    """Counters saved with the weights so a resumed run continues where it stopped."""

    def __init__(self) -> None:
        super().__init__(name="training_state")
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.step_in_epoch = tf.Variable(
            0, dtype=tf.int64, trainable=False, name="step"
        )
        self.global_step = tf.Variable(
            0, dtype=tf.int64, trainable=False, name="global"
        )
        self.best_dev_loss = tf.Variable(
            float("inf"), dtype=tf.float32, trainable=False, name="best_dev_loss"
        )
        self.epochs_since_best = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.epochs_since_lr_change = tf.Variable(0, dtype=tf.int64, trainable=False)


def geometry_differences(saved: Config, current: Config) -> List[str]:
    """Human-readable ``section.field: saved X, now Y`` for every geometry mismatch."""
    diffs = []
    for section, names in GEOMETRY_FIELDS.items():
        old, new = getattr(saved, section), getattr(current, section)
        for name in names:
            if getattr(old, name) != getattr(new, name):
                diffs.append(
                    f"{section}.{name}: checkpoint {getattr(old, name)!r}, "
                    f"now {getattr(new, name)!r}"
                )
    return diffs


class Checkpoints:
    """Owns the two managers of one run. Only the chief's saves land in the save dir.

    In a cluster every worker saves at the same points, as TF asks of multi-worker
    checkpointing (a save may involve collectives); a non-chief saves into a scratch
    dir of its own, removed by ``close``. Every worker restores from
    ``load_checkpoint_dir``, i.e. the chief's checkpoints (doc/DISTRIBUTED.rst).
    """

    def __init__(
        self,
        cfg: CheckpointConfig,
        checkpoint: tf.train.Checkpoint,
        config: Config,
        alphabet: Alphabet,
        is_chief: bool = True,
    ) -> None:
        self.cfg = cfg
        self.checkpoint = checkpoint
        self.config = config
        self.alphabet = alphabet
        self.is_chief = is_chief
        save_dir = cfg.save_checkpoint_dir
        if not is_chief:
            save_dir = tempfile.mkdtemp(prefix="deepspeech-worker-ckpt-")
        self.save_dir = save_dir
        self.last = tf.train.CheckpointManager(
            checkpoint, save_dir, max_to_keep=cfg.max_to_keep, checkpoint_name="train"
        )
        self.best = tf.train.CheckpointManager(
            checkpoint,
            os.path.join(save_dir, BEST_DIR),
            max_to_keep=1,
            checkpoint_name="best_dev",
        )

    def save_last(self, step: int) -> Optional[str]:
        return self._save(self.last, step)

    def save_best(self, step: int) -> Optional[str]:
        return self._save(self.best, step)

    def _save(self, manager: tf.train.CheckpointManager, step: int) -> Optional[str]:
        self._write_sidecars(self.save_dir)
        path = manager.save(checkpoint_number=step)
        logging.debug("saved checkpoint %s", path)
        return path if self.is_chief else None

    def close(self) -> None:
        """Remove a non-chief's scratch dir (the chief's checkpoints stay)."""
        if not self.is_chief:
            shutil.rmtree(self.save_dir, ignore_errors=True)

    def _write_sidecars(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        atomic_write_text(os.path.join(directory, CONFIG_FILE), self.config.to_json())
        atomic_write_text(
            os.path.join(directory, ALPHABET_FILE), self.alphabet.serialize()
        )

    def restore_for_training(self) -> str:
        """Restore per --load_train; returns what was loaded: best, last or init."""
        order = {
            "auto": ("auto",),
            "best": ("best",),
            "last": ("last",),
            "init": (),
        }[self.cfg.load_train]
        found = self._find(order)
        if found is None:
            if self.cfg.load_train in ("best", "last"):
                raise FileNotFoundError(
                    f"--load_train {self.cfg.load_train}: no such checkpoint in "
                    f"{self.cfg.load_checkpoint_dir}; use --load_train init or auto"
                )
            logging.info(
                "no checkpoint to resume in %s: starting from fresh weights",
                self.cfg.load_checkpoint_dir,
            )
            return "init"
        kind, path = found
        self.checkpoint.restore(path).assert_existing_objects_matched()
        logging.info("resumed training from %s checkpoint %s", kind, path)
        return kind

    def restore_for_evaluation(self) -> str:
        """Restore the model per --load_evaluate; returns the checkpoint path."""
        order = {"auto": ("best", "last"), "best": ("best",), "last": ("last",)}
        found = self._find(order[self.cfg.load_evaluate])
        if found is None:
            raise FileNotFoundError(
                f"no checkpoint found in {self.cfg.load_checkpoint_dir} "
                f"(--load_evaluate {self.cfg.load_evaluate}); train first or point "
                "--checkpoint_dir/--load_checkpoint_dir at a trained model"
            )
        kind, path = found
        self.checkpoint.restore(path).expect_partial()
        logging.info("loaded %s checkpoint %s", kind, path)
        return path

    def _find(self, order: Tuple[str, ...]) -> Optional[Tuple[str, str]]:
        """First available checkpoint in ``order``; 'auto': newer of best and last."""
        load_dir = self.cfg.load_checkpoint_dir
        paths: Dict[str, Optional[str]] = {
            "best": tf.train.latest_checkpoint(os.path.join(load_dir, BEST_DIR)),
            "last": tf.train.latest_checkpoint(load_dir),
        }
        if any(paths.values()):
            self.check_compatible(load_dir)
        if order == ("auto",):
            candidates = [(k, p) for k, p in paths.items() if p]
            if not candidates:
                return None
            # DeepSpeech's auto prefers best, then last. A 'last' checkpoint newer than
            # the best one wins, so an interrupted run continues where it stopped
            # instead of silently discarding the epochs after its best dev loss.
            return max(candidates, key=lambda kp: (_step_of(kp[1]), kp[0] == "best"))
        for kind in order:
            if paths.get(kind):
                return kind, paths[kind]
        return None

    def check_compatible(self, load_dir: str) -> None:
        """Raise CheckpointMismatchError if ``load_dir`` was made for another model."""
        config_path = os.path.join(load_dir, CONFIG_FILE)
        if not os.path.exists(config_path):
            raise CheckpointMismatchError(
                f"{load_dir} holds a checkpoint without {CONFIG_FILE}; it was not "
                "written by this trainer. Use an empty --checkpoint_dir to train from "
                "scratch"
            )
        with open(config_path, encoding="utf-8") as f:
            saved = Config.from_json(f.read())
        diffs = geometry_differences(saved, self.config)
        alphabet_path = os.path.join(load_dir, ALPHABET_FILE)
        if (
            os.path.exists(alphabet_path)
            and load_alphabet(alphabet_path) != self.alphabet
        ):
            diffs.append(
                f"alphabet: checkpoint {alphabet_path} differs from "
                f"{self.config.data.alphabet_config_path} (to start a model for "
                "this alphabet from it, pass --drop_source_layers 1 and another "
                "--save_checkpoint_dir: doc/TRAINING.rst, transfer learning)"
            )
        if diffs:
            raise CheckpointMismatchError(
                f"the checkpoint in {load_dir} does not match this model:\n  "
                + "\n  ".join(diffs)
                + "\nPass the same flags as when it was trained, or use another "
                "--checkpoint_dir to start a new model"
            )


def as_trained(cfg: Config, alphabet: Alphabet) -> Tuple[Config, Alphabet]:
    """Geometry and alphabet stored with the checkpoint (as whisper rebuilds its dims).

    Testing, exporting or inferring needs no training flags: the checkpoint's
    config.json and alphabet.txt in ``cfg.checkpoint.load_checkpoint_dir`` say what the
    weights mean (DeepSpeech#1328). Without them, ``cfg`` and ``alphabet`` are returned
    unchanged.
    """
    load_dir = cfg.checkpoint.load_checkpoint_dir
    if not os.path.exists(os.path.join(load_dir, CONFIG_FILE)):
        return cfg, alphabet
    saved = load_saved_config(load_dir)
    if (saved.model, saved.features) != (cfg.model, cfg.features):
        logging.info("using the geometry stored with the checkpoint: %s", saved.model)
    alphabet_path = os.path.join(load_dir, ALPHABET_FILE)
    if os.path.exists(alphabet_path):
        stored = load_alphabet(alphabet_path)
        if stored != alphabet:
            logging.warning(
                "using the alphabet stored with the checkpoint (%s), not %s",
                alphabet_path,
                cfg.data.alphabet_config_path,
            )
        alphabet = stored
    return (
        dataclasses.replace(cfg, model=saved.model, features=saved.features),
        alphabet,
    )


def load_saved_config(checkpoint_dir: str) -> Config:
    """The Config a checkpoint directory was trained with."""
    with open(os.path.join(checkpoint_dir, CONFIG_FILE), encoding="utf-8") as f:
        return Config.from_json(f.read())


def _step_of(path: str) -> int:
    try:
        return int(path.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return -1
