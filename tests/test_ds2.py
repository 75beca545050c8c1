"""DeepSpeech2 (util/model_ds2.py, util/rnn.py): cells, lengths, batch norm, lengths in
validation, checkpoints, and mirrored training with synchronised batch norm."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf

from util.checkpoints import CheckpointMismatchError, geometry_differences
from util.config import Config, FeatureConfig, ModelConfig
from util.ctc import logits_length
from util.model_ds2 import BatchNorm, DeepSpeech2Model
from util.models import build_model
from util.rnn import gru_sequence, rnn_sequence
from util.samples import CTC_INFEASIBLE, read_sample_set

DS2 = ModelConfig(model="deepspeech2", rnn_layers=2, rnn_hidden_size=12)


def _naive_gru(x, kernel, bias):
    """Plain-Python reference: [T, D, B, 3H] -> [T, D, B, H], autodiff-able."""
    h = tf.zeros_like(x[0, :, :, : kernel.shape[1]])
    outputs = []
    for t in range(x.shape[0]):
        hh = tf.einsum("dbh,dhg->dbg", h, kernel) + bias[:, None]
        xz, xr, xn = tf.split(x[t], 3, -1)
        hz, hr, hn = tf.split(hh, 3, -1)
        z, r = tf.sigmoid(xz + hz), tf.sigmoid(xr + hr)
        n = tf.tanh(xn + r * hn)
        h = z * h + (1 - z) * n
        outputs.append(h)
    return tf.stack(outputs)


def _naive_rnn(x, kernel):
    h = tf.zeros_like(x[0])
    outputs = []
    for t in range(x.shape[0]):
        h = tf.tanh(x[t] + tf.einsum("dbh,dhg->dbg", h, kernel))
        outputs.append(h)
    return tf.stack(outputs)


@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_hand_written_gradients_equal_autodiff(cell):
    rng = np.random.default_rng(0)
    t, d, b, h = 7, 2, 3, 5
    gates = 3 if cell == "gru" else 1
    x = tf.constant(rng.normal(size=(t, d, b, gates * h)), tf.float32)
    kernel = tf.constant(rng.normal(size=(d, h, gates * h)) * 0.5, tf.float32)
    bias = tf.constant(rng.normal(size=(d, gates * h)), tf.float32)
    weights = tf.constant(rng.normal(size=(t, d, b, h)), tf.float32)
    args = (x, kernel, bias) if cell == "gru" else (x, kernel)
    ours_fn = {"gru": gru_sequence, "rnn": rnn_sequence}[cell]
    naive_fn = {"gru": _naive_gru, "rnn": _naive_rnn}[cell]
    results = []
    for fn in (lambda *a: ours_fn(*a, training=True), naive_fn):
        with tf.GradientTape() as tape:
            tape.watch(args)
            hs = fn(*args)
            loss = tf.reduce_sum(hs * weights)
        results.append((hs, tape.gradient(loss, args)))
    (ours, ours_grads), (naive, naive_grads) = results
    np.testing.assert_allclose(ours, naive, atol=1e-5)
    np.testing.assert_allclose(ours_fn(*args, training=False), naive, atol=1e-5)
    for got, want in zip(ours_grads, naive_grads):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("rnn_type", ["gru", "lstm", "rnn"])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_logits_cover_each_utterance_and_ignore_padding(rnn_type, bidirectional):
    """Output length == cfg.output_frames == ctc.logits_length; batch == alone."""
    cfg = dataclasses.replace(DS2, rnn_type=rnn_type, bidirectional=bidirectional)
    model = build_model(cfg, 161, 29, seed=1)
    assert isinstance(model, DeepSpeech2Model)
    rng = np.random.default_rng(1)
    lengths = np.array([41, 23, 4, 1], np.int32)
    x = rng.normal(size=(4, 41, 161)).astype(np.float32)
    for row, n in enumerate(lengths):
        x[row, n:] = 0.0
    logits = model(x, lengths, training=False).numpy()
    out_len = logits_length(tf.constant(lengths), cfg).numpy()
    np.testing.assert_array_equal(out_len, [11, 6, 1, 1])  # ceil(ceil(n / 2) / 2)
    assert logits.shape == (4, 11, 29)
    for row, n in enumerate(lengths):
        alone = model(x[row : row + 1, :n], lengths[row : row + 1]).numpy()
        assert alone.shape[1] == out_len[row]
        np.testing.assert_allclose(logits[row, : out_len[row]], alone[0], atol=2e-5)


@pytest.mark.parametrize("rnn_type", ["gru", "lstm", "rnn"])
def test_cudnn_path_gives_the_same_logits_and_gradients(rnn_type):
    """--train_cudnn runs the cells through util/cudnn_rnn.py's buffers (checked there
    against Keras); on a CPU its reference implementation. Same variables, same math."""
    cfg = dataclasses.replace(DS2, rnn_type=rnn_type)
    model = build_model(cfg, 26, 29, seed=2)
    rng = np.random.default_rng(3)
    lengths = np.array([30, 17], np.int32)
    x = rng.normal(size=(2, 30, 26)).astype(np.float32)
    x[1, 17:] = 0.0
    out_len = cfg.output_frames(lengths)
    mask = tf.sequence_mask(out_len, cfg.output_frames(30), tf.float32)[..., None]
    # Inference first: each training call moves the batch-norm moving averages.
    ours_inf, their_inf = [
        model(x, lengths, training=False, cudnn=cudnn) * mask for cudnn in (False, True)
    ]
    np.testing.assert_allclose(ours_inf, their_inf, atol=1e-5)
    results = []
    for cudnn in (False, True):
        with tf.GradientTape() as tape:
            logits = model(x, lengths, training=True, cudnn=cudnn) * mask
            loss = tf.reduce_sum(tf.square(logits))
        results.append((logits, tape.gradient(loss, model.trainable_variables)))
    (ours, ours_grads), (theirs, their_grads) = results
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    for got, want in zip(ours_grads, their_grads):
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3)


def test_output_frames_is_the_conv_arithmetic():
    for n in range(0, 60):
        after_1 = (n + 2 * 20 - 41) // 2 + 1
        assert DS2.output_frames(n) == max(0, (after_1 + 2 * 10 - 21) // 2 + 1)
        assert DS2.output_frames(n) == -(-n // 4)
    assert ModelConfig().output_frames(37) == 37 and DS2.time_stride == 4


def test_batch_norm_statistics_skip_padding_and_track_moving_averages():
    norm = BatchNorm(3, decay=0.5, name="bn")
    rng = np.random.default_rng(2)
    x = rng.normal(3.0, 2.0, size=(2, 5, 3)).astype(np.float32)
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], np.float32)[..., None]
    x_padded = np.where(mask > 0, x, 1000.0).astype(np.float32)  # padding is ignored
    y = norm(tf.constant(x_padded), tf.constant(mask), training=True).numpy()
    real = x[mask[..., 0] > 0]  # [8, 3]
    np.testing.assert_allclose(y[mask[..., 0] > 0].mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(norm.moving_mean.numpy(), 0.5 * real.mean(0), rtol=1e-5)
    np.testing.assert_allclose(
        norm.moving_variance.numpy(), 0.5 + 0.5 * real.var(0), rtol=1e-4
    )
    scale, shift = norm.affine()
    inference = norm(tf.constant(x), tf.constant(mask), training=False).numpy()
    np.testing.assert_allclose(inference, x * scale.numpy() + shift.numpy(), rtol=1e-5)


def test_sample_validation_uses_the_output_frames(tmp_path, sine_wav, alphabet):
    """0.5 s = 49 spectrogram frames = 13 DS2 output frames: 20 letters fit DS1 only."""
    wav = sine_wav(duration_s=0.5)
    csv_path = tmp_path / "s.csv"
    csv_path.write_text(f"wav_filename,wav_filesize,transcript\n{wav},1,{'ab' * 10}\n")
    features = FeatureConfig.of_type("spectrogram")
    ds1 = read_sample_set(str(csv_path), alphabet, features)
    assert len(ds1.samples) == 1
    ds2 = read_sample_set(str(csv_path), alphabet, features, model=DS2)
    assert not ds2.samples and ds2.bad[0].reason == CTC_INFEASIBLE
    assert "13 output frames" in ds2.bad[0].detail and "stride 4" in ds2.bad[0].detail


def test_checkpoint_geometry_names_the_ds2_fields():
    saved = Config(
        model=DS2, features=FeatureConfig.of_type("spectrogram")
    )  # fmt: skip
    other = dataclasses.replace(
        saved, model=dataclasses.replace(DS2, rnn_type="lstm", n_hidden=7)
    )
    diffs = geometry_differences(saved, other)
    assert diffs == ["model.rnn_type: checkpoint 'gru', now 'lstm'"]  # n_hidden unused
    ds1 = Config()
    diffs = geometry_differences(saved, ds1)
    assert any(d.startswith("model.model: checkpoint 'deepspeech2'") for d in diffs)
    assert any(d.startswith("features.feature_type:") for d in diffs)
    assert issubclass(CheckpointMismatchError, ValueError)


def test_resume_refuses_another_geometry(tiny_config, sample_csv):
    from ctcdecode import Alphabet
    from util.distributed import make_strategy
    from util.training import build_session, train

    csv_path = sample_csv()
    cfg = tiny_config(
        model=dataclasses.asdict(DS2),
        data={"train_files": (csv_path,)},
    )
    cfg = dataclasses.replace(cfg, features=FeatureConfig.of_type("spectrogram"))
    alphabet = Alphabet(cfg.data.alphabet_config_path)
    session = build_session(cfg, alphabet, make_strategy([]))
    result = train(session)
    assert np.isfinite(result.last_train_loss)
    session.checkpoints.close()
    bigger = dataclasses.replace(
        cfg, model=dataclasses.replace(cfg.model, rnn_hidden_size=16)
    )
    session = build_session(bigger, alphabet, make_strategy([]))
    with pytest.raises(CheckpointMismatchError, match="rnn_hidden_size: checkpoint 12"):
        train(session)
    resumed = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=2))
    session = build_session(resumed, alphabet, make_strategy([]))
    assert train(session).epochs_completed == 3  # resumed after 1; --epochs: this run


MIRRORED_DS2_SCRIPT = r"""
import json, sys
import numpy as np
from util.distributed import make_strategy, split_cpu

