"""DeepSpeech 0.9's training augmentations: ``--augment`` specs, value ranges, kinds.

``--augment kind[param=value,...]`` (repeatable) is parsed here into frozen
:class:`Augmentation` objects (``parse_augmentations``); ``util/config.py`` calls it to
validate the flag, ``util/feeding.py`` applies the result to *training* batches only
(``make_dataset(..., augment=AugmentPass)``; dev, test and metrics sets never get one).

Each kind works in one *domain* (doc/TRAINING.rst, "Augmentation"), applied in this
order, and within a domain in command-line order:

1. ``sample``: the decoded waveform as numpy (``util.augment_sample``): overlay, reverb,
   resample, codec, volume;
2. ``signal``: the waveform as a tensor (``util.augment_graph``);
3. ``spectrogram``: the power spectrum the features start from
   (``util.features.power_spectrogram``): pitch, tempo, warp, frequency_mask, and by
   default time_mask and dropout;
4. ``features``: the model's input (after ``--feature_normalization``): by default add
   and multiply.

Value ranges (``ValueRange``) are 0.9's: ``a`` (constant), ``a~r`` (uniform in
[a - r, a + r]), ``start:end`` (moves from start to end over training, with the
*clock*) and ``start:end~r``; an int parameter only takes rounded values.

Randomness is a pure function of (``--random_seed``, epoch, sample index, the
augmentation's position in the list): the numpy kinds draw from
``np.random.default_rng`` of those numbers, the graph kinds from stateless TF ops seeded
with them. So the same seed gives the same augmented input whatever the number of
tf.data threads or cluster workers, and a resumed epoch redoes the same augmentations.
The clock of a sample is its position in the epoch's batch plan, so ``start:end``
ranges (only) also depend on the batch size.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, ClassVar, Dict, Optional, Sequence, Tuple, Union

import numpy as np

FLAG = "--augment"
DOMAINS = ("sample", "signal", "spectrogram", "features")
_SPEC = re.compile(r"^(?P<kind>[a-z_]+)(\[(?P<params>.*)\])?$")
_RANGE_HELP = "value ranges are a, a~r, start:end or start:end~r"
Number = Union[int, float]


class AugmentationError(ValueError):
    """A bad ``--augment`` spec; the message names the flag, the spec and the part."""


@dataclass(frozen=True)
class ValueRange:
    """0.9's ``start:end~r``: at clock c (0..1) a value uniform in
    [v - r, v + r] with v = start + c (end - start); rounded when ``integer``."""

    start: Number
    end: Number
    r: Number = 0
    integer: bool = False

    @classmethod
    def parse(cls, text: str, integer: bool) -> "ValueRange":
        """From 0.9's syntax; ValueError with a short reason on a bad text."""
        kind = int if integer else float
        center, _, radius = text.partition("~")
        if "~" in radius:
            raise ValueError(f"{text!r} has more than one '~' ({_RANGE_HELP})")
        parts = center.split(":")
        if len(parts) > 2:
            raise ValueError(f"{text!r} has more than one ':' ({_RANGE_HELP})")
        try:
            start, end = kind(parts[0]), kind(parts[-1])
            r = kind(radius) if radius else kind(0)
        except ValueError:
            what = "an integer" if integer else "a number"
            raise ValueError(f"{text!r} is not {what} ({_RANGE_HELP})") from None
        if r < 0:
            raise ValueError(f"{text!r}: the radius after '~' must be >= 0")
        return cls(start, end, r, integer)

    def center(self, clock: float) -> float:
        clock = min(1.0, max(0.0, float(clock)))
        return self.start + clock * (self.end - self.start)

    def pick(self, clock: float, rng: np.random.Generator) -> Number:
        """One value for a sample at ``clock`` (numpy kinds)."""
        center = self.center(clock)
        value = rng.uniform(center - self.r, center + self.r) if self.r else center
        return int(round(value)) if self.integer else float(value)

    def check_within(self, name: str, low: Number, high: Number) -> None:
        """ValueError naming ``name`` unless every value it can take is in
        [low, high] (so a bad range fails at start-up, not mid-training)."""
        lowest = min(self.start, self.end) - self.r
        highest = max(self.start, self.end) + self.r
        if lowest < low or highest > high:
            raise ValueError(
                f"{name}: {self} reaches {lowest:g}..{highest:g}; it must stay "
                f"within {low:g}..{high:g}"
            )

    def __str__(self) -> str:
        text = str(self.start) if self.start == self.end else f"{self.start}:{self.end}"
        return text + (f"~{self.r}" if self.r else "")


def _int_range(text: str) -> ValueRange:
    return ValueRange.parse(text, integer=True)


def _float_range(text: str) -> ValueRange:
    return ValueRange.parse(text, integer=False)


def _probability(text: str) -> float:
    try:
        p = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{text!r} is not a probability in [0, 1]")
    return p


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None


def _source(text: str) -> str:
    if not text:
        raise ValueError("needs a path to a .csv or .sdb sample collection")
    return text


