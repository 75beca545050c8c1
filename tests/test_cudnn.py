"""Tests for util/cudnn_rnn.py: ``--train_cudnn`` computes what the default path does.

On a CPU the cuDNN path runs :func:`util.cudnn_rnn.reference_rnn` on the exact
parameter buffer ``CudnnRNNV3`` would get on a GPU. Measured agreement with the default
path (util/lstm.py), float32, n_hidden 32, random weights and biases, a padded batch of
lengths 37/20/5/31: logits max |diff| 3.6e-7 (uni 2.4e-7), summed CTC loss relative
diff < 1e-7, gradients max |diff| / max |grad| per variable <= 6.4e-6. The asserted
tolerances (1e-5 logits, 1e-5 relative loss, 1e-4 relative gradients) leave room for
other CPUs' summation orders.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from util import cudnn_rnn
from util.config import ModelConfig
from util.ctc import ctc_loss, logits_length
from util.model import DeepSpeechModel

N_INPUT, N_CLASSES, N_HIDDEN = 26, 29, 32
LENGTHS = np.array([37, 20, 5, 31], np.int32)
LDC93S1_TEXT = "she had your dark suit in greasy wash water all year"


@pytest.fixture(autouse=True)
def _full_float32():
    """The tolerances above are for float32; on Ampere+ GPUs TF rounds matmul inputs
    to TF32 (10 bits) by default, which both paths would do differently."""
    enabled = tf.config.experimental.tensor_float_32_execution_enabled()
    tf.config.experimental.enable_tensor_float_32_execution(False)
    yield
    tf.config.experimental.enable_tensor_float_32_execution(enabled)


def _random_model(bidirectional: bool) -> DeepSpeechModel:
    cfg = ModelConfig(n_hidden=N_HIDDEN, bidirectional=bidirectional, dropout_rate=0.0)
    model = DeepSpeechModel(cfg, N_INPUT, N_CLASSES, seed=3)
    for k, v in enumerate(model.trainable_variables):  # non-zero biases too
        v.assign(v + 0.1 * tf.random.stateless_normal(v.shape, [7, k]))
    return model


def _padded_batch(rng: np.random.Generator):
    t = int(LENGTHS.max())
    features = rng.standard_normal((len(LENGTHS), t, N_INPUT)).astype(np.float32)
    features *= np.arange(t)[None, :, None] < LENGTHS[:, None, None]
    labels = rng.integers(0, N_CLASSES - 1, (len(LENGTHS), 4)).astype(np.int32)
    return tf.constant(features), tf.constant(LENGTHS), tf.constant(labels)


def _logits_loss_grads(model, features, lengths, labels, cudnn: bool):
    with tf.GradientTape() as tape:
        logits = model(features, lengths, training=True, cudnn=cudnn)
        losses = ctc_loss(
            logits, logits_length(lengths, model.cfg), labels, tf.constant([4, 3, 2, 4])
        )
        loss = tf.reduce_sum(losses)
    grads = tape.gradient(loss, model.trainable_variables)
    return logits.numpy(), float(loss), [g.numpy() for g in grads]


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_cudnn_path_matches_default_path(bidirectional):
    model = _random_model(bidirectional)
    batch = _padded_batch(np.random.default_rng(0))
    ref_logits, ref_loss, ref_grads = _logits_loss_grads(model, *batch, cudnn=False)
    logits, loss, grads = _logits_loss_grads(model, *batch, cudnn=True)
    valid = np.arange(logits.shape[1])[None, :] < LENGTHS[:, None]
    np.testing.assert_allclose(logits[valid], ref_logits[valid], atol=1e-5)
    assert loss == pytest.approx(ref_loss, rel=1e-5)
    for var, g, ref in zip(model.trainable_variables, grads, ref_grads):
        assert np.abs(g - ref).max() <= 1e-4 * np.abs(ref).max(), var.name


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_padding_never_reaches_an_utterance(bidirectional):
    """Each utterance's logits in a padded batch equal its logits alone (both paths):
    padded frames leak into neither direction, cuDNN's sequence lengths included."""
    model = _random_model(bidirectional)
    features, lengths, _ = _padded_batch(np.random.default_rng(1))
    for cudnn in (False, True):
        batched = model(features, lengths, cudnn=cudnn).numpy()
        for b, n in enumerate(LENGTHS):
            alone = model(features[b : b + 1, :n], lengths[b : b + 1], cudnn=cudnn)
            np.testing.assert_allclose(batched[b, :n], alone[0].numpy(), atol=1e-5)


