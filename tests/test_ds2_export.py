"""DeepSpeech2 end to end, small: train a few steps, export TFLite, transcribe with the
TensorFlow-free client; and fbank features through the DS1 export and stream.

The fast tests use a narrow DS2 (1 GRU layer of 16 per direction) trained for a few
steps, so its batch-norm moving averages are not trivial: the export must compute what
the training side computes (batch norm folded), whatever the weights. The slow test
runs ``bin/run-ldc93s1.sh --model deepspeech2`` to LDC93S1's exact transcript.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from helpers import train_ldc93s1_steps
from util import export
from util.config import FeatureConfig, ModelConfig
from util.features import compute_features
from util.models import build_model

DS2 = ModelConfig(
    model="deepspeech2", rnn_layers=1, rnn_hidden_size=16, batch_norm_decay=0.5
)
MAX_PROB_DIFF = 1e-4  # TFLite float32 vs TF float32, probabilities
MAX_PROB_DIFF_QUANTIZED = 0.2  # int8 weights


def _training_side_probs(model, cfg, pcm):
    features, features_len = compute_features(
        tf.constant(pcm.astype(np.float32) / export.INT16_SCALE), cfg.features
    )
    logits = model(features[tf.newaxis], features_len[tf.newaxis], training=False)
    return tf.nn.softmax(logits)[0].numpy()


@pytest.fixture(scope="module")
def trained(tmp_path_factory, alphabet):
    """A DS2 trained 3 steps on LDC93S1 (moving averages away from 0/1), exported."""
    cfg, model = train_ldc93s1_steps(
        tmp_path_factory.mktemp("ds2"), alphabet, DS2,
        FeatureConfig.of_type("spectrogram", feature_normalization="utterance"),
    )  # fmt: skip
    level = logging.getLogger("absl").level  # the converter changes it
    try:
        path = export.export_tflite(model, cfg, alphabet)
        quantized_cfg = dataclasses.replace(
            cfg,
            export=dataclasses.replace(
                cfg.export, export_file_name="quantized", export_quantize=True
            ),
        )
        quantized = export.export_tflite(model, quantized_cfg, alphabet)
    finally:
        logging.getLogger("absl").setLevel(level)
    return cfg, model, path, quantized


def test_moving_averages_were_trained(trained):
    _, model, _, _ = trained
    assert np.abs(model.conv[0].norm.moving_mean.numpy()).max() > 1e-3


def test_client_gives_the_training_side_probabilities(trained, pcm):
    from deepspeech import Model

    cfg, model, path, _ = trained
    client = Model(path)
    meta = client.metadata
    assert meta["model"]["model"] == "deepspeech2"
    assert meta["features"]["feature_type"] == "spectrogram"
    assert meta["features"]["feature_normalization"] == "utterance"
    assert (meta["time_stride"], meta["n_input"], meta["streaming"]) == (4, 161, False)
    assert not client.streams_natively
    probs = client.probabilities(pcm)
    expected = _training_side_probs(model, cfg, pcm)
    assert probs.shape == expected.shape == (cfg.model.output_frames(291), 29)
    assert np.abs(probs - expected).max() < MAX_PROB_DIFF
    # Word timings use 40 ms output frames.
    tokens = client.sttWithMetadata(pcm).transcripts[0].tokens
    assert all(abs(t.start_time - 0.04 * t.timestep) < 1e-6 for t in tokens)


def test_quantized_export_stays_close(trained, pcm):
    from deepspeech import Model

    cfg, model, path, quantized = trained
    assert os.path.getsize(quantized) < os.path.getsize(path)
    probs = Model(quantized).probabilities(pcm)
    expected = _training_side_probs(model, cfg, pcm)
    assert np.abs(probs - expected).max() < MAX_PROB_DIFF_QUANTIZED


def test_stream_decodes_the_buffered_audio_at_finish(trained, pcm):
    from deepspeech import Model

    _, _, path, _ = trained
    client = Model(path)
    stream = client.createStream()
    for start in range(0, len(pcm), 4000):
        stream.feedAudioContent(pcm[start : start + 4000])
    assert stream.finishStream() == client.stt(pcm)


def test_ds2_has_no_flex_or_custom_ops(trained):
    """spectrogram features + DS2: builtins only (the export sets no custom ops)."""
    from ai_edge_litert.interpreter import Interpreter

    _, _, path, _ = trained
    interpreter = Interpreter(model_path=path)
    ops = {d["op_name"] for d in interpreter._get_ops_details()}
    assert not any(op.startswith("Flex") for op in ops)
    assert "CUSTOM" not in ops and "AudioSpectrogram" not in ops


def test_fbank_ds1_streams_like_the_whole_file(tmp_path, alphabet, pcm):
    """DS1 (unidirectional) on fbank: the stream keeps one sample of pre-emphasis
    context between chunks, so its final transcript is the whole file's."""
    from deepspeech import Model
    from util.config import Config

    base = Config()
    cfg = dataclasses.replace(
        base,
        model=dataclasses.replace(base.model, n_hidden=16, bidirectional=False),
        features=FeatureConfig.of_type("fbank"),
        export=dataclasses.replace(base.export, export_dir=str(tmp_path)),
    )
    model = build_model(cfg.model, cfg.features.n_input, alphabet.n_classes, seed=4)
    level = logging.getLogger("absl").level
    try:
        path = export.export_tflite(model, cfg, alphabet)
    finally:
        logging.getLogger("absl").setLevel(level)
    client = Model(path)
    assert client.streams_natively and client.metadata["feature_history_samples"] == 1
    whole = client.probabilities(pcm)
    np.testing.assert_allclose(
        whole, _training_side_probs(model, cfg, pcm), atol=MAX_PROB_DIFF
    )
    stream = client.createStream()
    for start in range(0, len(pcm), 1234):  # chunks that cut frames anywhere
        stream.feedAudioContent(pcm[start : start + 1234])
    streamed = stream._all_probs(flush=True)
    np.testing.assert_allclose(streamed, whole, atol=MAX_PROB_DIFF)


@pytest.mark.slow
def test_run_ldc93s1_deepspeech2_reaches_the_exact_transcript(repo_root, tmp_path):
    """The CPU smoke mode of bin/run-ldc93s1.sh --model deepspeech2 (a few minutes)."""
    env = {
        **os.environ,
        "OUT_DIR": str(tmp_path / "run"),
        "PYTHON": sys.executable,
        "PYTHONPATH": repo_root,
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    result = subprocess.run(
        ["bash", "bin/run-ldc93s1.sh", "--model", "deepspeech2"],
        cwd=repo_root, env=env, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'res: "she had your dark suit in greasy wash water all year"' in (
        result.stdout
    )
