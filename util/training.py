"""The train/dev loop: epochs, checkpoints, resume, early stopping, LR on plateau.

It orchestrates and owns no math: the steps live in util/steps.py, the batch order in
util/feeding.py, the weights' bookkeeping in util/checkpoints.py. Resume is exact: the
batch plan of an epoch is a pure function of (samples, epoch, seed), the checkpoint
records the epoch and the batches done in it, and a resumed run skips those batches.

A stop requested by a signal (``StopRequest``, set by DeepSpeech.py on SIGINT/SIGTERM)
is honoured between batches, where the counters match the weights: the run saves a
checkpoint and raises ``TrainingInterrupted``. TensorBoard scalars are held back until
the checkpoint that covers their step is saved (``Summaries``), so the steps a resumed
run redoes after a kill are logged once, not twice.
"""

import contextlib
import dataclasses
import functools
import math
import os
import re
import signal
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
from absl import logging
from tensorflow.core.framework import summary_pb2

from ctcdecode import Alphabet
from util import transfer
from util.augmentations import AugmentPass, epoch_clocks, parse_augmentations
from util.checkpoints import Checkpoints, TrainingState
from util.config import Config, TrainConfig
from util.distributed import global_batch_size, worker_rows
from util.feeding import FeatureCache, batch_plan, make_dataset
from util.model import trainable_variables
from util.models import AcousticModel, build_model
from util.optimizer import Adam, scheduled_learning_rate
from util.progress import Progress
from util.samples import Sample, SampleSet, ctc_required_frames, read_sample_set
from util.steps import Steps


@dataclasses.dataclass
class Session:
    """Everything a run holds: built once by ``build_session``."""

    config: Config
    alphabet: Alphabet
    strategy: tf.distribute.Strategy
    model: AcousticModel
    optimizer: Adam
    state: TrainingState
    checkpoints: Checkpoints
    steps: Steps


@dataclasses.dataclass(frozen=True)
class TrainResult:
    epochs_completed: int  # in all, over every run into this checkpoint dir
    last_train_loss: float
    best_dev_loss: float
    stopped_early: bool
    epochs_this_run: int = 0
    best_epoch: Optional[int] = None  # epoch (0-based) of the best dev loss
    checkpoint_dir: str = ""
    already_finished: bool = False  # the checkpoint had done every epoch asked for


class StopRequest:
    """Set (from a signal handler) to stop training at the next batch boundary."""

    def __init__(self) -> None:
        self.reason: Optional[str] = None  # e.g. "SIGINT"

    def request(self, reason: str) -> None:
        self.reason = reason


class TrainingInterrupted(Exception):
    """Training stopped on request; ``checkpoint`` is what a re-run resumes from."""

    def __init__(self, reason: str, checkpoint: Optional[str], epoch: int, step: int):
        super().__init__(reason)
        self.reason = reason
        self.checkpoint = checkpoint
        self.epoch = epoch
        self.step = step


@contextlib.contextmanager
def stop_on_signals(
    signals: Sequence[int] = (signal.SIGINT, signal.SIGTERM)
) -> Iterator[StopRequest]:
    """A StopRequest that SIGINT/SIGTERM set while the block runs (main thread only).

    The first signal asks the loop to stop at the next batch boundary and save; a
    second one raises KeyboardInterrupt at once (quit without saving). The previous
    handlers come back when the block ends. Called by DeepSpeech.py, the edge.
    """
    stop = StopRequest()

    def handler(signum: int, frame: Any) -> None:
        if stop.reason is not None:
            raise KeyboardInterrupt
        stop.request(signal.Signals(signum).name)
        logging.warning(
            "%s: stopping after the current batch and saving a checkpoint "
            "(send it again to quit at once, without saving)",
            stop.reason,
        )

    previous = {signum: signal.signal(signum, handler) for signum in signals}
    try:
        yield stop
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


class _Stop(Exception):
    """Raised between batches inside the loop when a stop was requested."""


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
        model = build_model(
            cfg.model,
            cfg.features.n_input,
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
            model=cfg.model,
        )
        for path in files
    ]


