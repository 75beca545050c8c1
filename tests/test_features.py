"""Tests for util.features: shapes, graph/tf.data use, and an independent reference.

The reference re-implements TF's AudioSpectrogram + Mfcc kernels in numpy
(tensorflow/core/kernels/spectrogram.cc, mfcc_mel_filterbank.cc, mfcc_dct.cc, mfcc.cc)
on top of python_speech_features' framing, in float64. Measured on LDC93S1 and a
440 Hz sine: max |TF - reference| ~= 2e-6 for coefficients up to ~66 in magnitude,
i.e. float32 rounding. The test allows MAX_ABS_DIFF = 2e-5 (10x headroom).
As a sanity check of the algorithm family, TF's MFCCs correlate with plain
``python_speech_features.mfcc`` (power spectrum, its own mel bands and orthonormal
DCT) at r ~= 0.98 (LDC93S1) / 0.9998 (sine) over all values, and a mean per-coefficient
r of ~= 0.97 over c0..c12; the test asserts > 0.9.
"""

from __future__ import annotations

import numpy as np
import pytest
import python_speech_features as psf
import tensorflow as tf
from python_speech_features import sigproc

from util.audio import read_audio
from util.config import FeatureConfig
from util.features import compute_mfcc, numpy_mfcc

CFG = FeatureConfig()
MAX_ABS_DIFF = 2e-5  # TF float32 vs float64 reference, MFCC units (log magnitude)
MIN_PSF_CORRELATION = 0.9
LOG_FLOOR = 1e-12  # mfcc.cc kFilterbankFloor


def _periodic_hann(n: int) -> np.ndarray:
    """spectrogram.cc GetPeriodicHann: 0.5 - 0.5 cos(2 pi i / n)."""
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)


def _freq_to_mel(freq_hz: np.ndarray) -> np.ndarray:
    """mfcc_mel_filterbank.cc FreqToMel: 1127 ln(1 + f / 700)."""
    return 1127.0 * np.log1p(np.asarray(freq_hz) / 700.0)


def _tf_mel_weights(n_bins: int, cfg: FeatureConfig) -> np.ndarray:
    """[n_bins, n_filterbank] matrix of MfccMelFilterbank::Initialize + Compute."""
    n_channels, lower, upper = (
        cfg.n_filterbank,
        cfg.lower_frequency_limit,
        cfg.upper_frequency_limit,
    )
    mel_low = _freq_to_mel(lower)
    spacing = (_freq_to_mel(upper) - mel_low) / (n_channels + 1)
    centers = mel_low + spacing * np.arange(1, n_channels + 2)
    hz_per_bin = 0.5 * cfg.audio_sample_rate / (n_bins - 1)
    start, end = int(1.5 + lower / hz_per_bin), int(upper / hz_per_bin)
    weights, channel = np.zeros((n_bins, n_channels)), 0
    for i in range(start, end + 1):
        mel = _freq_to_mel(i * hz_per_bin)
        while channel < n_channels and centers[channel] < mel:
            channel += 1
        band = channel - 1  # the bin's falling slope belongs to `band`
        if band >= 0:
            right = (centers[band + 1] - mel) / (centers[band + 1] - centers[band])
            weights[i, band] += right
        else:
            right = (centers[0] - mel) / (centers[0] - mel_low)
        if band + 1 < n_channels:
            weights[i, band + 1] += 1.0 - right  # rising slope of the next band
    return weights


def _tf_dct(n_in: int, n_out: int) -> np.ndarray:
    """[n_out, n_in] mfcc_dct.cc matrix: sqrt(2/N) cos(pi i (j + 0.5) / N)."""
    i, j = np.arange(n_out)[:, None], np.arange(n_in)[None, :]
    return np.sqrt(2.0 / n_in) * np.cos(np.pi * i * (j + 0.5) / n_in)


