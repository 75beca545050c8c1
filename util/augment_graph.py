"""Graph-domain augmentations (signal, spectrogram, features) as TF ops in tf.data.

``featurize`` is the training pipeline's path from a waveform tensor to augmented
features: signal-domain kinds on the waveform, ``util.features.power_spectrogram``,
spectrogram-domain kinds, ``util.features.spectrogram_to_features``, features-domain
kinds. Without augmentations it computes exactly ``util.features.compute_features``.

Tensors: signal float32 [n]; spectrogram float32 [T, bins] (power); features float32
[T, n_input]. Every random draw is a stateless op seeded from the sample's seed
([2] int64, ``sample_seed``), folded with the entry's position and a draw number,
so results do not depend on thread scheduling.

Semantics are DeepSpeech 0.9's ``util/augmentations.py`` with these deliberate
differences: each *sample* gets its own draws (0.9 seeded its graph kinds with the
clock only, so all samples of a batch got the same masks); dropout zeroes a value with
probability ``rate`` as 0.9's documentation says (0.9's code ``sign(floor(u + rate))``
*kept* values with probability ``rate``); warp draws time and frequency shifts
independently (0.9 drew both from one seed); tempo keeps at least the frames CTC needs
for the transcript through the model's time stride (0.9: the transcript's length);
pitch/tempo resize with TF2's half-pixel bilinear (TF1's ``resize_bilinear`` was not);
the power spectrum is floored at 0 after the spectrogram-domain kinds (add or multiply
there made 0.9's log of it NaN).
The dense warp is written here (bilinear sampling, as tensorflow_addons'
``dense_image_warp``, which is archived and has no build for this TensorFlow).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from util.augment_sample import SampleAugmenter
from util.augmentations import (
    Add,
    Augmentation,
    AugmentPass,
    Dropout,
    FrequencyMask,
    Multiply,
    Pitch,
    Tempo,
    TimeMask,
    ValueRange,
    Warp,
)
from util.config import FeatureConfig
from util.features import compute_features, power_spectrogram, spectrogram_to_features


@dataclass(frozen=True)
class _Context:
    units_per_ms: Dict[str, float]  # time-axis units per millisecond, per domain
    min_frames: tf.Tensor  # int32 scalar: fewest frames tempo may leave


def sample_seed(seed: int, epoch: int, index: tf.Tensor) -> tf.Tensor:
    """int64 [2] seed of sample ``index`` in ``epoch`` under ``--random_seed``."""
    index = tf.cast(index, tf.int64)
    return tf.stack(
        [tf.constant(seed, tf.int64), tf.constant(epoch, tf.int64) * 2**32 + index]
    )


def featurize(
    audio: tf.Tensor,
    cfg: FeatureConfig,
    augmentations: Sequence[Augmentation],
    seed: tf.Tensor,
    clock: tf.Tensor,
    min_frames: Optional[tf.Tensor] = None,
) -> Tuple[tf.Tensor, tf.Tensor]:
    """Augmented features of a waveform: (float32 [T', n_input], int32 T')."""
    ctx = _context(cfg, min_frames)
    audio = apply_domain("signal", audio, augmentations, seed, clock, ctx)
    if any(a.domain == "spectrogram" for a in augmentations):
        power = power_spectrogram(audio, cfg)
        power = apply_domain("spectrogram", power, augmentations, seed, clock, ctx)
        power = tf.maximum(power, 0.0)  # add/multiply may go negative: log/sqrt NaN
        features = spectrogram_to_features(power, cfg)
    else:
        features = compute_features(audio, cfg)[0]
    features = apply_domain("features", features, augmentations, seed, clock, ctx)
    features = tf.ensure_shape(features, [None, cfg.n_input])
    return features, tf.shape(features, out_type=tf.int32)[0]


def augment_features(
    features: tf.Tensor,
    cfg: FeatureConfig,
    augmentations: Sequence[Augmentation],
    seed: tf.Tensor,
    clock: tf.Tensor,
) -> tf.Tensor:
    """Only the features-domain kinds (features read from ``--feature_cache``)."""
    ctx = _context(cfg, None)
    return apply_domain("features", features, augmentations, seed, clock, ctx)


def _context(cfg: FeatureConfig, min_frames: Optional[tf.Tensor]) -> _Context:
    frames_per_ms = 1.0 / cfg.feature_win_step
    return _Context(
        units_per_ms={
            "signal": cfg.audio_sample_rate / 1000.0,
            "spectrogram": frames_per_ms,
            "features": frames_per_ms,
        },
        min_frames=tf.constant(1, tf.int32) if min_frames is None else min_frames,
    )


def apply_domain(
    domain: str,
    tensor: tf.Tensor,
    augmentations: Sequence[Augmentation],
    seed: tf.Tensor,
    clock: tf.Tensor,
    ctx: _Context,
) -> tf.Tensor:
    """The entries of ``domain``, in list order, each with probability ``p``."""
    for position, aug in enumerate(augmentations):
        if aug.domain != domain:
            continue
        entry_seed = _fold(seed, position)
        draw = tf.random.stateless_uniform([], seed=_fold(entry_seed, 0))
        run = tf.logical_and(draw < aug.p, tf.size(tensor) > 0)
        kind = _KINDS[type(aug)]
        tensor = tf.cond(
            run,
            lambda: kind(aug, tensor, _fold(entry_seed, 1), clock, ctx),
            lambda: tensor,
        )
    return tensor


def _fold(seed: tf.Tensor, data: int | tf.Tensor) -> tf.Tensor:
    return tf.random.experimental.stateless_fold_in(seed, data)


def pick(value: ValueRange, clock: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """0.9's ``tf_pick_value_from_range``: float32 scalar, int32 when ``integer``."""
    clock = tf.clip_by_value(tf.cast(clock, tf.float32), 0.0, 1.0)
    center = float(value.start) + clock * float(value.end - value.start)
    if value.r:
        center = tf.random.stateless_uniform(
            [], seed, center - float(value.r), center + float(value.r)
        )
    return tf.cast(tf.round(center), tf.int32) if value.integer else center


def _pitch(aug: Pitch, spec: tf.Tensor, seed: tf.Tensor, clock, ctx) -> tf.Tensor:
    """Stretch the frequency axis by ``pitch``, cropped or zero-padded back."""
    n_time, n_bins = tf.shape(spec)[0], tf.shape(spec)[1]
    factor = tf.maximum(pick(aug.pitch, clock, seed), 1e-3)
    new_bins = tf.maximum(1, tf.cast(tf.cast(n_bins, tf.float32) * factor, tf.int32))
    resized = tf.image.resize(spec[..., tf.newaxis], [n_time, new_bins])[..., 0]
    resized = resized[:, :n_bins]
    return tf.pad(resized, [[0, 0], [0, n_bins - tf.shape(resized)[1]]])


def _tempo(aug: Tempo, spec: tf.Tensor, seed: tf.Tensor, clock, ctx) -> tf.Tensor:
    """Stretch the time axis by 1 / ``factor`` (at least ctx.min_frames frames,
    at most ``max_time`` ms when > 0)."""
    n_time, n_bins = tf.shape(spec)[0], tf.shape(spec)[1]
    factor = tf.maximum(pick(aug.factor, clock, seed), 1e-3)
    new_time = tf.cast(tf.cast(n_time, tf.float32) / factor, tf.int32)
    new_time = tf.maximum(new_time, ctx.min_frames)
    if aug.max_time > 0:
        limit = int(aug.max_time * ctx.units_per_ms["spectrogram"])
        new_time = tf.minimum(new_time, limit)
    new_time = tf.maximum(new_time, 1)
    return tf.image.resize(spec[..., tf.newaxis], [new_time, n_bins])[..., 0]


def _warp(aug: Warp, spec: tf.Tensor, seed: tf.Tensor, clock, ctx) -> tf.Tensor:
    """0.9's warp: random shifts of an (nt + 2) x (nf + 2) grid (zero at the edges),
    interpolated bicubically to a dense flow, applied by bilinear sampling."""
    n_time, n_bins = tf.shape(spec)[0], tf.shape(spec)[1]
    num_t = tf.maximum(0, pick(aug.nt, clock, _fold(seed, 0)))
    num_f = tf.maximum(0, pick(aug.nf, clock, _fold(seed, 1)))

    def flows(n: tf.Tensor, size: tf.Tensor, warp: ValueRange, k: int) -> tf.Tensor:
        stddev = pick(warp, clock, _fold(seed, k)) * tf.cast(size, tf.float32)
        stddev = stddev / tf.cast(2 * (n + 1), tf.float32)
        shifts = tf.random.stateless_normal([num_t, num_f], _fold(seed, k + 1)) * stddev
        return tf.pad(shifts, [[1, 1], [1, 1]])  # no flow at the edges

    grid = tf.stack(
        [flows(num_t, n_time, aug.wt, 2), flows(num_f, n_bins, aug.wf, 4)], axis=2
    )
    flow = tf.image.resize(grid[tf.newaxis], [n_time, n_bins], method="bicubic")[0]
    return dense_warp(spec, flow)


def dense_warp(image: tf.Tensor, flow: tf.Tensor) -> tf.Tensor:
    """out[t, f] = image at (t - flow[t, f, 0], f - flow[t, f, 1]), bilinear, clamped
    to the edges. image float32 [T, F], flow float32 [T, F, 2] -> [T, F]."""
    n_time, n_bins = tf.shape(image)[0], tf.shape(image)[1]
    grid_t, grid_f = tf.meshgrid(
        tf.range(n_time, dtype=tf.float32), tf.range(n_bins, dtype=tf.float32),
        indexing="ij",
    )  # fmt: skip

    def corners(query: tf.Tensor, size: tf.Tensor):
        size_f = tf.cast(size, tf.float32)
        low = tf.clip_by_value(tf.floor(query), 0.0, tf.maximum(size_f - 2.0, 0.0))
        alpha = tf.clip_by_value(query - low, 0.0, 1.0)
        low_i = tf.cast(low, tf.int32)
        return low_i, tf.minimum(low_i + 1, size - 1), alpha

    t0, t1, at = corners(grid_t - flow[..., 0], n_time)
    f0, f1, af = corners(grid_f - flow[..., 1], n_bins)
    flat = tf.reshape(image, [-1])

    def value(t: tf.Tensor, f: tf.Tensor) -> tf.Tensor:
        return tf.gather(flat, t * n_bins + f)

    top = value(t0, f0) + af * (value(t0, f1) - value(t0, f0))
    bottom = value(t1, f0) + af * (value(t1, f1) - value(t1, f0))
    return top + at * (bottom - top)


def _mask(n_masks, size_of, length: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """float32 [length]: ones with ``n_masks`` random zero intervals; ``size_of(seed)``
    gives an interval's int32 size (clamped to [1, length - 1])."""

    def body(i: tf.Tensor, keep: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
        mask_seed = _fold(seed, i + 2)
        size = tf.clip_by_value(
            size_of(_fold(mask_seed, 0)), 1, tf.maximum(1, length - 1)
        )
        start = tf.random.stateless_uniform(
            [], _fold(mask_seed, 1), minval=0, maxval=tf.maximum(1, length - size),
            dtype=tf.int32,
        )  # fmt: skip
        positions = tf.range(length)
        outside = tf.logical_or(positions < start, positions >= start + size)
        return i + 1, keep * tf.cast(outside, tf.float32)

    ones = tf.ones([length], tf.float32)
    return tf.while_loop(lambda i, _: i < n_masks, body, (0, ones))[1]


def _frequency_mask(aug: FrequencyMask, x: tf.Tensor, seed, clock, ctx) -> tf.Tensor:
    n_masks = pick(aug.n, clock, _fold(seed, 0))
    keep = _mask(n_masks, lambda s: pick(aug.size, clock, s), tf.shape(x)[1], seed)
    return x * keep[tf.newaxis, :]


def _time_mask(aug: TimeMask, x: tf.Tensor, seed, clock, ctx) -> tf.Tensor:
    units = ctx.units_per_ms[aug.domain]

    def size_of(s: tf.Tensor) -> tf.Tensor:
        return tf.cast(pick(aug.size, clock, s) * units, tf.int32)

    keep = _mask(pick(aug.n, clock, _fold(seed, 0)), size_of, tf.shape(x)[0], seed)
    return x * (keep if aug.domain == "signal" else keep[:, tf.newaxis])


def _dropout(aug: Dropout, x: tf.Tensor, seed, clock, ctx) -> tf.Tensor:
    rate = tf.maximum(0.0, pick(aug.rate, clock, _fold(seed, 0)))
    draws = tf.random.stateless_uniform(tf.shape(x), _fold(seed, 1))
    return x * tf.cast(draws >= rate, tf.float32)


def _add(aug: Add, x: tf.Tensor, seed, clock, ctx) -> tf.Tensor:
    stddev = pick(aug.stddev, clock, _fold(seed, 0))
    return x + tf.random.stateless_normal(tf.shape(x), _fold(seed, 1)) * stddev


def _multiply(aug: Multiply, x: tf.Tensor, seed, clock, ctx) -> tf.Tensor:
    stddev = pick(aug.stddev, clock, _fold(seed, 0))
    return x * (1.0 + tf.random.stateless_normal(tf.shape(x), _fold(seed, 1)) * stddev)


_KINDS: Dict[type, Callable[..., tf.Tensor]] = {
    Pitch: _pitch,
    Tempo: _tempo,
    Warp: _warp,
    FrequencyMask: _frequency_mask,
    TimeMask: _time_mask,
    Dropout: _dropout,
    Add: _add,
    Multiply: _multiply,
}


class WaveformAugmenter:
    """The sample- and signal-domain kinds of a list, on waveforms outside training
    (``bin/play.py``, ``bin/data_set_tool.py --augment``): for the sample of ``index``
    at ``clock`` it does what training's first epoch does under the same ``seed``.
    ``unheard``: the kinds it leaves out (spectrogram and features domains).
    """

    def __init__(
        self,
        augmentations: Sequence[Augmentation],
        sample_rate: int,
        read: Callable[[str, int], np.ndarray],
        seed: int,
    ) -> None:
        self.augmentations = tuple(augmentations)
        self.pass_ = AugmentPass(self.augmentations, seed)
        self.sample_rate = sample_rate
        self.sampler = SampleAugmenter(self.augmentations, sample_rate, read)
        self.unheard = tuple(
            a for a in self.augmentations if a.domain in ("spectrogram", "features")
        )

    def __call__(self, audio: np.ndarray, index: int, clock: float) -> np.ndarray:
        """float32 [n] -> float32 [n] in [-1, 1]."""
        rng_of = functools.partial(self.pass_.rng, index)
        audio = self.sampler.apply(np.asarray(audio, np.float32), clock, rng_of)
        if any(a.domain == "signal" for a in self.augmentations):
            ctx = _Context({"signal": self.sample_rate / 1000.0}, tf.constant(1))
            seed = sample_seed(self.pass_.seed, 0, tf.constant(index))
            audio = apply_domain(
                "signal", tf.constant(audio), self.augmentations, seed,
                tf.constant(clock, tf.float32), ctx,
            ).numpy()  # fmt: skip
        return np.clip(audio, -1.0, 1.0).astype(np.float32)
