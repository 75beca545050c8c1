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

Nothing the user trained is lost to a bad file: a checkpoint that cannot be read
(truncated, flipped bits, a deleted shard) is skipped with a warning and the newest
intact one is restored instead; an unreadable ``checkpoint`` state file or config.json
is an error naming the file and the fix. A save that fails (disk full) removes its
partial files and leaves the previous checkpoints in force. A training run holds an
exclusive lock on its checkpoint directory (``LOCK_FILE``, ``fcntl.flock``) so two runs
never interleave their checkpoints; the kernel drops the lock when its holder dies, so
a killed run leaves no stale lock. See doc/TRAINING.rst.
"""

import dataclasses
import errno
import glob
import json
import os
import shutil
import socket
import tempfile
import time
from typing import IO, List, Optional, Tuple

import tensorflow as tf
from absl import logging
from google.protobuf import text_format
from tensorflow.python.checkpoint.checkpoint_management import CheckpointState

from ctcdecode import Alphabet, UTF8Alphabet, load_alphabet
from ctcdecode.fileio import atomic_write_text
from util import ds09_checkpoint
from util.config import CheckpointConfig, Config

CONFIG_FILE = "config.json"
ALPHABET_FILE = "alphabet.txt"
BEST_DIR = "best_dev"
STATE_FILE = "checkpoint"  # TF's list of the checkpoints of one directory
LOCK_FILE = "training.lock"  # held by the run that trains into the directory
# Fields that decide the meaning and shape of the weights.
GEOMETRY_FIELDS = {
    "model": (
        "model",
        "n_hidden",
        "n_context",
        "bidirectional",
        "layer_norm",
        "rnn_type",
        "rnn_layers",
        "rnn_hidden_size",
    ),
    "features": (
        "feature_type",
        "feature_normalization",
        "audio_sample_rate",
        "feature_win_len",
        "feature_win_step",
        "n_mfcc",
        "n_filterbank",
        "lower_frequency_limit",
    ),
}


class CheckpointError(ValueError):
    """A checkpoint directory cannot be used as asked; the message says why and how."""


class CheckpointMismatchError(CheckpointError):
    """A checkpoint was made for another geometry or alphabet."""


class CheckpointLockedError(CheckpointError):
    """Another live process trains into the same checkpoint directory."""


class CheckpointSaveError(CheckpointError):
    """A save failed (disk full, I/O error); the previous checkpoints are intact."""


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


# Geometry fields that one model does not use (a mismatch there changes nothing).
UNUSED_FIELDS = {
    "deepspeech": ("rnn_type", "rnn_layers", "rnn_hidden_size"),
    "deepspeech2": ("n_hidden", "n_context", "layer_norm"),
}


def geometry_differences(saved: Config, current: Config) -> List[str]:
    """Human-readable ``section.field: saved X, now Y`` for every geometry mismatch."""
    diffs = []
    unused = UNUSED_FIELDS.get(saved.model.model, ())
    if saved.model.model != current.model.model:
        unused = ()
    for section, names in GEOMETRY_FIELDS.items():
        old, new = getattr(saved, section), getattr(current, section)
        for name in names:
            if section == "model" and name in unused:
                continue
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
        # TF's managers read the state files and would ignore a corrupt one (and
        # start over); we refuse it first, naming the file.
        read_state(save_dir)
        read_state(os.path.join(save_dir, BEST_DIR))
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
        return self._save(self.last, "train", step)

    def save_best(self, step: int) -> Optional[str]:
        return self._save(self.best, "best_dev", step)

    def _save(
        self, manager: tf.train.CheckpointManager, name: str, step: int
    ) -> Optional[str]:
        """Save; on failure remove the partial files and raise CheckpointSaveError."""
        try:
            self._write_sidecars(self.save_dir)
            path = manager.save(checkpoint_number=step)
        except (tf.errors.OpError, OSError) as err:
            prefix = os.path.join(manager.directory, f"{name}-{step}")
            _remove_partial_save(prefix, manager.directory)
            raise CheckpointSaveError(_save_failure(prefix, err, manager)) from err
        logging.debug("saved checkpoint %s", path)
        return path if self.is_chief else None

    def close(self) -> None:
        """Remove a non-chief's scratch dir (the chief's checkpoints stay)."""
        if not self.is_chief:
            shutil.rmtree(self.save_dir, ignore_errors=True)

    def lock(self) -> "DirLock":
        """The save dir's exclusive lock, for ``with``; a non-chief locks nothing."""
        return DirLock(self.save_dir if self.is_chief else None)

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
        candidates = self._candidates(order)
        if not candidates:
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
        kind, path = self._restore_newest_intact(
            candidates, lambda s: s.assert_existing_objects_matched()
        )
        logging.info("resumed training from %s checkpoint %s", kind, path)
        return kind

    def restore_for_evaluation(self) -> str:
        """Restore the model per --load_evaluate; returns the checkpoint path."""
        if ds09_checkpoint.is_ds09_dir(self.cfg.load_checkpoint_dir):
            return self._restore_ds09()
        order = {"auto": ("best", "last"), "best": ("best",), "last": ("last",)}
        candidates = self._candidates(order[self.cfg.load_evaluate])
        if not candidates:
            raise FileNotFoundError(
                f"no checkpoint found in {self.cfg.load_checkpoint_dir} "
                f"(--load_evaluate {self.cfg.load_evaluate}); train first or point "
                "--checkpoint_dir/--load_checkpoint_dir at a trained model"
            )
        kind, path = self._restore_newest_intact(
            candidates, lambda s: s.expect_partial()
        )
        logging.info("loaded %s checkpoint %s", kind, path)
        return path

    def _restore_ds09(self) -> str:
        """The weights of a DeepSpeech 0.9 checkpoint (util/ds09_checkpoint.py)."""
        kind, path = ds09_checkpoint.choose(
            self.cfg.load_checkpoint_dir, self.cfg.load_evaluate
        )
        report = ds09_checkpoint.load(path, self.checkpoint.model)
        ds09_checkpoint.log_report(report)
        logging.info("loaded DeepSpeech 0.9 %s checkpoint %s", kind, path)
        return path

    def _restore_newest_intact(self, candidates, check) -> Tuple[str, str]:
        """Restore the first readable candidate, warning about each unreadable one."""
        failures = []
        for kind, path in candidates:
            try:
                check(self.checkpoint.restore(path))
            except (tf.errors.OpError, IndexError) as err:
                reason = _first_line(err)
                failures.append(f"{path}: {reason}")
                logging.warning(
                    "checkpoint %s is unreadable (%s); trying the next newest",
                    path,
                    reason,
                )
                continue
            if failures:
                logging.warning(
                    "restored %s, the newest intact checkpoint; %d newer one(s) are "
                    "damaged and were skipped (left in place for inspection)",
                    path,
                    len(failures),
                )
            return kind, path
        raise CheckpointError(
            f"no checkpoint in {self.cfg.load_checkpoint_dir} can be read:\n  "
            + "\n  ".join(failures)
            + "\nRestore the directory from a backup, or train from scratch with "
            "--load_train init (or another --checkpoint_dir)"
        )

    def _candidates(self, order: Tuple[str, ...]) -> List[Tuple[str, str]]:
        """(kind, path) of every listed checkpoint, in the order to try them.

        Kinds in ``order`` come one after another, each newest first; ``("auto",)``
        merges best and last by step (a tie goes to best), so an interrupted run
        continues where it stopped instead of silently discarding the epochs after
        its best dev loss (DeepSpeech's auto preferred best, then last).
        """
        load_dir = self.cfg.load_checkpoint_dir
        listed = {
            "best": listed_checkpoints(os.path.join(load_dir, BEST_DIR)),
            "last": listed_checkpoints(load_dir),
        }
        if any(listed.values()):
            self.check_compatible(load_dir)

        def newest_first(kinds):
            pairs = [(k, p) for k in kinds for p in listed[k]]
            return sorted(pairs, key=lambda kp: (_step_of(kp[1]), kp[0] == "best"))[
                ::-1
            ]

        if order == ("auto",):
            return newest_first(("best", "last"))
        return [pair for kind in order for pair in newest_first((kind,))]

    def check_compatible(self, load_dir: str) -> None:
        """Raise CheckpointMismatchError if ``load_dir`` was made for another model."""
        config_path = os.path.join(load_dir, CONFIG_FILE)
        if not os.path.exists(config_path):
            raise CheckpointMismatchError(
                f"{load_dir} holds a checkpoint without {CONFIG_FILE}; it was not "
                "written by this trainer. Use an empty --checkpoint_dir to train from "
                "scratch"
            )
        saved = load_saved_config(load_dir)
        diffs = geometry_differences(saved, self.config)
        alphabet_path = os.path.join(load_dir, ALPHABET_FILE)
        stored = load_alphabet(alphabet_path) if os.path.exists(alphabet_path) else None
        stored_bytes = isinstance(stored, UTF8Alphabet)
        if stored is not None and stored_bytes != isinstance(
            self.alphabet, UTF8Alphabet
        ):
            diffs.append(
                f"bytes_output_mode: checkpoint {stored_bytes}, these flags "
                f"{not stored_bytes} (pass --bytes_output_mode={stored_bytes} to "
                "continue it; its output layer has "
                f"{stored.n_classes} classes, not {self.alphabet.n_classes})"
            )
        elif stored is not None and stored != self.alphabet:
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


