"""PCM samples -> feature frames: the ONE feature implementation of the project.

``feeding.py`` calls :func:`compute_features` inside ``Dataset.map`` and ``export.py``
wraps the same function in the serving signature, so training and inference cannot drift
apart (doc/CONTRIBUTING.rst, rule 6). It is a deterministic function of (samples,
FeatureConfig) with no training-only behaviour. Training augmentation
(``util/augmentations.py``, called by ``feeding.py``) works between the two halves that
:func:`compute_features` composes: :func:`power_spectrogram` and
:func:`spectrogram_to_features`.

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

``--feature_type spectrogram`` (the DeepSpeech2 reference, :func:`compute_spectrogram`)
and ``fbank`` (the deep_speech_1 recipe, :func:`compute_fbank`) frame the audio the same
way (no padding, ``cfg.n_frames(n)`` frames) and take the DFT as a matrix product with
a constant ``[win_len, bins]`` cosine and sine table (window folded in): exact, cheap at
these sizes, and made of TFLite builtins only (GATHER, FULLY_CONNECTED, LOG), where
TFLite's RFFT2D wants power-of-two lengths and the spectrogram's is 320.
``--feature_normalization utterance`` then maps every bin to zero mean and unit variance
over the utterance (:func:`normalize_utterance`).

For mfcc only these two raw ops are used (not ``tf.signal``) because they are what
DeepSpeech trained with and what the TFLite converter maps to its
``AudioSpectrogram``/``Mfcc`` custom ops, so an exported model computes the very same
features.
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
    mfccs = _mfcc_of_power(spectrogram, cfg)  # [1, time, n_mfcc] float32
    features = tf.reshape(mfccs, [-1, cfg.n_mfcc])
    return features, tf.shape(features, out_type=tf.int32)[0]


def _mfcc_of_power(spectrogram: tf.Tensor, cfg: FeatureConfig) -> tf.Tensor:
    """``tf.raw_ops.Mfcc``: [1, T, bins] power -> [1, T, n_mfcc]."""
    return tf.raw_ops.Mfcc(
        spectrogram=spectrogram,
        sample_rate=tf.constant(cfg.audio_sample_rate, dtype=tf.int32),
        upper_frequency_limit=cfg.upper_frequency_limit,
        lower_frequency_limit=cfg.lower_frequency_limit,
        filterbank_channel_count=cfg.n_filterbank,
        dct_coefficient_count=cfg.n_mfcc,
    )


def numpy_mfcc(samples: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Eager convenience wrapper: ``np.ndarray [n]`` -> ``[cfg.n_frames(n), n_input]``
    of ``cfg.feature_type`` (the name is historical: any feature type).

    For tools and tests; pipelines call :func:`compute_features` on tensors.
    """
    features, _ = compute_features(tf.constant(np.asarray(samples, np.float32)), cfg)
    return features.numpy()


# log(power + SPECTROGRAM_EPS): the DeepSpeech2 featurizers' floor (PaddlePaddle DS2).
SPECTROGRAM_EPS = 1e-14
# python_speech_features replaces zero mel energies by numpy's float64 epsilon.
FBANK_FLOOR = float(np.finfo(np.float64).eps)
# (x - mean) / (std + NORMALIZATION_EPS): tensorflow/models deep_speech dataset.py.
NORMALIZATION_EPS = 1e-6


def compute_features(
    samples: tf.Tensor, cfg: FeatureConfig, history: tf.Tensor | None = None
) -> Tuple[tf.Tensor, tf.Tensor]:
    """Feature frames of ``cfg.feature_type``, normalised per ``cfg``.

    samples : float32 [n] in [-1, 1] at ``cfg.audio_sample_rate``.
    history : float32 [cfg.history_samples], the audio just before ``samples`` (a
        streaming client's previous chunk; zeros, i.e. the start of a file, if None).
    returns : (features float32 [cfg.n_frames(n), cfg.n_input], features_len int32).
    """
    if cfg.feature_type == "mfcc":  # the raw ops, whole (TFLite's custom ops)
        features = compute_mfcc(samples, cfg)[0]
        if cfg.feature_normalization == "utterance":
            features = normalize_utterance(features)
    else:
        features = spectrogram_to_features(
            power_spectrogram(samples, cfg, history), cfg
        )
    return features, tf.shape(features, out_type=tf.int32)[0]


