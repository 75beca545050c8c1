"""PCM samples -> MFCC frames: the ONE feature implementation of the project.

``feeding.py`` calls :func:`compute_mfcc` inside ``Dataset.map`` and ``export.py`` wraps
the same function in the serving signature, so training and inference cannot drift
apart (doc/CONTRIBUTING.rst, rule 6). It is a deterministic function of (samples,
FeatureConfig) with no training-only behaviour (there is no data augmentation yet; it
would be applied in ``feeding.py``, never here).

Feature contract (DeepSpeech 0.9 ``samples_to_mfccs``, bit for bit):

* input ``samples``: float32 ``[n]`` in [-1, 1] at ``cfg.audio_sample_rate`` Hz;
* ``tf.raw_ops.AudioSpectrogram``: periodic Hann window of ``cfg.win_len_samples``
  (512 at 16 kHz / 32 ms), hop ``cfg.win_step_samples`` (320 / 20 ms), FFT length =
  next power of two >= window, squared magnitude, no padding, so the frame count is
  ``n_frames == cfg.n_frames(n) == 1 + (n - win_len) // win_step`` (0 when
  ``n < win_len``);
* ``tf.raw_ops.Mfcc``: ``cfg.n_filterbank`` (40) triangular mel bands between
  ``cfg.lower_frequency_limit`` (20 Hz) and ``cfg.upper_frequency_limit`` (Nyquist),
  weighting the *magnitude* (TF takes the sqrt of the power spectrum), natural log
  floored at 1e-12, then a DCT-II with ``sqrt(2 / n_filterbank)`` scaling, keeping
  ``cfg.n_mfcc`` (26) coefficients;
* output ``features``: float32 ``[n_frames, cfg.n_mfcc]``; ``features_len``: int32
  scalar ``== n_frames``. No normalisation: the model sees the raw MFCCs, as in
  DeepSpeech.

Only these two raw ops are used (not ``tf.signal``) because they are what DeepSpeech
trained with and what the TFLite converter maps to its ``AudioSpectrogram``/``Mfcc``
custom ops, so an exported model computes the very same features.
``tests/test_features.py`` checks them against an independent numpy implementation.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np
import tensorflow as tf

from util.config import FeatureConfig


def compute_mfcc(samples: tf.Tensor, cfg: FeatureConfig) -> Tuple[tf.Tensor, tf.Tensor]:
    """MFCC frames of mono PCM, exactly as DeepSpeech 0.9 computed them.

    Works eagerly, inside ``tf.function`` with an unknown length
    (``tf.TensorSpec([None], tf.float32)``) and inside ``Dataset.map``.

    Args:
        samples: ``tf.Tensor [n] float32`` in [-1, 1] at ``cfg.audio_sample_rate``.
        cfg: the feature section of the config.

    Returns:
        ``(features, features_len)``: ``features`` is ``tf.Tensor [time, cfg.n_mfcc]
        float32`` with ``time == cfg.n_frames(n)``, ``features_len`` an int32 scalar
        equal to ``time``. Audio shorter than one window gives ``[0, n_mfcc]`` and 0.
    """
    samples = tf.convert_to_tensor(samples, dtype=tf.float32)
    if samples.shape.rank is not None and samples.shape.rank != 1:
        raise ValueError(f"samples must be mono [n], got shape {samples.shape}")
    spectrogram = tf.raw_ops.AudioSpectrogram(
        input=tf.expand_dims(samples, -1),  # [n, channels=1]
        window_size=cfg.win_len_samples,
        stride=cfg.win_step_samples,
        magnitude_squared=True,
    )  # [1, time, fft_len // 2 + 1] float32
    mfccs = tf.raw_ops.Mfcc(
        spectrogram=spectrogram,
        sample_rate=tf.constant(cfg.audio_sample_rate, dtype=tf.int32),
        upper_frequency_limit=cfg.upper_frequency_limit,
        lower_frequency_limit=cfg.lower_frequency_limit,
        filterbank_channel_count=cfg.n_filterbank,
        dct_coefficient_count=cfg.n_mfcc,
    )  # [1, time, n_mfcc] float32
    features = tf.reshape(mfccs, [-1, cfg.n_mfcc])
    return features, tf.shape(features, out_type=tf.int32)[0]


def numpy_mfcc(samples: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Eager convenience wrapper: ``np.ndarray [n]`` -> ``[cfg.n_frames(n), n_mfcc]``.

    For tools and tests; pipelines call :func:`compute_mfcc` on tensors.
    """
    features, _ = compute_mfcc(tf.constant(np.asarray(samples, np.float32)), cfg)
    return features.numpy()
