"""The train/dev loop: epochs, checkpoints, resume, early stopping, LR on plateau.

It orchestrates and owns no math: the steps live in util/steps.py, the batch order in
util/feeding.py, the weights' bookkeeping in util/checkpoints.py. Resume is exact: the
batch plan of an epoch is a pure function of (samples, epoch, seed), the checkpoint
records the epoch and the batches done in it, and a resumed run skips those batches.
"""

import dataclasses
import math
import time
from typing import Any, Callable, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
from absl import logging
from tensorflow.core.framework import summary_pb2

from ctcdecode import Alphabet
from util import transfer
from util.checkpoints import Checkpoints, TrainingState
from util.config import Config
from util.distributed import global_batch_size, worker_rows
from util.feeding import FeatureCache, batch_plan, make_dataset
from util.model import DeepSpeechModel, trainable_variables
from util.optimizer import Adam
from util.progress import Progress
from util.samples import Sample, SampleSet, read_sample_set
from util.steps import Steps


@dataclasses.dataclass
class Session:
    """Everything a run holds: built once by ``build_session``."""

    config: Config
    alphabet: Alphabet
    strategy: tf.distribute.Strategy
    model: DeepSpeechModel
    optimizer: Adam
    state: TrainingState
    checkpoints: Checkpoints
    steps: Steps


@dataclasses.dataclass(frozen=True)
class TrainResult:
    epochs_completed: int
    last_train_loss: float
    best_dev_loss: float
    stopped_early: bool


@dataclasses.dataclass(frozen=True)
class EpochEnd:
    """An epoch's numbers, for ``train(on_epoch=...)`` (util/notify.py)."""

    epoch: int
    train_loss: float
    dev_loss: Optional[float]
    best_dev_loss: float  # after this epoch
    improved: bool  # this epoch set a new best dev loss (and saved it)
    stopped_early: bool


def build_session(
    cfg: Config,
    alphabet: Alphabet,
    strategy: tf.distribute.Strategy,
    is_chief: bool = True,
) -> Session:
    """Create model, optimizer and counters under ``strategy`` and their checkpoints."""
    with strategy.scope():
        model = DeepSpeechModel(
            cfg.model,
            cfg.features.n_mfcc,
            alphabet.n_classes,
            seed=cfg.train.random_seed,
        )
        optimizer = Adam(
            trainable_variables(model),
            cfg.train.learning_rate,
            cfg.train.beta1,
            cfg.train.beta2,
            cfg.train.epsilon,
        )
        state = TrainingState()
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, state=state)
    checkpoints = Checkpoints(cfg.checkpoint, checkpoint, cfg, alphabet, is_chief)
    steps = Steps(
        model,
        optimizer,
        strategy,
        jit=cfg.train.jit,
        cudnn=bool(cfg.device.train_cudnn),
        compute_dtype=cfg.device.compute_dtype,
        frozen_layers=transfer.frozen_layers(cfg.checkpoint.freeze_source_layers),
    )
    return Session(cfg, alphabet, strategy, model, optimizer, state, checkpoints, steps)


def load_sets(
    files: Sequence[str], cfg: Config, alphabet: Alphabet, limit: int
) -> List[SampleSet]:
    """Read and validate each CSV (bad rows skipped and reported, or an error)."""
    return [
        read_sample_set(
            path,
            alphabet,
            cfg.features,
            limit=limit,
            skip_bad=cfg.data.skip_bad_samples,
            read_buffer=cfg.data.read_buffer,
        )
        for path in files
    ]