def _reference_mfcc(samples: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """[cfg.n_frames(n), n_mfcc] float64 MFCCs computed without TensorFlow."""
    n_fft = 1 << (cfg.win_len_samples - 1).bit_length()  # next power of two
    frames = sigproc.framesig(
        samples.astype(np.float64),
        cfg.win_len_samples,
        cfg.win_step_samples,
        winfunc=_periodic_hann,
    )[
        : cfg.n_frames(len(samples))
    ]  # psf zero-pads a last partial frame; TF does not
    # TF emits the power spectrum as float32, then takes its sqrt in double.
    power = (sigproc.magspec(frames, n_fft) ** 2).astype(np.float32).astype(np.float64)
    mel = np.sqrt(power) @ _tf_mel_weights(n_fft // 2 + 1, cfg)
    return np.log(np.maximum(mel, LOG_FLOOR)) @ _tf_dct(cfg.n_filterbank, cfg.n_mfcc).T


def _psf_mfcc(samples: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Plain python_speech_features MFCCs with parameters matched to ``cfg``."""
    return psf.mfcc(
        samples,
        samplerate=cfg.audio_sample_rate,
        winlen=cfg.feature_win_len / 1000,
        winstep=cfg.feature_win_step / 1000,
        numcep=cfg.n_mfcc,
        nfilt=cfg.n_filterbank,
        nfft=1 << (cfg.win_len_samples - 1).bit_length(),
        lowfreq=cfg.lower_frequency_limit,
        highfreq=cfg.upper_frequency_limit,
        preemph=0.0,
        ceplifter=0,
        appendEnergy=False,
        winfunc=_periodic_hann,
    )[: cfg.n_frames(len(samples))]


def _sine(n: int, freq_hz: float = 440.0) -> np.ndarray:
    t = np.arange(n) / CFG.audio_sample_rate
    return (0.5 * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


@pytest.fixture(scope="module")
def ldc93s1_samples(ldc93s1_wav) -> np.ndarray:
    return read_audio(ldc93s1_wav, CFG.audio_sample_rate)[0]


@pytest.mark.parametrize("n", [0, 1, 511, 512, 513, 831, 832, 833, 16000, 46797])
def test_shape_matches_config_frame_count(n):
    features, features_len = compute_mfcc(tf.constant(_sine(n)), CFG)
    assert features.dtype == tf.float32 and features_len.dtype == tf.int32
    assert features.shape == (CFG.n_frames(n), CFG.n_mfcc)
    assert int(features_len) == CFG.n_frames(n)
    assert np.all(np.isfinite(features.numpy()))


def test_numpy_wrapper_and_other_configs():
    samples = _sine(8000)
    assert numpy_mfcc(samples, CFG).shape == (CFG.n_frames(8000), 26)
    assert numpy_mfcc(samples.astype(np.float64), CFG).dtype == np.float32
    small = FeatureConfig(
        audio_sample_rate=8000, feature_win_len=25, feature_win_step=10, n_mfcc=13
    )
    assert numpy_mfcc(samples, small).shape == (small.n_frames(8000), 13)


def test_rejects_multichannel_input():
    with pytest.raises(ValueError, match="mono"):
        compute_mfcc(tf.zeros([100, 2]), CFG)


def test_tf_function_with_unknown_length():
    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def featurize(samples):
        return compute_mfcc(samples, CFG)

    concrete = featurize.get_concrete_function()
    assert concrete.structured_outputs[0].shape.as_list() == [None, CFG.n_mfcc]
    for n in (100, 4000, 16000):
        features, features_len = featurize(tf.constant(_sine(n)))
        np.testing.assert_array_equal(features.numpy(), numpy_mfcc(_sine(n), CFG))
        assert int(features_len) == CFG.n_frames(n)
    assert featurize.experimental_get_tracing_count() == 1  # no retracing


def test_inside_dataset_map():
    lengths = [300, 1000, 16000]
    dataset = tf.data.Dataset.from_generator(
        lambda: (_sine(n) for n in lengths),
        output_signature=tf.TensorSpec([None], tf.float32),
    ).map(lambda samples: compute_mfcc(samples, CFG))
    for n, (features, features_len) in zip(lengths, dataset):
        assert features.shape == (CFG.n_frames(n), CFG.n_mfcc)
        assert int(features_len) == CFG.n_frames(n)
        np.testing.assert_array_equal(features.numpy(), numpy_mfcc(_sine(n), CFG))


@pytest.mark.parametrize("signal", ["ldc93s1", "sine"])
def test_matches_independent_reference(signal, ldc93s1_samples):
    samples = ldc93s1_samples if signal == "ldc93s1" else _sine(16000, 440.0)
    features = numpy_mfcc(samples, CFG)
    reference = _reference_mfcc(samples, CFG)
    assert features.shape == reference.shape
    max_abs_diff = np.abs(features - reference).max()
    assert max_abs_diff < MAX_ABS_DIFF, f"max |TF - reference| = {max_abs_diff:.3g}"


@pytest.mark.parametrize("signal", ["ldc93s1", "sine"])
def test_correlates_with_python_speech_features(signal, ldc93s1_samples):
    samples = ldc93s1_samples if signal == "ldc93s1" else _sine(16000, 440.0)
    features, plain = numpy_mfcc(samples, CFG), _psf_mfcc(samples, CFG)
    assert features.shape == plain.shape
    overall = np.corrcoef(features.ravel(), plain.ravel())[0, 1]
    per_coefficient = [
        np.corrcoef(features[:, k], plain[:, k])[0, 1] for k in range(13)
    ]
    assert overall > MIN_PSF_CORRELATION
    assert np.mean(per_coefficient) > MIN_PSF_CORRELATION


def test_each_frame_depends_only_on_its_window(ldc93s1_samples):
    """No padding and no per-utterance normalisation: a prefix of the audio gives a
    prefix of the frames, and dropping one hop of audio drops one frame (what the
    streaming export and the frame arithmetic of util/samples.py rely on)."""
    full = numpy_mfcc(ldc93s1_samples, CFG)
    n = 10007
    head = numpy_mfcc(ldc93s1_samples[:n], CFG)
    assert len(head) == CFG.n_frames(n) < len(full)
    np.testing.assert_allclose(head, full[: len(head)], rtol=1e-5, atol=1e-4)
    shifted = numpy_mfcc(ldc93s1_samples[CFG.win_step_samples :], CFG)
    assert len(shifted) == len(full) - 1
    np.testing.assert_allclose(shifted, full[1:], rtol=1e-5, atol=1e-4)