def power_spectrogram(
    samples: tf.Tensor, cfg: FeatureConfig, history: tf.Tensor | None = None
) -> tf.Tensor:
    """The power spectrum each feature type starts from (DeepSpeech 0.9's
    "spectrogram" augmentation domain): float32 [n] -> [cfg.n_frames(n), bins].

    mfcc: ``AudioSpectrogram`` (magnitude squared, fft_len // 2 + 1 bins);
    spectrogram: ``|DFT(w x)|^2``; fbank: the pre-emphasised ``|rfft|^2 / fft_len``.
    ``spectrogram_to_features(power_spectrogram(x))`` equals ``compute_features(x)``.
    """
    if cfg.feature_type == "mfcc":
        return tf.raw_ops.AudioSpectrogram(
            input=tf.expand_dims(_as_mono(samples), -1),
            window_size=cfg.win_len_samples,
            stride=cfg.win_step_samples,
            magnitude_squared=True,
        )[0]
    if cfg.feature_type == "spectrogram":
        frames = _frames(_as_mono(samples), cfg.win_len_samples, cfg.win_step_samples)
        window = np.hanning(cfg.win_len_samples + 1)[:-1]  # periodic Hann
        return _power_spectrum(frames, window, cfg.fft_len)
    return _fbank_power(samples, cfg, history)


def spectrogram_to_features(power: tf.Tensor, cfg: FeatureConfig) -> tf.Tensor:
    """float32 [T, bins] power spectrum -> [T, cfg.n_input] features, normalised per
    ``cfg`` (the rest of :func:`compute_features`)."""
    if cfg.feature_type == "mfcc":
        features = tf.reshape(_mfcc_of_power(power[tf.newaxis], cfg), [-1, cfg.n_mfcc])
    elif cfg.feature_type == "spectrogram":
        features = tf.math.log(power + SPECTROGRAM_EPS)
    else:
        mel = tf.matmul(power, tf.constant(fbank_filters(cfg).T, tf.float32))
        features = tf.math.log(tf.maximum(mel, FBANK_FLOOR))
    if cfg.feature_normalization == "utterance":
        features = normalize_utterance(features)
    return features


def normalize_utterance(features: tf.Tensor) -> tf.Tensor:
    """Per-bin zero mean, unit variance over the frames of one utterance.

    features : float32 [T, F] -> [T, F]; as the reference's
    ``_normalize_audio_feature``: ``(x - mean) / (sqrt(var) + 1e-6)``. No frames: no-op.
    The statistics are taken relative to the first frame, so a constant bin (an empty
    mel filter of fbank, floored to the same log value in every frame) becomes exactly
    0 instead of float32 rounding noise divided by 1e-6.
    """
    shifted = features - features[:1]
    mean = tf.reduce_mean(shifted, axis=0, keepdims=True)
    centered = shifted - mean
    var = tf.reduce_mean(tf.square(centered), axis=0, keepdims=True)
    return centered / (tf.sqrt(var) + NORMALIZATION_EPS)


def compute_spectrogram(samples: tf.Tensor, cfg: FeatureConfig) -> tf.Tensor:
    """Log power spectrum: periodic Hann window of ``cfg.win_len_samples``, DFT of the
    same length (16 kHz / 20 ms: 320 points, 161 bins), hop ``cfg.win_step_samples``.

    samples : float32 [n] -> float32 [cfg.n_frames(n), cfg.n_input],
    ``log(|DFT(w x)|^2 + 1e-14)``.
    """
    return tf.math.log(power_spectrogram(samples, cfg) + SPECTROGRAM_EPS)


def compute_fbank(
    samples: tf.Tensor, cfg: FeatureConfig, history: tf.Tensor | None = None
) -> tf.Tensor:
    """Log mel filterbank energies as ``python_speech_features.logfbank``.

    Pre-emphasis ``y[i] = x[i] - cfg.preemphasis * x[i-1]`` (x[-1] from ``history``,
    else 0), rectangular ``cfg.win_len_samples`` windows (its default ``winfunc``)
    every ``cfg.win_step_samples``, power spectrum ``|rfft(frame, fft_len)|^2 /
    fft_len``, ``cfg.n_filterbank`` triangular mel filters from 0 Hz to Nyquist built
    as its ``get_filterbanks``, zero energies floored to float64 epsilon, natural log.
    Frames: ``cfg.n_frames(n)`` (python_speech_features pads one more partial frame).

    samples : float32 [n] -> float32 [cfg.n_frames(n), cfg.n_filterbank].
    """
    mel = tf.matmul(
        _fbank_power(samples, cfg, history),
        tf.constant(fbank_filters(cfg).T, tf.float32),
    )
    return tf.math.log(tf.maximum(mel, FBANK_FLOOR))


