"""Sample-domain augmentations (DeepSpeech 0.9's overlay, reverb, resample, codec,
volume) on decoded float32 mono waveforms, in numpy.

``SampleAugmenter`` runs inside the training pipeline's ``tf.numpy_function`` (one call
per sample, right after decoding) and in ``bin/play.py`` / ``bin/data_set_tool.py``.
Levels follow 0.9's ``util/audio.py``: *peak* dBFS (``max_dbfs``), and each kind
keeps the sample's peak level as 0.9 did (``normalize_audio``), clipping to [-1, 1].

Libraries rather than hand-written DSP where one fits: ``soxr`` resamples (librosa's
default resampler, which 0.9 called), Opus goes through ``util.sample_collections``'
``encode_audio``/``decode_audio`` (opuslib, as 0.9's .sdb files). Reverb's feedback
combs stay 0.9's block loop (``feedback_comb``): ``scipy.signal.lfilter`` computes the
same recursion but in O(n * delay), 80x slower. audiomentations is not used: its kinds
differ from 0.9's in parameters and semantics (RMS SNR, impulse responses), and the
flag's meaning must stay 0.9's.
"""

from __future__ import annotations

import functools
import math
import os
from typing import Callable, Dict, List, Sequence

import numpy as np
import soxr
from absl import logging

from util import sample_collections
from util.audio import AudioError
from util.augmentations import (
    Augmentation,
    AugmentationError,
    Codec,
    Overlay,
    Resample,
    Reverb,
    Volume,
)
from util.samples import read_csv_rows

# Reverb: 0.9's reflection delays, relative to the first (primes against comb
# interference), and its minimal delay in samples.
REVERB_PRIMES = (17, 19, 23, 29, 31)
REVERB_MIN_DELAY = 16
NOISE_CACHE = 64  # decoded overlay files kept in memory per augmenter

Reader = Callable[[str, int], np.ndarray]  # (path or ref, sample rate) -> float32 [n]


def gain_db_to_ratio(gain_db: float) -> float:
    return math.pow(10.0, gain_db / 20.0)


def max_dbfs(audio: np.ndarray) -> float:
    """Peak level in dBFS, 0.9's ``max_dbfs`` (a full-scale sine: 0 dB)."""
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    return 20.0 * math.log10(max(1e-16, peak)) + 3.0103


def normalize_audio(audio: np.ndarray, dbfs: float = 3.0103) -> np.ndarray:
    """Scale to a peak of ``dbfs`` and clip to [-1, 1] (0.9's ``normalize_audio``)."""
    return np.clip(audio * gain_db_to_ratio(dbfs - max_dbfs(audio)), -1.0, 1.0)


class SampleAugmenter:
    """Applies the sample-domain entries of an augmentation list to waveforms.

    ``read`` decodes a file or reference to float32 at a rate (the pipeline's reader,
    so overlay sources may be anything a training CSV may hold). Overlay sources are
    listed when the augmenter is built: a missing or empty source fails here, at
    start-up, naming the spec.
    """

    def __init__(
        self, augmentations: Sequence[Augmentation], sample_rate: int, read: Reader
    ) -> None:
        self.entries = [
            (position, aug)
            for position, aug in enumerate(augmentations)
            if aug.domain == "sample"
        ]
        self.sample_rate = sample_rate
        self._sources: Dict[str, List[str]] = {
            aug.source: _source_refs(aug) for _, aug in self.entries
            if isinstance(aug, Overlay)
        }  # fmt: skip
        self._read = functools.lru_cache(NOISE_CACHE)(
            functools.partial(_read_source, read, sample_rate)
        )

    def __bool__(self) -> bool:
        return bool(self.entries)

    def apply(
        self,
        audio: np.ndarray,
        clock: float,
        rng_of: Callable[[int], np.random.Generator],
    ) -> np.ndarray:
        """float32 [n] -> float32 [n'] (only resample may change nothing in length;
        none does). ``rng_of(position)``: the generator of the list entry at that
        position (``AugmentPass.rng``)."""
        audio = np.asarray(audio, np.float32)
        if not len(audio):
            return audio
        for position, aug in self.entries:
            rng = rng_of(position)
            if rng.random() >= aug.p:
                continue
            audio = self._apply_one(aug, audio, clock, rng).astype(np.float32)
        return audio

    def _apply_one(
        self,
        aug: Augmentation,
        audio: np.ndarray,
        clock: float,
        rng: np.random.Generator,
    ) -> np.ndarray:
        if isinstance(aug, Overlay):
            return self._overlay(aug, audio, clock, rng)
        if isinstance(aug, Reverb):
            return reverb(audio, aug.delay.pick(clock, rng), aug.decay.pick(clock, rng),
                          self.sample_rate)  # fmt: skip
        if isinstance(aug, Resample):
            return resample(audio, self.sample_rate, aug.rate.pick(clock, rng))
        if isinstance(aug, Codec):
            return codec(audio, self.sample_rate, aug.bitrate.pick(clock, rng))
        if isinstance(aug, Volume):
            return normalize_audio(audio, aug.dbfs.pick(clock, rng))
        raise AssertionError(f"not a sample-domain kind: {aug.KIND}")

    def _overlay(
        self, aug: Overlay, audio: np.ndarray, clock: float, rng: np.random.Generator
    ) -> np.ndarray:
        """0.9's overlay: ``layers`` layers, each stitched from consecutive source
        samples (here from a random one at a random offset, so a sample's noise
        depends on the seed only), mixed at ``snr`` dB below the sample's peak."""
        refs = self._sources[aug.source]
        noise = np.zeros(len(audio), np.float64)
        for _ in range(max(0, aug.layers.pick(clock, rng))):
            j = int(rng.integers(len(refs)))
            chunk = self._read(refs[j])
            offset = int(rng.integers(len(chunk))) if len(chunk) else 0
            filled = 0
            for _attempt in range(len(refs) + len(audio)):
                piece = chunk[offset : offset + len(audio) - filled]
                noise[filled : filled + len(piece)] += piece
                filled += len(piece)
                if filled >= len(audio):
                    break
                j, offset = (j + 1) % len(refs), 0
                chunk = self._read(refs[j])
        if not np.any(noise):
            return audio
        snr_db = aug.snr.pick(clock, rng)
        level = max_dbfs(audio)
        gain = gain_db_to_ratio(level - max_dbfs(noise) - snr_db)
        return normalize_audio(audio + noise * gain, dbfs=level)