def train(
    session: Session,
    stop: Optional[StopRequest] = None,
    on_epoch: Optional[Callable[[EpochEnd], None]] = None,
) -> TrainResult:
    """Run ``--epochs`` more epochs (0.9's meaning; at most ``--max_epochs`` in all)
    from wherever the checkpoints say we are.

    Holds the checkpoint directory's lock throughout (CheckpointLockedError if another
    run holds it). ``stop``: see StopRequest; raises TrainingInterrupted after saving.
    ``on_epoch`` is called after each epoch's checkpoint (training notifications).
    """
    transfer.check_target(session.config)  # before the lock writes into the dir
    with session.checkpoints.lock():
        return _train_locked(session, stop or StopRequest(), on_epoch)


def _train_locked(
    session: Session,
    stop: StopRequest,
    on_epoch: Optional[Callable[[EpochEnd], None]],
) -> TrainResult:
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
    if transfer.starts_from_source(cfg):
        transfer.start(
            session.checkpoints, session.model, cfg, session.optimizer, session.state
        )
    else:
        session.checkpoints.restore_for_training()
    if cfg.train.force_initialize_learning_rate:  # DeepSpeech 0.9's flag
        session.optimizer.learning_rate.assign(cfg.train.learning_rate)
    state = session.state
    first = int(state.epoch.numpy())
    last = cfg.train.last_epoch(first)
    if first >= last:
        return _finished(session, first)
    cache = _open_cache(cfg, samples)
    summaries = Summaries(cfg.train.summary_dir, session.checkpoints.is_chief)
    loop = _Loop(session, summaries, stop)
    loop.epochs = (first, last)
    train_loss, stopped, epoch = float("nan"), False, first
    try:
        for epoch in range(first, last):
            loop.check()
            cache = _refresh_cache(cfg, samples, cache, epoch - first)
            train_loss = _train_epoch(loop, samples, cache, epoch)
            dev_loss = _dev_epoch(loop, dev_sets, epoch)
            _metrics_epoch(loop, metric_sets, epoch)
            best = float(state.best_dev_loss.numpy())
            stopped = _end_epoch(loop, epoch, train_loss, dev_loss)
            if on_epoch is not None:
                new_best = float(state.best_dev_loss.numpy())
                on_epoch(EpochEnd(epoch, train_loss, dev_loss, new_best,
                                  new_best < best, stopped))  # fmt: skip
            if stopped:
                break
    except _Stop:
        raise loop.interrupted(epoch) from None
    finally:
        summaries.close()
    return _result(session, train_loss, stopped, int(state.epoch.numpy()) - first)


class _Loop:
    """What every epoch of one run shares: session, summaries, stop and save times."""

    def __init__(
        self, session: Session, summaries: "Summaries", stop: StopRequest
    ) -> None:
        self.session = session
        self.summaries = summaries
        self.stop = stop
        self.last_save = time.monotonic()
        self.saved_step = int(session.state.global_step.numpy())
        self.epochs = (0, 1)  # [first, last) epoch of this run: the augment clock

    def check(self) -> None:
        if self.stop.reason is not None:
            raise _Stop()

    def save_last(self) -> Optional[str]:
        """Save, then release the scalars up to the saved step to TensorBoard."""
        step = int(self.session.state.global_step.numpy())
        path = self.session.checkpoints.save_last(step)
        self.summaries.flush()
        self.last_save, self.saved_step = time.monotonic(), step
        return path

    def interrupted(self, epoch: int) -> TrainingInterrupted:
        """Save what the batches since the last save did; the exception to raise."""
        state = self.session.state
        path = None
        if int(state.global_step.numpy()) != self.saved_step:
            path = self.save_last()
        return TrainingInterrupted(
            self.stop.reason or "stop", path, epoch, int(state.step_in_epoch.numpy())
        )


def _finished(session: Session, first: int) -> TrainResult:
    logging.warning(
        "nothing to train: the checkpoint in %s has already done %d epochs, "
        "--max_epochs %s. Raise --max_epochs to train further (resuming from it), "
        "or use another --checkpoint_dir to train a new model",
        session.checkpoints.save_dir,
        first,
        session.config.train.max_epochs,
    )
    return dataclasses.replace(
        _result(session, float("nan"), False, 0), already_finished=True
    )