def train(
    session: Session, on_epoch: Optional[Callable[[EpochEnd], None]] = None
) -> TrainResult:
    """Run ``--epochs`` more epochs (0.9's meaning; at most ``--max_epochs`` in all)
    from wherever the checkpoints say we are.

    ``on_epoch`` is called after each epoch's checkpoint (training notifications).
    """
    cfg = session.config
    train_sets = load_sets(
        cfg.data.train_files, cfg, session.alphabet, cfg.data.limit_train
    )
    samples = [s for sample_set in train_sets for s in sample_set.samples]
    if not samples:
        raise ValueError(
            f"no usable training samples in {', '.join(cfg.data.train_files)}"
        )
    dev_sets = load_sets(cfg.data.dev_files, cfg, session.alphabet, cfg.data.limit_dev)
    metric_sets = load_sets(cfg.data.metrics_files, cfg, session.alphabet, 0)
    if transfer.is_transfer(cfg):
        transfer.start(session.checkpoints, session.model, cfg)
    else:
        session.checkpoints.restore_for_training()
    if cfg.train.force_initialize_learning_rate:  # DeepSpeech 0.9's flag
        session.optimizer.learning_rate.assign(cfg.train.learning_rate)
    cache = _open_cache(cfg, samples)
    writer, dev_writer = _summary_writers(cfg, session.checkpoints.is_chief)
    state = session.state
    train_loss, stopped = float("nan"), False
    first = int(state.epoch.numpy())
    for epoch in range(first, cfg.train.last_epoch(first)):
        cache = _refresh_cache(cfg, samples, cache, epoch - first)
        train_loss = _train_epoch(session, samples, cache, epoch, writer)
        dev_loss = _dev_epoch(session, dev_sets, epoch, dev_writer)
        _metrics_epoch(session, metric_sets, epoch, dev_writer)
        best = float(state.best_dev_loss.numpy())
        stopped = _end_epoch(session, epoch, train_loss, dev_loss)
        if on_epoch is not None:
            new_best = float(state.best_dev_loss.numpy())
            on_epoch(EpochEnd(epoch, train_loss, dev_loss, new_best, new_best < best,
                              stopped))  # fmt: skip
        if stopped:
            break
    return TrainResult(
        int(state.epoch.numpy()),
        train_loss,
        float(state.best_dev_loss.numpy()),
        stopped,
    )


def _summary_writers(cfg: Config, is_chief: bool) -> Tuple[Any, Any]:
    """TensorBoard writers for train and dev; a non-chief worker writes nothing."""
    if not is_chief:
        return tf.summary.create_noop_writer(), tf.summary.create_noop_writer()
    return (
        tf.summary.create_file_writer(f"{cfg.train.summary_dir}/train"),
        tf.summary.create_file_writer(f"{cfg.train.summary_dir}/dev"),
    )


def _open_cache(cfg: Config, samples: Sequence[Sample]) -> Optional[FeatureCache]:
    if not cfg.data.feature_cache:
        return None
    return FeatureCache.open(
        cfg.data.feature_cache, samples, cfg.features, cfg.train.show_progressbar
    )


def _train_epoch(
    session: Session,
    samples: Sequence[Sample],
    cache: Optional[FeatureCache],
    epoch: int,
    writer,
) -> float:
    """One pass over the training plan, resuming after the batches already done."""
    cfg, state = session.config, session.state
    batch_size = global_batch_size(cfg.data.train_batch_size, session.strategy)
    plan = batch_plan(
        samples,
        batch_size,
        epoch,
        cfg.train.random_seed,
        shuffle=cfg.train.shuffle_batches,
        reverse=cfg.data.reverse_train,
    )
    done = int(state.step_in_epoch.numpy())
    if done:
        logging.info(
            "epoch %d: resuming after %d of %d batches", epoch, done, len(plan)
        )
    durations = np.array([s.duration_s for s in samples])
    tracker = _LossTracker(samples)
    progress = Progress(
        f"Epoch {epoch:3d} train", len(plan), cfg.train.show_progressbar
    )
    progress.update(done)
    last_save = time.monotonic()
    rows = worker_rows(batch_size, session.strategy)  # None: this process loads all
    dataset = make_dataset(samples, plan[done:], cfg.features, cache, rows)
    for i, batch in enumerate(dataset, done):
        seed = tf.constant(
            [cfg.train.random_seed, int(state.global_step.numpy())], tf.int32
        )
        losses, applied = session.steps.train_step(batch, seed)
        tracker.add(
            losses.numpy(),
            batch["index"].numpy(),
            bool(applied.numpy()),
            batch["skipped"].numpy(),
        )
        state.step_in_epoch.assign(i + 1)
        state.global_step.assign_add(1)
        tracker.audio_s += float(durations[batch["index"].numpy()].sum())
        speed = tracker.audio_s / max(time.perf_counter() - progress.start, 1e-9)
        progress.update(i + 1, loss=tracker.mean, speed=speed)
        scalar_summary(
            writer, "loss", float(np.mean(losses.numpy())), state.global_step
        )
        if time.monotonic() - last_save >= cfg.checkpoint.checkpoint_secs:
            session.checkpoints.save_last(int(state.global_step.numpy()))
            last_save = time.monotonic()
    wall = progress.finish()
    logging.info(
        "Epoch %d | train loss %.6f | %.1f audio-s in %.1f s (%.2f audio-s/s)%s%s",
        epoch,
        tracker.mean,
        tracker.audio_s,
        wall,
        tracker.audio_s / max(wall, 1e-9),
        (
            f" | {tracker.n_skipped} updates skipped (Inf/NaN)"
            if tracker.n_skipped
            else ""
        ),
        tracker.undecodable_note(),
    )
    return tracker.mean