def read_state(directory: str) -> Optional[CheckpointState]:
    """The parsed ``checkpoint`` state file of ``directory``; None if it has none.

    TF logs and ignores a state file it cannot parse, and a run would then start from
    scratch beside the old checkpoints; we raise CheckpointError naming the file.
    """
    path = os.path.join(directory, STATE_FILE)
    if not os.path.exists(path):
        return None
    state = CheckpointState()
    try:
        with open(path, "rb") as f:
            text_format.Parse(f.read().decode("utf-8"), state)
    except (UnicodeDecodeError, text_format.ParseError) as err:
        prefixes = sorted(
            glob.glob(os.path.join(glob.escape(directory), "*.index")),
            key=_step_of,
        )
        hint = (
            f'replace its content with the line  model_checkpoint_path: "'
            f'{os.path.basename(prefixes[-1])[: -len(".index")]}"  (the newest '
            "checkpoint there) to resume from it, or move the directory away to "
            "start over"
            if prefixes
            else "delete it (no checkpoint files are beside it)"
        )
        raise CheckpointError(
            f"{path}, TF's list of the checkpoints in {directory}, is corrupt "
            f"({err}); {hint}"
        ) from err
    return state


def listed_checkpoints(directory: str) -> List[str]:
    """Paths of the checkpoints the state file of ``directory`` lists, whose index
    file exists (the newest last, as TF lists them)."""
    state = read_state(directory)
    if state is None:
        return []
    paths = list(state.all_model_checkpoint_paths)
    if state.model_checkpoint_path and state.model_checkpoint_path not in paths:
        paths.append(state.model_checkpoint_path)
    paths = [p if os.path.isabs(p) else os.path.join(directory, p) for p in paths]
    present = [p for p in paths if os.path.exists(p + ".index")]
    for path in sorted(set(paths) - set(present)):
        logging.warning("checkpoint %s is listed but its .index file is missing", path)
    return present