def test_cudnn_outputs_are_zero_past_each_length():
    """cuDNN's padded-IO contract, which reference_rnn reproduces."""
    model = _random_model(bidirectional=True)
    features, lengths, _ = _padded_batch(np.random.default_rng(2))
    x = model.feed_forward_front(features)
    out = model.recurrent_cudnn(tf.transpose(x, [1, 0, 2]), lengths).numpy()
    for b, n in enumerate(LENGTHS):
        assert not out[n:, b].any()
        assert np.abs(out[:n, b]).min(axis=-1).max() > 0


def _keras_order(kernel, recurrent_kernel, bias):
    """Our i, j, f, o gate blocks in Keras' (and cuDNN's) i, f, c, o order."""
    return [
        tf.concat(cudnn_rnn._blocks(w, cudnn_rnn.LSTM_TO_CUDNN), -1).numpy()
        for w in (kernel, recurrent_kernel, bias)
    ]


def _lstm_weights(n_in=5, n_cell=3, seed=0):
    rng = np.random.default_rng(seed)
    return [
        tf.constant(rng.standard_normal(shape).astype(np.float32))
        for shape in ((n_in, 4 * n_cell), (n_cell, 4 * n_cell), (4 * n_cell,))
    ]


def test_parameter_buffer_is_what_keras_gives_cudnn():
    """Our packing equals Keras' cuDNN packing of the same LSTM, the code that feeds
    ``CudnnRNNV3`` on Keras' GPU path (bias into bR, zeros into bW)."""
    keras_rnn = importlib.import_module("keras.src.backend.tensorflow.rnn")

    kernel, recurrent, bias = _lstm_weights()
    k, r, b = _keras_order(kernel, recurrent, bias)
    weights = tf.split(k, 4, axis=1) + tf.split(r, 4, axis=1)
    full_bias = tf.concat([tf.zeros_like(b), b], 0)
    expected = keras_rnn._standardize_cudnn_weights(
        weights, tf.split(full_bias, 8), tf.constant([-1]), transpose_weights=True
    )
    ours = cudnn_rnn.lstm_params(kernel, recurrent, bias)
    np.testing.assert_array_equal(ours.numpy(), expected.numpy())


def test_gate_order_matches_keras_lstm():
    """Keras' LSTM (its own CPU kernel, gates i, f, c, o) given our weights in cuDNN
    order computes what the reference and util/lstm compute from the originals."""
    import keras

    kernel, recurrent, bias = _lstm_weights(seed=1)
    x = np.random.default_rng(2).standard_normal((2, 7, 5)).astype(np.float32)
    layer = keras.layers.LSTM(3, return_sequences=True, use_cudnn=False)
    layer.build((2, 7, 5))
    layer.set_weights(_keras_order(kernel, recurrent, bias))
    expected = layer(x).numpy()  # [B, T, H]
    x_tm = tf.transpose(x, [1, 0, 2])
    ours = cudnn_rnn.reference_rnn(
        x_tm, tf.constant([7, 7]), cudnn_rnn.lstm_params(kernel, recurrent, bias),
        "lstm", 3,
    )  # fmt: skip
    np.testing.assert_allclose(tf.transpose(ours, [1, 0, 2]), expected, atol=1e-6)