split_cpu(2)  # before anything initialises TensorFlow's devices

from ctcdecode import Alphabet
from util.config import Config
from util.training import build_session, train

configs = json.loads(sys.argv[1])
out = {}
for name, devices in (("mirrored", ["/cpu:0", "/cpu:1"]), ("single", [])):
    cfg = Config.from_json(configs[name])
    strategy = make_strategy(devices)
    session = build_session(cfg, Alphabet(cfg.data.alphabet_config_path), strategy)
    result = train(session)
    out[name] = {
        "replicas": strategy.num_replicas_in_sync,
        "loss": result.last_train_loss,
        "variables": {v.name: v.numpy().tolist() for v in session.model.variables},
    }
print(json.dumps(out))
"""


@pytest.mark.slow  # ~80 s on a loaded 2-core machine (two TF processes' tracing)
def test_mirrored_ds2_with_synchronised_batch_norm_equals_single_device(
    tiny_config, sample_csv, run_python, tmp_path
):
    """2 replicas x 2 utterances == 1 device x 4: the batch norm statistics are
    all-reduced (SyncBatchNorm), so weights AND moving averages agree."""
    csv_path = sample_csv(("a", "ab", "abc", "b"))
    configs = {}
    for name, batch in (("mirrored", 2), ("single", 4)):
        directory = str(tmp_path / name)
        cfg = tiny_config(
            model=dataclasses.asdict(dataclasses.replace(DS2, batch_norm_decay=0.5)),
            data={"train_files": (csv_path,), "train_batch_size": batch},
            train={"epochs": 2, "shuffle_batches": False, "epsilon": 1.0},
            checkpoint={
                "load_checkpoint_dir": directory,
                "save_checkpoint_dir": directory,
            },
        )
        cfg = dataclasses.replace(cfg, features=FeatureConfig.of_type("spectrogram"))
        configs[name] = cfg.to_json()
    code = MIRRORED_DS2_SCRIPT.replace(
        "json.loads(sys.argv[1])", repr(json.dumps(configs)).join(["json.loads(", ")"])
    )
    out = json.loads(run_python(code).stdout.strip().splitlines()[-1])
    mirrored, single = out["mirrored"], out["single"]
    assert (mirrored["replicas"], single["replicas"]) == (2, 1)
    assert np.isclose(mirrored["loss"], single["loss"], rtol=1e-4)
    assert set(mirrored["variables"]) == set(single["variables"])
    moving = [k for k in single["variables"] if "moving_mean" in k]
    assert len(moving) == 4  # 2 convs, 1 recurrent layer input, the output
    for name, want in single["variables"].items():
        np.testing.assert_allclose(
            mirrored["variables"][name], want, rtol=1e-4, atol=1e-4, err_msg=name
        )