def _fbank_power(
    samples: tf.Tensor, cfg: FeatureConfig, history: tf.Tensor | None
) -> tf.Tensor:
    """The pre-emphasised power spectrum of :func:`compute_fbank`: [n] -> [T, bins]."""
    samples = _as_mono(samples)
    if history is None:
        history = tf.zeros([cfg.history_samples], tf.float32)
    padded = tf.concat([tf.reshape(history, [cfg.history_samples]), samples], 0)
    win, step = cfg.win_len_samples, cfg.win_step_samples
    # Each frame plus the sample before it, so pre-emphasis needs no global pass and a
    # chunk's frames equal the whole file's (the streaming client's contract).
    frames = _frames(padded, win + cfg.history_samples, step)
    if cfg.history_samples:
        frames = frames[:, 1:] - cfg.preemphasis * frames[:, :-1]
    return _power_spectrum(frames, np.ones(win), cfg.fft_len) / cfg.fft_len


def fbank_filters(cfg: FeatureConfig) -> np.ndarray:
    """float64 [n_filterbank, fft_len // 2 + 1]: python_speech_features'
    ``get_filterbanks(nfilt, nfft, samplerate, 0, samplerate / 2)``, same formula."""

    def hz_to_mel(hz):
        return 2595 * np.log10(1 + hz / 700.0)

    def mel_to_hz(mel):
        return 700 * (10 ** (mel / 2595.0) - 1)

    n_filters, n_fft = cfg.n_filterbank, cfg.fft_len
    mels = np.linspace(
        hz_to_mel(0), hz_to_mel(cfg.audio_sample_rate / 2), n_filters + 2
    )
    bins = np.floor((n_fft + 1) * mel_to_hz(mels) / cfg.audio_sample_rate)
    filters = np.zeros([n_filters, n_fft // 2 + 1])
    for j in range(n_filters):
        left, centre, right = int(bins[j]), int(bins[j + 1]), int(bins[j + 2])
        for i in range(left, centre):
            filters[j, i] = (i - bins[j]) / (bins[j + 1] - bins[j])
        for i in range(centre, right):
            filters[j, i] = (bins[j + 2] - i) / (bins[j + 2] - bins[j + 1])
    return filters


def _as_mono(samples: tf.Tensor) -> tf.Tensor:
    samples = tf.convert_to_tensor(samples, dtype=tf.float32)
    if samples.shape.rank is not None and samples.shape.rank != 1:
        raise ValueError(f"samples must be mono [n], got shape {samples.shape}")
    return samples


def _frames(samples: tf.Tensor, length: int, step: int) -> tf.Tensor:
    """float32 [n] -> [max(0, 1 + (n - length) // step), length], no padding.

    A GATHER of an index table (a TFLite builtin; tf.signal.frame is not one).
    """
    n_frames = tf.maximum(0, 1 + (tf.shape(samples)[0] - length) // step)
    starts = tf.range(n_frames) * step
    return tf.gather(samples, starts[:, tf.newaxis] + tf.range(length)[tf.newaxis])


def _power_spectrum(frames: tf.Tensor, window: np.ndarray, n_fft: int) -> tf.Tensor:
    """|DFT_n_fft(window * frame)|^2 of each row: [T, len(window)] -> [T, n_fft//2+1].

    The DFT of a zero-padded frame is a product with a [len(window), bins] table;
    the window is folded into it. Computed in float64, stored as float32.
    """
    n = np.arange(len(window))[:, np.newaxis]
    k = np.arange(n_fft // 2 + 1)[np.newaxis]
    angle = 2 * np.pi * n * k / n_fft
    table = np.concatenate(
        [window[:, np.newaxis] * np.cos(angle), window[:, np.newaxis] * np.sin(angle)],
        1,
    )
    spectrum = tf.matmul(frames, tf.constant(table, tf.float32))  # [T, 2 * bins]
    real, imag = tf.split(spectrum, 2, axis=1)
    return real * real + imag * imag