def test_gru_and_rnn_buffers_match_keras_cells():
    """DeepSpeech2's cells (util/rnn.py: Keras' "reset after" GRU, gates z, r, n, and
    the tanh RNN) through the cuDNN buffer equal Keras' own CPU layers."""
    import keras

    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 6, 5)).astype(np.float32)
    x_tm, lengths = tf.transpose(x, [1, 0, 2]), tf.constant([6, 6])
    k, r = rng.standard_normal((5, 9)), rng.standard_normal((3, 9))
    b = rng.standard_normal((2, 9))
    gru = keras.layers.GRU(3, return_sequences=True, use_cudnn=False)
    gru.build((2, 6, 5))
    gru.set_weights([k, r, b])
    params = cudnn_rnn.gru_params(*[tf.constant(w, tf.float32) for w in (k, r, *b)])
    ours = cudnn_rnn.reference_rnn(x_tm, lengths, params, "gru", 3)
    np.testing.assert_allclose(tf.transpose(ours, [1, 0, 2]), gru(x), atol=1e-5)

    simple = keras.layers.SimpleRNN(3, return_sequences=True)
    simple.build((2, 6, 5))
    simple.set_weights([k[:, :3], r[:, :3], b[0, :3]])
    params = cudnn_rnn.rnn_params(
        *[tf.constant(w, tf.float32) for w in (k[:, :3], r[:, :3], b[0, :3])]
    )
    ours = cudnn_rnn.reference_rnn(x_tm, lengths, params, "rnn_tanh", 3)
    np.testing.assert_allclose(tf.transpose(ours, [1, 0, 2]), simple(x), atol=1e-5)


def test_zero_length_batch_and_gpu_kernel_choice():
    """The reference handles an empty replica slice; no GPU here -> no cuDNN kernel."""
    kernel, recurrent, bias = _lstm_weights()
    out = cudnn_rnn.lstm_layer(
        tf.zeros([4, 0, 5]), tf.zeros([0], tf.int32), [(kernel, recurrent, bias)],
        training=True, use_gpu_kernel=False,
    )  # fmt: skip
    assert out.shape == (4, 0, 3)
    assert cudnn_rnn.gpu_kernel_available() == bool(
        tf.config.list_physical_devices("GPU")
    )


@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_deepspeech2_cudnn_path_matches_default_path(rnn_type, bidirectional):
    """DeepSpeech2's recurrent layers (util/model_ds2.py) through the cuDNN buffers:
    same logits, CTC loss and gradients on a padded batch. Measured (n 32, 2 layers,
    lengths 80/45/20/63 frames): logits <= 1.9e-6, loss rel <= 1e-7, gradients rel
    <= 7.8e-6."""
    from util.models import build_model

    cfg = ModelConfig(
        model="deepspeech2", rnn_type=rnn_type, rnn_layers=2, rnn_hidden_size=32,
        bidirectional=bidirectional,
    )  # fmt: skip
    model = build_model(cfg, 40, N_CLASSES, seed=2)
    for k, v in enumerate(model.trainable_variables):
        v.assign(v + 0.1 * tf.random.stateless_normal(v.shape, [7, k]))
    rng = np.random.default_rng(3)
    lengths = np.array([80, 45, 20, 63], np.int32)
    x = rng.normal(size=(4, 80, 40)).astype(np.float32)
    x *= np.arange(80)[None, :, None] < lengths[:, None, None]
    out_len = np.asarray(cfg.output_frames(lengths), np.int32)
    labels = tf.constant(rng.integers(0, N_CLASSES - 1, (4, 3)), tf.int32)
    results = []
    for cudnn in (False, True):
        with tf.GradientTape() as tape:
            logits = model(x, lengths, training=True, cudnn=cudnn)
            loss = tf.reduce_sum(
                ctc_loss(logits, out_len, labels, tf.constant([3, 3, 2, 3]))
            )
        grads = tape.gradient(loss, model.trainable_variables)
        results.append((logits.numpy(), float(loss), grads))
    (ref, ref_loss, ref_grads), (ours, loss, grads) = results
    valid = np.arange(ref.shape[1])[None, :] < out_len[:, None]
    np.testing.assert_allclose(ours[valid], ref[valid], atol=2e-5)
    assert loss == pytest.approx(ref_loss, rel=1e-5)
    for var, g, want in zip(model.trainable_variables, grads, ref_grads):
        if want is not None:
            assert np.abs(g - want).max() <= 1e-4 * np.abs(want).max(), var.name


