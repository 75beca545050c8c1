"""--feature_type spectrogram|fbank and --feature_normalization utterance.

References, independent of util/features.py:

* spectrogram: numpy's ``rfft`` of each periodic-Hann-windowed 320-sample frame,
  ``log(|X|^2 + 1e-14)``, in float64. Measured on LDC93S1 (log power units): max
  |TF - numpy| = 1.5e-4 over the 99.9 % of bins with log power > -20, 1.9e-3 over all
  (the quietest bins, ~1e-11 of the peak power, suffer float32 cancellation in the DFT
  product); the power itself is within 3.5e-7 of the peak. The test allows
  SPEC_MAX_ABS_DIFF = 5e-4 above -20 and 1e-2 everywhere.
* fbank: ``python_speech_features.logfbank(nfilt=80, winlen=0.02, winstep=0.01,
  nfft=512, preemph=0.97)`` on its first ``cfg.n_frames(n)`` frames (it pads one more
  partial frame). Measured: max |TF - psf| = 9.7e-4 (float32 DFT; values span -36 to
  -5); allowed FBANK_MAX_ABS_DIFF = 5e-3 (log energy units).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import python_speech_features as psf
import tensorflow as tf

from util.audio import read_audio
from util.config import Config, FeatureConfig
from util.features import compute_features, normalize_utterance, numpy_mfcc

SPEC = FeatureConfig.of_type("spectrogram")
FBANK = FeatureConfig.of_type("fbank")
SPEC_MAX_ABS_DIFF = 5e-4  # log power units, bins above SPEC_QUIET_LOG
SPEC_QUIET_LOG = -20.0  # below this the float32 DFT's cancellation dominates
SPEC_MAX_ABS_DIFF_QUIET = 1e-2
FBANK_MAX_ABS_DIFF = 5e-3  # log mel energy units


@pytest.fixture(scope="module")
def ldc93s1(ldc93s1_wav: str) -> np.ndarray:
    samples, _ = read_audio(ldc93s1_wav, 16000)
    return np.asarray(samples, np.float32)


def _numpy_spectrogram(samples: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    win, step = cfg.win_len_samples, cfg.win_step_samples
    n = cfg.n_frames(len(samples))
    frames = np.stack([samples[i * step : i * step + win] for i in range(n)])
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)  # periodic Hann
    power = np.abs(np.fft.rfft(frames.astype(np.float64) * window, n=win)) ** 2
    return np.log(power + 1e-14)


def test_spectrogram_geometry_is_the_deepspeech2_reference():
    assert (SPEC.feature_win_len, SPEC.feature_win_step) == (20, 10)
    assert SPEC.n_input == 161  # 320-point DFT at 16 kHz
    assert FBANK.n_input == 80 and FBANK.fft_len == 512


def test_spectrogram_matches_numpy(ldc93s1):
    ours = numpy_mfcc(ldc93s1, SPEC)
    reference = _numpy_spectrogram(ldc93s1, SPEC)
    assert ours.shape == reference.shape == (SPEC.n_frames(len(ldc93s1)), 161)
    loud = reference > SPEC_QUIET_LOG
    assert loud.mean() > 0.99
    assert np.abs(ours - reference)[loud].max() < SPEC_MAX_ABS_DIFF
    assert np.abs(ours - reference).max() < SPEC_MAX_ABS_DIFF_QUIET


def test_fbank_matches_python_speech_features(ldc93s1):
    ours = numpy_mfcc(ldc93s1, FBANK)
    reference = psf.logfbank(
        ldc93s1.astype(np.float64), 16000, winlen=0.02, winstep=0.01, nfilt=80,
        nfft=512, preemph=0.97,
    )  # fmt: skip
    n = FBANK.n_frames(len(ldc93s1))
    assert ours.shape == (n, 80) and len(reference) == n + 1
    assert np.abs(ours - reference[:n]).max() < FBANK_MAX_ABS_DIFF


def test_fbank_history_makes_chunks_concatenate(ldc93s1):
    """Features of a chunk given the sample before it == that part of the whole."""
    whole = numpy_mfcc(ldc93s1, FBANK)
    step = FBANK.win_step_samples
    start = 37 * step  # frame 37 starts here
    chunk = tf.constant(ldc93s1[start : start + 4000])
    history = tf.constant(ldc93s1[start - 1 : start])
    part, n = compute_features(chunk, FBANK, history)
    np.testing.assert_allclose(part.numpy(), whole[37 : 37 + int(n)], atol=1e-4)
    without, _ = compute_features(chunk, FBANK)  # pre-emphasis restarts: differs
    assert np.abs(without.numpy()[0] - whole[37]).max() > 1e-3


def test_utterance_normalization_is_per_bin(ldc93s1):
    cfg = dataclasses.replace(SPEC, feature_normalization="utterance")
    features = numpy_mfcc(ldc93s1, cfg)
    np.testing.assert_allclose(features.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(features.std(axis=0), 1.0, atol=1e-3)
    raw = _numpy_spectrogram(ldc93s1, SPEC)
    expected = (raw - raw.mean(0)) / (raw.std(0) + 1e-6)
    assert np.abs(features - expected).max() < 2e-3
    empty = normalize_utterance(tf.zeros([0, 161]))
    assert empty.shape == (0, 161)
    constant = normalize_utterance(tf.fill([50, 3], -36.04365))  # empty mel filter
    np.testing.assert_array_equal(constant.numpy(), 0.0)


@pytest.mark.parametrize("cfg", [SPEC, FBANK], ids=["spectrogram", "fbank"])
def test_short_audio_gives_no_frames(cfg):
    features, n = compute_features(tf.zeros([cfg.win_len_samples - 1]), cfg)
    assert features.shape == (0, cfg.n_input) and int(n) == 0


@pytest.mark.parametrize("feature_type", ["spectrogram", "fbank"])
def test_tflite_converts_with_builtins_only(feature_type, ldc93s1):
    """No custom or Flex ops: the converter must not need allow_custom_ops."""
    cfg = dataclasses.replace(
        FeatureConfig.of_type(feature_type), feature_normalization="utterance"
    )

    module = tf.Module()
    module.features = tf.function(
        lambda samples: {"features": compute_features(samples, cfg)[0]},
        input_signature=[tf.TensorSpec([None], tf.float32, name="samples")],
    )
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [module.features.get_concrete_function()], module
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    blob = converter.convert()  # raises on any op outside the builtins
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=blob)
    runner = interpreter.get_signature_runner()
    audio = ldc93s1[:16000]
    out = runner(samples=audio)["features"]
    expected = compute_features(tf.constant(audio), cfg)[0].numpy()
    np.testing.assert_allclose(out, expected, atol=1e-3)


def test_model_picks_its_feature_defaults():
    from absl import flags

    from util import flags as ds_flags

    values = flags.FlagValues()
    ds_flags.define_flags(values)
    values(["prog", "--model", "deepspeech2"])
    cfg = Config.from_flags(values.flag_values_dict())
    assert cfg.features.feature_type == "spectrogram"
    assert cfg.features.feature_normalization == "utterance"
    assert (cfg.features.feature_win_len, cfg.features.feature_win_step) == (20, 10)
    values = flags.FlagValues()
    ds_flags.define_flags(values)
    values(["prog", "--feature_type", "fbank"])
    cfg = Config.from_flags(values.flag_values_dict())
    assert cfg.model.model == "deepspeech" and cfg.features.feature_type == "fbank"
    assert (cfg.features.n_input, cfg.features.feature_normalization) == (80, "none")
    values = flags.FlagValues()
    ds_flags.define_flags(values)
    values(["prog"])
    assert Config.from_flags(values.flag_values_dict()).features == FeatureConfig()
