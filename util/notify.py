"""Training notifications: ``--notify URL`` (repeatable) through apprise.

One URL per service, in apprise's notation: ``tgram://bot_token/chat_id`` (Telegram,
as the Russian DeepSpeech fork sent), ``slack://...``, ``mailto://...``,
``ntfy://topic``, ``json://host:port/path`` (a plain JSON webhook), and many more
(https://github.com/caronc/apprise/wiki). Messages go out on start, at the end of each
epoch (train and dev loss), on a new best dev loss, on early stop, at the finish and
on a crash, each titled with the run's name.

A notification that fails is logged as a warning and never stops training: sending
catches every error (a network, a service, a typo in a token). The URLs may hold
tokens, so they are read from the flag at the edge and never written to the run's
config.json. Sends are synchronous with apprise's short timeouts (a few seconds), once
per epoch at most.
"""

from __future__ import annotations

import os
import socket
from typing import Any, Optional, Sequence, Type

from absl import logging


class Notifier:
    """Sends the training events of one run to ``urls``; see the module docstring."""

    def __init__(self, urls: Sequence[str], run_name: str) -> None:
        import apprise

        self.run_name = run_name
        self._apprise = apprise.Apprise()
        for url in urls:
            if not self._apprise.add(url):
                raise ValueError(
                    f"--notify {url!r} is not a notification URL apprise understands "
                    "(e.g. tgram://token/chat, ntfy://topic, json://host:port/path)"
                )

    def _send(self, event: str, body: str) -> bool:
        """Send one message; False (and a warning) if any service failed."""
        title = f"DeepSpeech {self.run_name}: {event}"
        try:
            ok = bool(self._apprise.notify(title=title, body=body))
        except Exception as err:  # a notification must never stop training
            logging.warning("notification %r failed: %s", event, err)
            return False
        if not ok:
            logging.warning("notification %r could not be delivered everywhere", event)
        return ok

    def start(self, description: str) -> None:
        self._send("started", description)

    def epoch(self, end: Any) -> None:
        """``train(on_epoch=...)``: util.training.EpochEnd of each epoch."""
        dev = "no dev set" if end.dev_loss is None else f"dev loss {end.dev_loss:.4f}"
        self._send(
            f"epoch {end.epoch}",
            f"epoch {end.epoch}: train loss {end.train_loss:.4f}, {dev}, "
            f"best dev loss {end.best_dev_loss:.4f}",
        )
        if end.improved:
            self._send(
                "new best model",
                f"epoch {end.epoch}: new best dev loss {end.dev_loss:.4f} (saved)",
            )
        if end.stopped_early:
            self._send(
                "early stop",
                f"stopped early after epoch {end.epoch}: best dev loss "
                f"{end.best_dev_loss:.4f}",
            )

    def finish(self, result: Any) -> None:
        """util.training.TrainResult of the finished run."""
        self._send(
            "finished",
            f"{result.epochs_completed} epochs, last train loss "
            f"{result.last_train_loss:.4f}, best dev loss {result.best_dev_loss:.4f}"
            + (" (stopped early)" if result.stopped_early else ""),
        )

    def crash(self, error: BaseException) -> None:
        self._send("crashed", f"{type(error).__name__}: {error}")


def run_name(checkpoint_dir: str) -> str:
    """``<model> on <host>``: the checkpoint dir's name (its parent's if it is
    ``checkpoints``, as in runs/<model>/checkpoints)."""
    path = os.path.normpath(os.path.abspath(checkpoint_dir or "."))
    name = os.path.basename(path)
    if name in ("checkpoints", "ckpt", "checkpoint"):
        name = os.path.basename(os.path.dirname(path))
    return f"{name} on {socket.gethostname()}"


class TrainingEvents:
    """A training run's events as a context manager (DeepSpeech.py)::

        with training_events(urls, cfg) as events:
            events.finished(training.train(session, on_epoch=events.epoch))

    Entering sends "started", an exception leaving the block sends "crashed" (and goes
    on); without URLs every method does nothing.
    """

    def __init__(self, notifier: Optional[Notifier], description: str) -> None:
        self.notifier = notifier
        self.description = description

    def __enter__(self) -> "TrainingEvents":
        if self.notifier is not None:
            self.notifier.start(self.description)
        return self

    def epoch(self, end: Any) -> None:
        if self.notifier is not None:
            self.notifier.epoch(end)

    def finished(self, result: Any) -> Any:
        if self.notifier is not None:
            self.notifier.finish(result)
        return result

    def __exit__(
        self, kind: Optional[Type[BaseException]], error: Optional[BaseException], tb
    ) -> None:
        if error is not None and self.notifier is not None:
            self.notifier.crash(error)


def training_events(urls: Sequence[str], cfg: Any) -> TrainingEvents:
    """Events of the run configured by ``cfg`` (util.config.Config) sent to ``urls``."""
    notifier = (
        Notifier(urls, run_name(cfg.checkpoint.save_checkpoint_dir)) if urls else None
    )
    files = ", ".join(cfg.data.train_files)
    description = (
        f"training on {files}: {cfg.train.epochs} epochs, n_hidden {cfg.model.n_hidden}"
    )
    return TrainingEvents(notifier, description)