@pytest.mark.gpu
@pytest.mark.skipif(
    not tf.config.list_physical_devices("GPU"), reason="needs a GPU (doc/GPU.rst)"
)
@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_gpu_kernel_matches_reference(mode):
    """On a GPU: CudnnRNNV3 and the CPU reference agree on one buffer, outputs and
    gradients, padded lengths, both directions (run: pytest -m gpu)."""
    rng = np.random.default_rng(4)
    n_in, n_cell, gates = 6, 8, cudnn_rnn.N_GATES[mode]
    x = tf.constant(rng.standard_normal((9, 3, n_in)), tf.float32)
    lengths = tf.constant([9, 4, 6])
    weights = [
        tf.Variable(rng.standard_normal(shape) * 0.3, dtype=tf.float32)
        for shape in ((n_in, gates * n_cell), (n_cell, gates * n_cell))
        + ((gates * n_cell,),) * (2 if mode == "gru" else 1)
    ]
    pack = cudnn_rnn.gru_params if mode == "gru" else cudnn_rnn.lstm_params
    results = []
    for on_gpu in (True, False):  # full float32: see _full_float32
        with tf.GradientTape() as tape:
            params = [pack(*weights)] * 2
            out = cudnn_rnn.layer(x, lengths, mode, params, n_cell, True, on_gpu)
            loss = tf.reduce_sum(out * out)
        results.append([out] + tape.gradient(loss, weights))
    for gpu, ref in zip(*results):
        np.testing.assert_allclose(gpu.numpy(), ref.numpy(), rtol=1e-4, atol=1e-5)


def test_checkpoints_interchange_both_ways(tiny_config, alphabet, sample_csv):
    """cuDNN -> default on one checkpoint directory, no conversion step (the slow
    test below goes on to export; the variables are the same both ways)."""
    from util.config import DeviceConfig
    from util.distributed import make_strategy
    from util.training import build_session, train

    base = tiny_config(data={"train_files": (sample_csv(),)})
    steps = []
    for epochs, cudnn in ((1, True), (1, False)):  # --epochs: more epochs per run
        cfg = dataclasses.replace(
            base,
            train=dataclasses.replace(base.train, epochs=epochs),
            device=DeviceConfig(train_cudnn=cudnn),
        )
        session = build_session(cfg, alphabet, make_strategy([]))
        assert session.steps.cudnn is cudnn
        train(session)  # restores with assert_existing_objects_matched
        steps.append(int(session.state.global_step.numpy()))
    assert steps == [3, 6]