@dataclass(frozen=True)
class Augmentation:
    """One ``--augment`` entry. Subclasses name their kind, their domains (the first
    is the default) and how each parameter parses; their fields are the parameters."""

    p: float = 1.0
    domain: str = ""

    KIND: ClassVar[str] = ""
    DOMAINS: ClassVar[Tuple[str, ...]] = ()
    PARSERS: ClassVar[Dict[str, Any]] = {}

    def __post_init__(self) -> None:
        if not self.domain:
            object.__setattr__(self, "domain", self.DOMAINS[0])

    @property
    def spec(self) -> str:
        """The canonical ``kind[param=value,...]`` of this augmentation."""
        values = [
            f"{f.name}={getattr(self, f.name)}"
            for f in dataclasses.fields(self)
            if f.name != "domain" or len(self.DOMAINS) > 1
        ]
        return f"{self.KIND}[{','.join(values)}]"


def _vr(text: str, integer: bool = False) -> Any:
    """A default value range field."""
    return dataclasses.field(default_factory=lambda: ValueRange.parse(text, integer))


@dataclass(frozen=True)
class Overlay(Augmentation):
    """Noise or speech from ``source`` (CSV or .sdb) mixed in at ``snr`` dB."""

    source: str = ""
    snr: ValueRange = _vr("3.0")
    layers: ValueRange = _vr("1", integer=True)
    KIND = "overlay"
    DOMAINS = ("sample",)
    PARSERS = {"source": _source, "snr": _float_range, "layers": _int_range}


@dataclass(frozen=True)
class Reverb(Augmentation):
    """Simplified Schroeder reverberation: first reflection after ``delay`` ms,
    ``decay`` dB quieter per reflection."""

    delay: ValueRange = _vr("20.0")
    decay: ValueRange = _vr("10.0")
    KIND = "reverb"
    DOMAINS = ("sample",)
    PARSERS = {"delay": _float_range, "decay": _float_range}


@dataclass(frozen=True)
class Resample(Augmentation):
    """Down (or up) to ``rate`` Hz and back."""

    rate: ValueRange = _vr("8000", integer=True)
    KIND = "resample"
    DOMAINS = ("sample",)
    PARSERS = {"rate": _int_range}

    def __post_init__(self) -> None:
        super().__post_init__()
        self.rate.check_within("rate", 1000, 192000)  # Hz


@dataclass(frozen=True)
class Codec(Augmentation):
    """Opus-encode at ``bitrate`` bit/s and decode again."""

    bitrate: ValueRange = _vr("3200", integer=True)
    KIND = "codec"
    DOMAINS = ("sample",)
    PARSERS = {"bitrate": _int_range}

    def __post_init__(self) -> None:
        super().__post_init__()
        self.bitrate.check_within("bitrate", 500, 512000)  # Opus's bit/s range


@dataclass(frozen=True)
class Volume(Augmentation):
    """Level the peak to ``dbfs`` (3.0103: peaks at -1/1)."""

    dbfs: ValueRange = _vr("3.0103")
    KIND = "volume"
    DOMAINS = ("sample",)
    PARSERS = {"dbfs": _float_range}


@dataclass(frozen=True)
class Pitch(Augmentation):
    """Scale the spectrogram's frequency axis by ``pitch``."""

    pitch: ValueRange = dataclasses.field(
        default_factory=lambda: ValueRange(1.075, 1.075, 0.125)
    )
    KIND = "pitch"
    DOMAINS = ("spectrogram",)
    PARSERS = {"pitch": _float_range}


@dataclass(frozen=True)
class Tempo(Augmentation):
    """Scale the time axis by 1 / ``factor``, to at most ``max_time`` ms (if > 0)."""

    factor: ValueRange = _vr("1.1")
    max_time: float = -1.0
    KIND = "tempo"
    DOMAINS = ("spectrogram",)
    PARSERS = {"factor": _float_range, "max_time": _float}


@dataclass(frozen=True)
class Warp(Augmentation):
    """Non-linear warp: a grid of ``nt`` x ``nf`` points shifted by ``wt``/``wf``."""

    nt: ValueRange = _vr("1", integer=True)
    nf: ValueRange = _vr("1", integer=True)
    wt: ValueRange = _vr("0.1")
    wf: ValueRange = _vr("0.0")
    KIND = "warp"
    DOMAINS = ("spectrogram",)
    PARSERS = {"nt": _int_range, "nf": _int_range, "wt": _float_range,
               "wf": _float_range}  # fmt: skip


@dataclass(frozen=True)
class FrequencyMask(Augmentation):
    """SpecAugment: ``n`` bands of ``size`` bins set to zero."""

    n: ValueRange = _vr("3", integer=True)
    size: ValueRange = _vr("2", integer=True)
    KIND = "frequency_mask"
    DOMAINS = ("spectrogram", "features")
    PARSERS = {"n": _int_range, "size": _int_range}


@dataclass(frozen=True)
class TimeMask(Augmentation):
    """SpecAugment: ``n`` intervals of ``size`` ms set to zero."""

    n: ValueRange = _vr("3", integer=True)
    size: ValueRange = _vr("10.0")
    KIND = "time_mask"
    DOMAINS = ("spectrogram", "signal", "features")
    PARSERS = {"n": _int_range, "size": _float_range}