class DirLock:
    """Exclusive ``flock`` on ``<directory>/training.lock``; for ``with`` blocks.

    The lock file holds the holder's pid, host and start time, so a refused run can
    say who holds it. The kernel releases a flock when its holder exits, however it
    dies, so a kill -9 leaves no stale lock (the file stays; the next run takes it).
    Hand-written rather than ``filelock``: that library truncates the file whenever a
    contender opens it, which would erase the holder's name we want to report. On NFS
    flock may not lock across hosts (doc/TRAINING.rst).
    """

    def __init__(self, directory: Optional[str]) -> None:
        self.directory = directory
        self.file: Optional[IO[str]] = None

    def __enter__(self) -> "DirLock":
        if self.directory is None:
            return self
        import fcntl  # POSIX only; imported here so the module imports everywhere

        os.makedirs(self.directory, exist_ok=True)
        path = os.path.join(self.directory, LOCK_FILE)
        f = open(path, "a+", encoding="utf-8")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            f.seek(0)
            holder = f.read().strip() or "an unknown process"
            f.close()
            if err.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            raise CheckpointLockedError(
                f"{self.directory} is in use by another training ({holder}; lock "
                f"file {path}). Wait for it to finish or stop it, or train into "
                "another --checkpoint_dir"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(
            f"pid {os.getpid()} on {socket.gethostname()} since "
            f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n"
        )
        f.flush()
        self.file = f
        return self

    def __exit__(self, *exc_info) -> None:
        if self.file is not None:
            self.file.close()  # closing the descriptor releases the flock
            self.file = None


def _remove_partial_save(prefix: str, directory: str) -> None:
    """Delete what a failed save of ``prefix`` left; never a listed checkpoint."""
    junk = glob.glob(glob.escape(prefix) + "_temp*")
    junk += glob.glob(os.path.join(glob.escape(directory), "*.tmp*"))
    if prefix not in listed_checkpoints_quiet(directory):
        junk += glob.glob(glob.escape(prefix) + ".index")
        junk += glob.glob(glob.escape(prefix) + ".data-*")
    for path in junk:
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.remove(path)
            except OSError:
                pass


def listed_checkpoints_quiet(directory: str) -> List[str]:
    try:
        return listed_checkpoints(directory)
    except CheckpointError:
        return []


def _save_failure(prefix: str, err: Exception, manager) -> str:
    """One paragraph: what failed, why, what is intact, what to do."""
    text = str(err)
    full = (
        (isinstance(err, OSError) and err.errno == errno.ENOSPC)
        or "No space left" in text
        or isinstance(err, tf.errors.ResourceExhaustedError)
    )
    reason = "the disk is full" if full else _first_line(err)
    intact = listed_checkpoints_quiet(manager.directory)
    kept = (
        f"the previous checkpoint {intact[-1]} is intact and a re-run resumes from it"
        if intact
        else "no earlier checkpoint exists in that directory"
    )
    fix = (
        f"free space on the disk of {manager.directory} (or point --checkpoint_dir "
        "at a larger one)"
        if full
        else f"check that {manager.directory} is writable"
    )
    return (
        f"could not save checkpoint {prefix}: {reason}. Its partial files were "
        f"removed; {kept}. {fix.capitalize()}, then re-run the same command"
    )


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    # TF prefixes op errors with a {{function_node ...}} tag that says nothing useful.
    if text.startswith("{{"):
        text = text.split("}}", 1)[-1].strip()
    lines = text.splitlines()
    return lines[0] if lines else type(err).__name__


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
    """The Config a checkpoint directory was trained with (CheckpointError if bad)."""
    path = os.path.join(checkpoint_dir, CONFIG_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            return Config.from_json(f.read())
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError, TypeError) as err:
        raise CheckpointError(
            f"{path} is corrupt ({err}); it records the model the checkpoints beside "
            "it were trained with. Restore it from a backup (an export's "
            "metadata.json does not replace it), or move the directory away to "
            "start over"
        ) from err


def _step_of(path: str) -> int:
    try:
        return int(path.rsplit("-", 1)[1].split(".")[0])
    except (IndexError, ValueError):
        return -1