def _result(
    session: Session, train_loss: float, stopped: bool, epochs_this_run: int
) -> TrainResult:
    state = session.state
    return TrainResult(
        int(state.epoch.numpy()),
        train_loss,
        float(state.best_dev_loss.numpy()),
        stopped,
        epochs_this_run=epochs_this_run,
        best_epoch=_best_epoch(session.checkpoints),
        checkpoint_dir=session.checkpoints.save_dir,
    )


def _best_epoch(checkpoints: Checkpoints) -> Optional[int]:
    """Epoch of the best-dev checkpoint, read from its saved counters."""
    path = checkpoints.best.latest_checkpoint
    if not path:
        return None
    reader = tf.train.load_checkpoint(path)
    return int(reader.get_tensor("state/epoch/.ATTRIBUTES/VARIABLE_VALUE")) - 1


def format_summary(
    result: TrainResult,
    test_wers: Sequence[Tuple[str, float, float]] = (),
    export_dir: Optional[str] = None,
) -> str:
    """The end-of-training summary; ``test_wers``: (set, WER, CER) when tested."""
    lines = [
        "Training summary",
        f"  epochs:          {result.epochs_completed} done in all, "
        f"{result.epochs_this_run} in this run"
        + (" (stopped early)" if result.stopped_early else ""),
    ]
    if result.best_epoch is not None and math.isfinite(result.best_dev_loss):
        lines.append(
            f"  best dev loss:   {result.best_dev_loss:.3f} "
            f"at epoch {result.best_epoch}"
        )
    else:
        lines.append("  best dev loss:   - (no --dev_files)")
    if math.isfinite(result.last_train_loss):
        lines.append(f"  last train loss: {result.last_train_loss:.3f}")
    for name, wer, cer in test_wers:
        lines.append(f"  test {name}: WER {wer:.3f}, CER {cer:.3f}")
    lines.append(f"  checkpoints:     {result.checkpoint_dir}")
    if export_dir:
        lines.append(f"  exported to:     {export_dir}")
    return "\n".join(lines)


def _open_cache(cfg: Config, samples: Sequence[Sample]) -> Optional[FeatureCache]:
    if not cfg.data.feature_cache:
        return None
    return FeatureCache.open(
        cfg.data.feature_cache, samples, cfg.features, cfg.train.show_progressbar
    )


def _train_epoch(
    loop: _Loop,
    samples: Sequence[Sample],
    cache: Optional[FeatureCache],
    epoch: int,
) -> float:
    """One pass over the training plan, resuming after the batches already done."""
    session = loop.session
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
        f"Epoch {epoch} train", len(plan), cfg.train.show_progressbar, initial=done
    )
    rows = worker_rows(batch_size, session.strategy)  # None: this process loads all
    augment = _augment_pass(loop, samples, epoch, done * batch_size)
    dataset = make_dataset(samples, plan[done:], cfg.features, cache, rows, augment)
    schedule = _lr_schedule(cfg.train, loop.epochs[1] * len(plan))
    for i, batch in enumerate(dataset, done):
        if schedule is not None:
            session.optimizer.learning_rate.assign(
                schedule(int(state.global_step.numpy()))
            )
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
        step = int(state.global_step.numpy())
        loop.summaries.add("train", "loss", float(np.mean(losses.numpy())), step)
        if time.monotonic() - loop.last_save >= cfg.checkpoint.checkpoint_secs:
            loop.save_last()
        loop.check()
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