@dataclass(frozen=True)
class Dropout(Augmentation):
    """Each value set to zero with probability ``rate``."""

    rate: ValueRange = _vr("0.05")
    KIND = "dropout"
    DOMAINS = ("spectrogram", "signal", "features")
    PARSERS = {"rate": _float_range}


@dataclass(frozen=True)
class Add(Augmentation):
    """Gaussian noise of ``stddev`` added to every value."""

    stddev: ValueRange = _vr("5")
    KIND = "add"
    DOMAINS = ("features", "signal", "spectrogram")
    PARSERS = {"stddev": _float_range}


@dataclass(frozen=True)
class Multiply(Augmentation):
    """Every value multiplied by a Gaussian factor of mean 1 and ``stddev``."""

    stddev: ValueRange = _vr("5")
    KIND = "multiply"
    DOMAINS = ("features", "signal", "spectrogram")
    PARSERS = {"stddev": _float_range}


KINDS: Dict[str, type] = {
    cls.KIND: cls
    for cls in (Overlay, Reverb, Resample, Codec, Volume, Pitch, Tempo, Warp,
                FrequencyMask, TimeMask, Dropout, Add, Multiply)
}  # fmt: skip


def parse_augmentation(spec: str) -> Augmentation:
    """``kind[param=value,...]`` -> its Augmentation, or AugmentationError."""

    def bad(detail: str) -> AugmentationError:
        return AugmentationError(f"{FLAG} {spec!r}: {detail}")

    match = _SPEC.match(spec.strip())
    if not match:
        raise bad("write kind[param=value,...], e.g. 'reverb[p=0.1,delay=50~30]'")
    cls = KINDS.get(match.group("kind"))
    if cls is None:
        raise bad(f"unknown kind {match.group('kind')!r}; one of {', '.join(KINDS)}")
    known = ["p"] + list(cls.PARSERS) + (["domain"] if len(cls.DOMAINS) > 1 else [])
    values: Dict[str, Any] = {}
    for item in filter(None, (match.group("params") or "").split(",")):
        name, eq, text = (part.strip() for part in item.partition("="))
        if not eq:
            raise bad(f"{item.strip()!r} is not param=value")
        if name not in known:
            raise bad(
                f"{cls.KIND} has no parameter {name!r}; it has {', '.join(known)}"
            )
        if name in values:
            raise bad(f"{name!r} is given twice")
        values[name] = _parse_value(cls, name, text, bad)
    if cls is Overlay and "source" not in values:
        raise bad("overlay needs source=<.csv or .sdb of noise or speech>")
    try:
        return cls(**values)
    except ValueError as err:
        raise bad(str(err)) from None


def _parse_value(cls: type, name: str, text: str, bad: Any) -> Any:
    if name == "domain":
        if text not in cls.DOMAINS:
            raise bad(f"{cls.KIND} works in domain {' or '.join(cls.DOMAINS)}, "
                      f"not {text!r}")  # fmt: skip
        return text
    parser = _probability if name == "p" else cls.PARSERS[name]
    try:
        return parser(text)
    except ValueError as err:
        raise bad(f"{name}: {err}") from None


def parse_augmentations(specs: Optional[Sequence[str]]) -> Tuple[Augmentation, ...]:
    """All ``--augment`` values, in order (None or empty: none)."""
    return tuple(parse_augmentation(spec) for spec in specs or ())


def needs_audio(augmentations: Sequence[Augmentation]) -> Tuple[Augmentation, ...]:
    """Those that work before the features exist (all domains but ``features``)."""
    return tuple(a for a in augmentations if a.domain != "features")


@dataclass(frozen=True)
class AugmentPass:
    """The augmentation of one training epoch (``util.feeding.make_dataset``).

    ``clock_start``/``clock_end``: the clock of the epoch's first sample and of the
    one after its last (0..1 over the run's epochs). ``min_frames``: per sample, the
    fewest feature frames tempo may leave (CTC must still fit the transcript); None: 1.
    ``first_position``: plan positions already trained (a resumed epoch), so the
    remaining samples keep their clocks.
    """

    augmentations: Tuple[Augmentation, ...]
    seed: int
    epoch: int = 0
    clock_start: float = 0.0
    clock_end: float = 1.0
    min_frames: Optional[np.ndarray] = None
    first_position: int = 0

    def clocks(self, positions: np.ndarray, n_positions: int) -> np.ndarray:
        """float32 clock of each plan position (0 .. n_positions - 1)."""
        span = self.clock_end - self.clock_start
        fraction = positions / max(1, n_positions)
        return (self.clock_start + span * fraction).astype(np.float32)

    def rng(self, index: int, position: int) -> np.random.Generator:
        """The numpy generator of augmentation ``position`` on sample ``index``."""
        words = [self.seed & 0xFFFFFFFFFFFFFFFF, self.epoch, int(index), position]
        return np.random.default_rng(words)


def epoch_clocks(epoch: int, first: int, last: int) -> Tuple[float, float]:
    """(start, end) clock of ``epoch`` in a run training epochs [first, last)."""
    n = max(1, last - first)
    return (epoch - first) / n, (epoch - first + 1) / n