@pytest.mark.slow
def test_train_cudnn_resume_without_it_export_and_client(repo_root, tmp_path):
    """20 steps of LDC93S1 with --train_cudnn, then resumed without it to the exact
    transcript; the exported TFLite model gives the client the same transcript."""
    import soundfile

    import deepspeech

    run, env = tmp_path / "ldc", {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    subprocess.run(
        [sys.executable, "bin/import_ldc93s1.py", str(run)],
        cwd=repo_root, env=env, check=True, capture_output=True,
    )  # fmt: skip
    csv_path = str(run / "ldc93s1.csv")
    common = [
        sys.executable, "DeepSpeech.py", "--train_files", csv_path,
        "--n_hidden", "100", "--learning_rate", "0.003", "--dropout_rate", "0",
        "--checkpoint_dir", str(tmp_path / "ckpt"), "--show_progressbar=false",
        "--summary_dir", str(tmp_path / "summaries"),
    ]  # fmt: skip
    phases = [
        ["--epochs", "20", "--train_cudnn"],
        ["--epochs", "200", "--notrain_cudnn", "--test_files", csv_path,
         "--report_count", "1", "--export_dir", str(tmp_path / "export"),
         "--export_tflite"],
    ]  # fmt: skip
    logs = []
    for extra in phases:
        result = subprocess.run(
            common + extra, cwd=repo_root, env=env, capture_output=True, text=True,
            timeout=900,
        )  # fmt: skip
        logs.append(result.stdout + result.stderr)
        assert result.returncode == 0, logs[-1]
    assert "cuDNN-compatible math on the CPU" in logs[0]
    assert "resumed training from last checkpoint" in logs[1]
    # The default path continues the cuDNN run's loss (no restart from scratch).
    last = _epoch_loss(logs[0], 19)
    assert _epoch_loss(logs[1], 20) < 1.1 * last
    assert f' - res: "{LDC93S1_TEXT}"' in logs[1], logs[1]
    model = deepspeech.Model(str(tmp_path / "export" / "output_graph.tflite"))
    pcm = soundfile.read(str(run / "LDC93S1.wav"), dtype="int16")[0]
    assert model.stt(pcm) == LDC93S1_TEXT


def _epoch_loss(log: str, epoch: int) -> float:
    match = re.search(rf"Epoch {epoch} \| train loss ([0-9.]+)", log)
    assert match, log
    return float(match.group(1))


MIRRORED_SCRIPT = r"""
import json
from util.distributed import make_strategy, split_cpu

split_cpu(2)  # before anything initialises TensorFlow's devices

from ctcdecode import Alphabet
from util.config import Config
from util.model import trainable_variables
from util.training import build_session, train

out = {}
for name, text in json.loads(CONFIGS).items():
    cfg = Config.from_json(text)
    strategy = make_strategy(["/cpu:0", "/cpu:1"] if name != "single" else [])
    session = build_session(cfg, Alphabet(cfg.data.alphabet_config_path), strategy)
    result = train(session)
    scale = session.steps.loss_scale
    out[name] = {
        "loss": result.last_train_loss,
        "steps": int(session.state.global_step.numpy()),
        "scale": None if scale is None else float(scale.scale.numpy()),
        "weights": [v.numpy().tolist() for v in trainable_variables(session.model)],
    }
print(json.dumps(out))
"""


@pytest.mark.slow
def test_cudnn_and_float16_under_mirrored_strategy(
    tiny_config, sample_csv, run_python, tmp_path
):
    """Two replicas with --train_cudnn equal one device (as tests/test_distributed.py
    checks for the default path); float16 with its loss scale runs mirrored too."""
    csv_path = sample_csv(("a", "ab", "abc", "b"))
    runs = {
        "mirrored": (2, {"train_cudnn": True}),
        "single": (4, {"train_cudnn": True}),
        "float16": (
            2,
            {
                "train_cudnn": True,
                "automatic_mixed_precision": True,
                "mixed_precision_dtype": "float16",
            },
        ),
    }
    configs = {}
    for name, (batch, device) in runs.items():
        directory = str(tmp_path / name)
        configs[name] = tiny_config(
            data={"train_files": (csv_path,), "train_batch_size": batch},
            train={"epochs": 3, "shuffle_batches": False, "epsilon": 1.0},
            checkpoint={
                "load_checkpoint_dir": directory,
                "save_checkpoint_dir": directory,
            },
            device=device,
        ).to_json()
    code = MIRRORED_SCRIPT.replace("CONFIGS", repr(json.dumps(configs)))
    out = json.loads(run_python(code).stdout.strip().splitlines()[-1])
    assert out["mirrored"]["steps"] == out["single"]["steps"] == 3
    assert np.isclose(out["mirrored"]["loss"], out["single"]["loss"], rtol=1e-5)
    for got, want in zip(out["mirrored"]["weights"], out["single"]["weights"]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    half = out["float16"]
    assert half["steps"] == 3 and np.isfinite(half["loss"])
    assert half["scale"] is not None and 1.0 <= half["scale"] <= 2.0**15
