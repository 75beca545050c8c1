"""Assign samples to train/dev/test by percentage, or by speaker (none in two splits).

Deterministic: the same keys, speakers, percentages and seed give the same split on any
machine and in any input order (keys and speakers are sorted before the seeded
shuffle). By speaker, whole speakers go to test, then dev, in shuffled order until each
holds at least its share of the samples; every other speaker trains. Without speakers,
single samples are shuffled and cut. No TensorFlow, no I/O.
"""

from __future__ import annotations

import collections
import os
import re
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class SplitSpec:
    """Shares of dev and test in percent of the samples; the rest trains."""

    dev_percent: float = 0.0
    test_percent: float = 0.0
    seed: int = 4568

    def __post_init__(self) -> None:
        for name in ("dev_percent", "test_percent"):
            if not 0 <= getattr(self, name) < 100:
                raise ValueError(f"--{name} must be in [0, 100)")
        if self.dev_percent + self.test_percent >= 100:
            raise ValueError(
                "--dev_percent plus --test_percent must leave samples to train on"
            )

    @property
    def active(self) -> bool:
        return self.dev_percent > 0 or self.test_percent > 0


@dataclass(frozen=True)
class SplitResult:
    """The split of each key, and the speakers of each split (empty without them)."""

    split_of: Dict[str, str]  # key -> "train" | "dev" | "test"
    speakers: Dict[str, List[str]]  # split -> sorted speakers

    def summary(self, by_speaker: bool, seed: int) -> str:
        """'train 20 samples (4 speakers), dev 5 (1: kal), ...' for the report."""
        counts = collections.Counter(self.split_of.values())
        parts = []
        for split in SPLITS:
            text = f"{split} {counts[split]} samples"
            if by_speaker:
                names = self.speakers.get(split, [])
                shown = ": " + ", ".join(names) if split != "train" else ""
                plural = "" if len(names) == 1 else "s"
                text += f" ({len(names)} speaker{plural}{shown})"
            parts.append(text)
        kind = "by speaker" if by_speaker else "by sample"
        return f"split {kind} (seed {seed}): " + ", ".join(parts)


def assign_splits(
    keys: Sequence[str], spec: SplitSpec, speakers: Optional[Sequence[str]] = None
) -> SplitResult:
    """Split ``keys`` (unique sample ids); ``speakers[i]`` speaks ``keys[i]``.

    Raises ValueError when keys repeat, or when the speakers are too few to give every
    requested split at least one speaker and keep one for training.
    """
    if len(set(keys)) != len(keys):
        raise ValueError("sample ids must be unique to split them")
    if speakers is None:
        return _by_sample(list(keys), spec)
    if len(speakers) != len(keys):
        raise ValueError("one speaker per sample is needed")
    return _by_speaker(list(keys), list(speakers), spec)


def _targets(n: int, spec: SplitSpec) -> Dict[str, int]:
    """Samples wanted in test and dev: the share rounded, at least 1 when asked for."""
    wanted = {}
    for split, percent in (("test", spec.test_percent), ("dev", spec.dev_percent)):
        wanted[split] = max(1, round(n * percent / 100)) if percent > 0 else 0
    return wanted


def _by_sample(keys: List[str], spec: SplitSpec) -> SplitResult:
    order = sorted(keys)
    rng = np.random.default_rng(spec.seed)
    shuffled = [order[i] for i in rng.permutation(len(order))]
    wanted = _targets(len(keys), spec)
    if wanted["test"] + wanted["dev"] >= len(keys):
        raise ValueError(
            f"{len(keys)} samples are too few for the dev/test shares asked for"
        )
    split_of = {}
    for position, key in enumerate(shuffled):
        if position < wanted["test"]:
            split_of[key] = "test"
        elif position < wanted["test"] + wanted["dev"]:
            split_of[key] = "dev"
        else:
            split_of[key] = "train"
    return SplitResult(split_of, {})


def _by_speaker(keys: List[str], speakers: List[str], spec: SplitSpec) -> SplitResult:
    per_speaker = collections.Counter(speakers)
    names = sorted(per_speaker)
    rng = np.random.default_rng(spec.seed)
    queue = [names[i] for i in rng.permutation(len(names))]
    wanted = _targets(len(keys), spec)
    needed = 1 + sum(1 for n in wanted.values() if n)
    if len(names) < needed:
        raise ValueError(
            f"{len(names)} speaker(s) cannot fill {needed} splits without one speaker "
            "in two of them; add speakers, ask for fewer splits, or split by sample"
        )
    chosen: Dict[str, List[str]] = {"test": [], "dev": []}
    # Speakers that must stay in the queue: one for training, one for dev if asked.
    reserve = {"test": 1 + bool(wanted["dev"]), "dev": 1}
    for split in ("test", "dev"):
        count = 0
        while count < wanted[split] and len(queue) > reserve[split]:
            speaker = queue.pop(0)
            chosen[split].append(speaker)
            count += per_speaker[speaker]
    chosen["train"] = queue
    split_of_speaker = {s: split for split, group in chosen.items() for s in group}
    split_of = {key: split_of_speaker[s] for key, s in zip(keys, speakers)}
    return SplitResult(split_of, {k: sorted(v) for k, v in chosen.items()})


def read_speakers(
    speaker_from: str,
    paths: Sequence[str],
    base: str,
    columns: Optional[Sequence[Mapping[str, str]]] = None,
) -> List[str]:
    """The speaker of each audio file, as ``speaker_from`` says.

    ``parent``: the name of the folder holding the file; ``column:NAME``: that column
    of the file's manifest row (``columns``, one row per path); ``regex:PATTERN``:
    group 1 of PATTERN searched in the path relative to ``base``, with ``/``.

    Raises:
        ValueError: an unknown form, or a file whose speaker cannot be read.
    """
    kind, _, arg = speaker_from.partition(":")
    found: List[Optional[str]]
    if kind == "column":
        if columns is None:
            raise ValueError("--speaker_from column:NAME needs a manifest")
        found = [row.get(arg) for row in columns]
    elif kind == "parent":
        found = [os.path.basename(os.path.dirname(p)) for p in paths]
    elif kind == "regex":
        pattern = re.compile(arg)
        found = []
        for path in paths:
            match = pattern.search(os.path.relpath(path, base).replace(os.sep, "/"))
            found.append(match.group(1) if match and match.groups() else None)
    else:
        raise ValueError(
            f"--speaker_from {speaker_from!r}: use parent, column:NAME or regex:PATTERN"
        )
    for path, speaker in zip(paths, found):
        if not speaker:
            raise ValueError(
                f"no speaker for {path} with --speaker_from {speaker_from}; fix it or "
                "leave --speaker_from out to split by sample"
            )
    return [str(s) for s in found]