def _lr_schedule(
    cfg: TrainConfig, total_steps: int
) -> Optional[Callable[[int], float]]:
    """The learning rate per global step (--lr_warmup_steps/--lr_decay), or None.

    The decay ends at the last update of the run's last epoch (``total_steps``); the
    position on the curve is the global step, so with ``--max_epochs`` a resumed run
    continues the same curve.
    """
    if not cfg.scheduled:
        return None
    return functools.partial(
        scheduled_learning_rate,
        base=cfg.learning_rate,
        total_steps=total_steps,
        warmup_steps=cfg.lr_warmup_steps,
        decay=cfg.lr_decay,
        floor=cfg.lr_decay_floor,
    )


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
        """' | N sample(s) skipped, audio does not decode ...', or ''. The files are
        named once per run, in util.feeding's warning, not in every epoch's line."""
        if not self.undecodable:
            return ""
        return (
            f" | {len(self.undecodable)} sample(s) skipped, audio does not decode "
            "(each named once in a warning)"
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
    session: Session,
    sample_set: SampleSet,
    batch_size: int,
    reverse: bool,
    label: str = "",
    loop: Optional[_Loop] = None,
) -> Tuple[float, int]:
    """Mean CTC loss of one dev set, and the number of finite losses it averaged.

    ``label``: show progress under that name; ``loop``: honour its stop request.
    """
    samples = list(sample_set.samples)
    plan = batch_plan(samples, batch_size, 0, 0, shuffle=False, reverse=reverse)
    tracker = _LossTracker(samples)
    show = session.config.train.show_progressbar
    progress = Progress(label, len(plan), show) if label else None
    for n, batch in enumerate(make_dataset(samples, plan, session.config.features), 1):
        losses, _ = session.steps.eval_step(batch)
        tracker.add(
            losses.numpy(), batch["index"].numpy(), True, batch["skipped"].numpy()
        )
        if progress is not None:
            progress.update(n, loss=tracker.mean)
        if loop is not None:
            loop.check()
    if progress is not None:
        progress.finish()
    if tracker.undecodable:
        logging.warning("dev set %s%s", sample_set.name, tracker.undecodable_note())
    return tracker.mean, tracker.count


def _dev_epoch(
    loop: _Loop, dev_sets: Sequence[SampleSet], epoch: int
) -> Optional[float]:
    """Loss over all dev sets (each logged), weighted by sample count; None if none."""
    session = loop.session
    cfg = session.config
    total, count = 0.0, 0
    tags = set_tags([s.name for s in dev_sets])
    for sample_set, tag in zip(dev_sets, tags):
        loss, n = dev_loss_of(
            session,
            sample_set,
            cfg.data.dev_batch_size,
            cfg.data.reverse_dev,
            label=f"Epoch {epoch} dev {tag}",
            loop=loop,
        )
        logging.info("Epoch %d | dev loss %.6f on %s", epoch, loss, sample_set.name)
        step = int(session.state.global_step.numpy())
        loop.summaries.add("dev", f"loss/{tag}", loss, step)
        if n:
            total, count = total + loss * n, count + n
    if not count:
        return None
    loop.summaries.add("dev", "loss", total / count, session.state.global_step)
    return total / count


def _metrics_epoch(loop: _Loop, metric_sets: Sequence[SampleSet], epoch: int) -> None:
    """0.9's --metrics_files: loss reported, never used for best/early stop/LR."""
    session = loop.session
    for sample_set, tag in zip(metric_sets, set_tags([s.name for s in metric_sets])):
        loss, _ = dev_loss_of(
            session,
            sample_set,
            session.config.data.dev_batch_size,
            False,
            label=f"Epoch {epoch} metrics {tag}",
            loop=loop,
        )
        logging.info("Epoch %d | metrics loss %.6f on %s", epoch, loss, sample_set.name)
        step = int(session.state.global_step.numpy())
        loop.summaries.add("metrics", f"loss/{tag}", loss, step)