class _LossTracker:
    """Mean of the finite per-utterance losses; names the files of the others."""

    def __init__(self, samples: Sequence[Sample]) -> None:
        self.samples = samples
        self.total = 0.0
        self.count = 0
        self.n_skipped = 0
        self.audio_s = 0.0
        self.undecodable: List[str] = []  # files util.feeding skipped, in order

    def undecodable_note(self) -> str:
        """' | N samples skipped (audio does not decode): files', or ''."""
        if not self.undecodable:
            return ""
        return (
            f" | {len(self.undecodable)} sample(s) skipped, audio does not decode: "
            + ", ".join(self.undecodable)
        )

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else float("nan")

    def add(
        self,
        losses: np.ndarray,
        index: np.ndarray,
        applied: bool,
        skipped: Optional[np.ndarray] = None,
    ) -> None:
        """``skipped``: bool [B], rows util.feeding could not decode (left out)."""
        if skipped is not None and skipped.any():
            self.undecodable.extend(
                self.samples[i].wav_filename for i in index[skipped]
            )
            losses, index = losses[~skipped], index[~skipped]
        finite = np.isfinite(losses)
        self.total += float(losses[finite].sum())
        self.count += int(finite.sum())
        if not finite.all():
            files = [self.samples[i].wav_filename for i in index[~finite]]
            logging.warning("non-finite loss for %s", ", ".join(files))
        if not applied:
            self.n_skipped += 1
            files = [self.samples[i].wav_filename for i in index]
            logging.warning(
                "skipped a weight update: Inf/NaN gradients from batch %s",
                ", ".join(files),
            )


def dev_loss_of(
    session: Session, sample_set: SampleSet, batch_size: int, reverse: bool
) -> Tuple[float, int]:
    """Mean CTC loss of one dev set, and the number of finite losses it averaged."""
    samples = list(sample_set.samples)
    plan = batch_plan(samples, batch_size, 0, 0, shuffle=False, reverse=reverse)
    tracker = _LossTracker(samples)
    for batch in make_dataset(samples, plan, session.config.features):
        losses, _ = session.steps.eval_step(batch)
        tracker.add(
            losses.numpy(), batch["index"].numpy(), True, batch["skipped"].numpy()
        )
    if tracker.undecodable:
        logging.warning("dev set %s%s", sample_set.name, tracker.undecodable_note())
    return tracker.mean, tracker.count


def _dev_epoch(
    session: Session, dev_sets: Sequence[SampleSet], epoch: int, writer
) -> Optional[float]:
    """Loss over all dev sets (each logged), weighted by sample count; None if none."""
    cfg = session.config
    total, count = 0.0, 0
    for sample_set in dev_sets:
        loss, n = dev_loss_of(
            session, sample_set, cfg.data.dev_batch_size, cfg.data.reverse_dev
        )
        logging.info("Epoch %d | dev loss %.6f on %s", epoch, loss, sample_set.name)
        scalar_summary(writer, f"dev_loss/{sample_set.name}", loss, session.state.epoch)
        if n:
            total, count = total + loss * n, count + n
    return total / count if count else None


