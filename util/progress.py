"""Progress reporting for long passes: a progressbar2 bar on a terminal, log lines else.

The one place bars are drawn. Whether they may be is the caller's explicit choice
(``--show_progressbar`` travels as a plain bool); even then a bar is drawn only when
the stream is a terminal. Piped into ``tee`` or a file, a bar would be one full line
per update, so a pass logs instead: one INFO line at its first step (it has started),
then one every ``LOG_EVERY_S`` seconds; its caller logs the pass's result at the end.
Values keep their precision: loss with three decimals (a bar once cut 96.37 to ``96.``).
"""

import datetime
import os
import sys
import time
from typing import IO, Dict, Optional

import progressbar
from absl import logging

LOG_EVERY_S = 30.0  # s between progress log lines when no bar is drawn
FORMATS = {"loss": "loss {:.3f}", "speed": "{:.1f} audio-s/s"}  # shown values


class Progress:
    """``update(n_done, **values)`` during a pass, ``finish()`` at its end."""

    def __init__(
        self,
        label: str,
        total: Optional[int],
        show_bar: bool,
        initial: int = 0,
        stream: Optional[IO[str]] = None,
    ) -> None:
        self.label = label
        self.total = total
        self.initial = initial
        self.start = time.perf_counter()
        self.last_log: Optional[float] = None
        self.values: Dict[str, float] = {}
        stream = stream if stream is not None else sys.stderr
        self.bar = _bar(label, total, stream) if show_bar and _is_tty(stream) else None
        if self.bar is not None:
            self.bar.start()
            self.bar.update(initial)

    def update(self, n_done: int, **values: float) -> None:
        self.values.update(values)
        if self.bar is not None:
            shown = {k: format_value(k, v) for k, v in values.items() if k in FORMATS}
            self.bar.update(min(n_done, self.total) if self.total else n_done, **shown)
            return
        now = time.perf_counter()
        first = self.last_log is None and n_done > self.initial
        if first or (self.last_log is not None and now - self.last_log >= LOG_EVERY_S):
            self.last_log = now
            logging.info("%s", self.line(n_done, now))

    def line(self, n_done: int, now: float) -> str:
        """``label: n/total (p%) | loss 96.370 | 0:00:31, ETA 0:02:04``"""
        parts = [f"{self.label}: {n_done}/{self.total or '?'}"]
        if self.total:
            parts[0] += f" ({100 * n_done // self.total}%)"
        parts += [format_value(k, v) for k, v in sorted(self.values.items())]
        elapsed = now - self.start
        timing = f"{_hms(elapsed)} elapsed"
        done_now = n_done - self.initial
        if self.total and done_now > 0:
            timing += f", ETA {_hms(elapsed / done_now * (self.total - n_done))}"
        return " | ".join(parts + [timing])

    def finish(self) -> float:
        """Close the bar; returns the pass's wall time in seconds."""
        if self.bar is not None:
            self.bar.finish()
        return time.perf_counter() - self.start


def format_value(name: str, value: float) -> str:
    return FORMATS.get(name, name + " {:.4g}").format(value)


def _bar(label: str, total: Optional[int], stream: IO[str]) -> progressbar.ProgressBar:
    # Values arrive formatted; precision 40 keeps the Variable widget from cutting them.
    widgets = [
        f"{label} ",
        progressbar.Percentage() if total else progressbar.Counter(),
        " ",
        progressbar.Bar() if total else progressbar.AnimatedMarker(),
        " ",
        progressbar.Variable("loss", format="{formatted_value}", width=1, precision=40),
        " ",
        progressbar.Variable(
            "speed", format="{formatted_value}", width=1, precision=40
        ),
        " ",
        progressbar.ETA() if total else progressbar.Timer(),
    ]
    return progressbar.ProgressBar(
        max_value=total or progressbar.UnknownLength,
        widgets=widgets,
        variables={"loss": "loss -", "speed": "- audio-s/s"},
        fd=stream,
        is_terminal=True,
    )


def _is_tty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _hms(seconds: float) -> str:
    return str(datetime.timedelta(seconds=int(max(seconds, 0))))


class PipeSafeStream:
    """A stdout/stderr stand-in that goes to /dev/null once its reader is gone.

    Ctrl-C under ``| tee`` kills tee too; a training run must still save its
    checkpoint and exit with its own status rather than die of BrokenPipeError.
    Redirecting the file descriptor also covers TensorFlow's C++ logging and Python's
    final flush. Installed by DeepSpeech.py (the edge), never by library code.
    """

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._to_devnull()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._to_devnull()

    def _to_devnull(self) -> None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self._stream.fileno())
        os.close(devnull)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)