def reverb(
    audio: np.ndarray, delay_ms: float, decay_db: float, rate: int
) -> np.ndarray:
    """0.9's reverb: the sample plus five feedback combs ``y[n] = x[n] + g y[n-d]``,
    d = delay * prime / 17 ms, g = -decay dB, levelled back to the input's peak."""
    x = np.asarray(audio, np.float64)
    level = max_dbfs(x)
    g = gain_db_to_ratio(-decay_db)
    result = np.copy(x)
    for prime in REVERB_PRIMES:
        d = math.floor(delay_ms * prime / REVERB_PRIMES[0] * rate / 1000.0)
        result += feedback_comb(x, max(REVERB_MIN_DELAY, d), g)
    return normalize_audio(result, dbfs=level)


def feedback_comb(x: np.ndarray, delay: int, gain: float) -> np.ndarray:
    """``y[n] = x[n] + gain * y[n - delay]``, one block of ``delay`` samples at a time
    (0.9's loop): each block depends only on the one before, so a block is one numpy
    operation and the cost is O(n). (``scipy.signal.lfilter`` with this sparse
    feedback polynomial costs O(n * delay): 80x slower at 20 ms.)"""
    y = np.copy(x)
    for start in range(delay, len(y), delay):
        width = min(delay, len(y) - start)
        y[start : start + width] += gain * y[start - delay : start - delay + width]
    return y


def resample(audio: np.ndarray, rate: int, via_rate: int) -> np.ndarray:
    """Down (up) to ``via_rate`` and back with soxr, same length as the input."""
    if via_rate <= 0:
        raise AugmentationError(f"--augment resample: rate must be > 0, got {via_rate}")
    if via_rate == rate:
        return audio
    there = soxr.resample(audio, rate, via_rate)
    back = soxr.resample(there, via_rate, rate)[: len(audio)]
    return np.pad(back, (0, len(audio) - len(back)))


def codec(audio: np.ndarray, rate: int, bitrate: int) -> np.ndarray:
    """Opus round trip at ``bitrate`` bit/s (0.9's .sdb Opus framing), same length."""
    encoded = sample_collections.encode_audio(
        audio, rate, sample_collections.AUDIO_TYPE_OPUS, bitrate
    )
    decoded, _ = sample_collections.decode_audio(
        encoded, sample_collections.AUDIO_TYPE_OPUS, "codec augmentation"
    )
    decoded = np.asarray(decoded, np.float32).reshape(len(decoded), -1)[:, 0]
    return np.pad(decoded[: len(audio)], (0, max(0, len(audio) - len(decoded))))


def _read_source(read: Reader, sample_rate: int, ref: str) -> np.ndarray:
    """An overlay source sample, or no samples (skipped, with a warning naming it)
    when it does not decode: a bad noise file must not stop a training run."""
    try:
        return np.asarray(read(ref, sample_rate), np.float32)
    except AudioError as err:
        logging.warning("--augment overlay: skipping source sample %s: %s", ref, err)
        return np.zeros([0], np.float32)


def _source_refs(aug: Overlay) -> List[str]:
    """The samples of an overlay source: CSV rows (their transcripts unused) or the
    entries of a .sdb, as references the pipeline's reader decodes."""
    path = aug.source
    if not os.path.isfile(path):
        raise AugmentationError(
            f"--augment {aug.spec!r}: overlay source {path!r} is not a file "
            "(give a .csv or .sdb of noise or speech)"
        )
    if sample_collections.is_sdb(path):
        with sample_collections.SDBReader(path) as reader:
            refs = [sample_collections.sample_ref(path, i) for i in range(len(reader))]
    else:
        refs = [r.wav_filename for r in read_csv_rows(path, required=("wav_filename",))]
    if not refs:
        raise AugmentationError(
            f"--augment {aug.spec!r}: overlay source {path!r} holds no samples"
        )
    return refs