def _metrics_epoch(
    session: Session, metric_sets: Sequence[SampleSet], epoch: int, writer
) -> None:
    """0.9's --metrics_files: loss reported, never used for best/early stop/LR."""
    for sample_set in metric_sets:
        loss, _ = dev_loss_of(
            session, sample_set, session.config.data.dev_batch_size, False
        )
        logging.info("Epoch %d | metrics loss %.6f on %s", epoch, loss, sample_set.name)
        scalar_summary(
            writer, f"metrics_loss/{sample_set.name}", loss, session.state.epoch
        )


def _refresh_cache(
    cfg: Config, samples: Sequence[Sample], cache: Optional[FeatureCache], done: int
) -> Optional[FeatureCache]:
    """0.9's --cache_for_epochs: rebuild the feature cache every N epochs of a run."""
    every = cfg.data.cache_for_epochs
    if cache is None or not every or not done or done % every:
        return cache
    logging.info("--cache_for_epochs %d: rebuilding the feature cache", every)
    cache.remove()
    return _open_cache(cfg, samples)


def _end_epoch(
    session: Session, epoch: int, train_loss: float, dev_loss: Optional[float]
) -> bool:
    """Checkpoint, track the best dev loss; True when early stopping triggers."""
    cfg, state = session.config.train, session.state
    state.epoch.assign(epoch + 1)
    state.step_in_epoch.assign(0)
    step = int(state.global_step.numpy())
    improved = dev_loss is not None and dev_loss < float(state.best_dev_loss.numpy())
    significant = dev_loss is not None and (
        float(state.best_dev_loss.numpy()) - dev_loss > cfg.es_min_delta
    )
    if dev_loss is not None:
        _count(state.epochs_since_best, reset=significant)
        _count(state.epochs_since_lr_change, reset=significant)
    if improved:
        state.best_dev_loss.assign(dev_loss)
    if dev_loss is not None:
        _maybe_reduce_lr(session)  # before saving, so a resumed run keeps the new rate
    session.checkpoints.save_last(step)
    if improved:
        path = session.checkpoints.save_best(step)
        logging.info(
            "Epoch %d | new best dev loss %.6f, saved %s", epoch, dev_loss, path
        )
    if dev_loss is None:
        return False
    if cfg.early_stop and int(state.epochs_since_best.numpy()) >= cfg.es_epochs:
        logging.info(
            "early stop: no dev-loss improvement > %g for %d epochs",
            cfg.es_min_delta,
            cfg.es_epochs,
        )
        return True
    return False


def _count(counter: tf.Variable, reset: bool) -> None:
    counter.assign(0 if reset else counter + 1)


def _maybe_reduce_lr(session: Session) -> None:
    cfg, state = session.config.train, session.state
    if not cfg.reduce_lr_on_plateau:
        return
    if int(state.epochs_since_lr_change.numpy()) >= cfg.plateau_epochs:
        lr = session.optimizer.learning_rate
        lr.assign(lr * cfg.plateau_reduction)
        state.epochs_since_lr_change.assign(0)
        logging.info("dev loss plateau: learning rate reduced to %g", float(lr.numpy()))


# TensorBoard's scalar plugin reads tensor summaries tagged with this metadata; writing
# them with core tf.summary.write avoids depending on the tensorboard package.
_SCALAR_METADATA = summary_pb2.SummaryMetadata(
    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
).SerializeToString()


def scalar_summary(writer, tag: str, value: float, step: tf.Variable) -> None:
    """One TensorBoard scalar at ``step``, skipped when the value is not finite."""
    if not math.isfinite(value):
        return
    with writer.as_default():
        tf.summary.write(
            tag, tf.constant(value, tf.float32), step=step, metadata=_SCALAR_METADATA
        )