def _augment_pass(
    loop: "_Loop", samples: Sequence[Sample], epoch: int, first_position: int
) -> Optional[AugmentPass]:
    """--augment for one training epoch (never for dev, test or metrics sets): clocks
    run 0 -> 1 over this run's epochs, as DeepSpeech 0.9's did."""
    cfg = loop.session.config
    augmentations = parse_augmentations(cfg.data.augment)
    if not augmentations:
        return None
    start, end = epoch_clocks(epoch, *loop.epochs)
    stride = cfg.model.time_stride
    return AugmentPass(
        augmentations,
        cfg.train.random_seed,
        epoch,
        start,
        end,
        np.array([ctc_required_frames(s.labels) * stride for s in samples], np.int32),
        first_position,
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


def set_tags(paths: Sequence[str]) -> List[str]:
    """Short TensorBoard names for data sets: the CSV's stem (``dev`` for
    ``/data/cv/dev.csv``), with its folder when two stems clash."""
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    tags = []
    for path, stem in zip(paths, stems):
        if stems.count(stem) > 1:
            parent = os.path.basename(os.path.dirname(os.path.abspath(path)))
            stem = f"{parent}_{stem}"
        tags.append(re.sub(r"[^A-Za-z0-9_.-]+", "_", stem) or "set")
    return tags


def _end_epoch(
    loop: _Loop, epoch: int, train_loss: float, dev_loss: Optional[float]
) -> bool:
    """Checkpoint, track the best dev loss; True when early stopping triggers."""
    session = loop.session
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
    lr = float(session.optimizer.learning_rate.numpy())
    loop.summaries.add("train", "learning_rate", lr, step)
    loop.save_last()
    if improved:
        path = session.checkpoints.save_best(step)
        logging.info(
            "Epoch %d | new best dev loss %.6f, saved %s", epoch, dev_loss, path
        )
    if dev_loss is None:
        return False
    _log_patience(epoch, cfg, int(state.epochs_since_best.numpy()))
    if cfg.early_stop and int(state.epochs_since_best.numpy()) >= cfg.es_epochs:
        logging.info(
            "early stop: no dev-loss improvement > %g for %d epochs",
            cfg.es_min_delta,
            cfg.es_epochs,
        )
        return True
    return False


def _log_patience(epoch: int, cfg: TrainConfig, since_best: int) -> None:
    """'N of M epochs without improvement' once the dev loss stops improving."""
    if not since_best:
        return
    if cfg.early_stop:
        logging.info(
            "Epoch %d | %d of %d epochs without dev-loss improvement > %g "
            "(early stop at %d of %d)",
            epoch, since_best, cfg.es_epochs, cfg.es_min_delta, cfg.es_epochs,
            cfg.es_epochs,
        )  # fmt: skip
    else:
        logging.info(
            "Epoch %d | %d epoch(s) without dev-loss improvement > %g",
            epoch, since_best, cfg.es_min_delta,
        )  # fmt: skip


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
# them with core tf.summary.write needs no tensorboard import at training time.
_SCALAR_METADATA = summary_pb2.SummaryMetadata(
    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
).SerializeToString()


class Summaries:
    """TensorBoard scalars under ``summary_dir/<run>``, written when ``flush``ed.

    The training loop flushes right after each checkpoint save, so what TensorBoard
    holds never runs ahead of the checkpoints: a run killed between two saves loses
    its unsaved scalars with its unsaved steps, and the resumed run logs those steps
    once. A non-chief worker (``enabled`` False) writes nothing.
    """

    def __init__(self, summary_dir: Optional[str], enabled: bool = True) -> None:
        self.summary_dir = summary_dir
        self.enabled = enabled and bool(summary_dir)
        self.writers: Dict[str, tf.summary.SummaryWriter] = {}
        self.pending: List[Tuple[str, str, float, int]] = []

    def add(self, run: str, tag: str, value: float, step) -> None:
        if self.enabled and math.isfinite(value):
            self.pending.append((run, tag, float(value), int(step)))

    def flush(self) -> None:
        for run, tag, value, step in self.pending:
            scalar_summary(self._writer(run), tag, value, step)
        self.pending = []
        for writer in self.writers.values():
            writer.flush()

    def close(self) -> None:
        """Close the writers; scalars not flushed (no checkpoint covers them) drop."""
        for writer in self.writers.values():
            writer.close()
        self.writers = {}

    def _writer(self, run: str) -> tf.summary.SummaryWriter:
        if run not in self.writers:
            path = os.path.join(self.summary_dir or "", run)
            self.writers[run] = tf.summary.create_file_writer(path)
        return self.writers[run]


def scalar_summary(writer, tag: str, value: float, step) -> None:
    """One TensorBoard scalar at ``step``, skipped when the value is not finite."""
    if not math.isfinite(value):
        return
    with writer.as_default():
        tf.summary.write(
            tag,
            tf.constant(value, tf.float32),
            step=tf.constant(int(step), tf.int64),
            metadata=_SCALAR_METADATA,
        )
