"""Tests for util/ds09_checkpoint.py: DeepSpeech 0.9 checkpoints load and continue.

The checkpoints are written here the way 0.9.3's ``train()`` wrote them: a
``tf.compat.v1`` graph with its variable names and shapes (``layer_N/weights``,
``cudnn_lstm/rnn/multi_rnn_cell/cell_0/cudnn_compatible_lstm_cell/{kernel,bias}``, a
``learning_rate`` variable, the global step), trained two steps by TF1's own
``AdamOptimizer`` so the ``*/Adam``, ``*/Adam_1``, ``beta1_power`` and ``beta2_power``
variables are TF1's, and saved by two ``tf.compat.v1.train.Saver`` s into
``best_dev-N`` (state file ``best_dev_checkpoint``) and ``train-N`` (``checkpoint``),
with the absolute paths such a Saver writes - then the directory is moved, as every
downloaded release was. The cuDNN variant stores ``cudnn_lstm/opaque_kernel`` (with
Adam moments) and, as ``CudnnLSTMSaveable`` did, the canonical kernel and bias
converted from it.

The reference is an independent float64 numpy forward pass of 0.9's graph: explicit
MFCC context windows (zero-padded), clipped ReLU at 20, the ``BlockLSTM`` equations
(``[i, ci, f, o] = [x, h] W + b``, forget bias 0) - or, for the cuDNN variant, cuDNN's
own equations on the opaque buffer (gates i, f, c~, o; bias bW + bR) - and the linear
output layer, no softmax. Measured max |logit difference| (float32 model vs float64
reference, 40 frames, weights ~N(0, 0.4), logits up to |4.4|): n_hidden 12: 2.5e-6
(cuDNN variant 3.9e-6); n_hidden 64 (logits up to |12.8|): 4.5e-5 (1.2e-4), i.e.
float32 round-off. Asserted at n_hidden 12: 1e-4 absolute.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from util import ds09_checkpoint as ds09
from util import transfer
from util.config import ModelConfig
from util.distributed import make_strategy
from util.model import DeepSpeechModel, trainable_variables
from util.training import build_session, train

N_INPUT, N_CONTEXT, N_HIDDEN, N_CLASSES = 26, 9, 12, 29  # 29: data/alphabet.txt + 1
LSTM = ds09.LSTM_SCOPE
TOLERANCE = 1e-4  # logits, absolute (measured 2.5e-6 / 3.9e-6)
# --layer_norm: 0.9's contrib layer_norm adds 1e-12 to the variance, util/model.py 1e-6;
# measured 3.2e-4 (1.0e-5 with 1e-6 in the reference, i.e. the epsilon is all of it).
LAYER_NORM_TOLERANCE = 1e-3
GLOBAL_STEP = 2  # TF1 Adam steps taken before saving


def _shapes(n_hidden: int, n_classes: int) -> dict:
    window = (2 * N_CONTEXT + 1) * N_INPUT
    h = n_hidden
    return {
        "layer_1/weights": (window, h),
        "layer_1/bias": (h,),
        "layer_2/weights": (h, h),
        "layer_2/bias": (h,),
        "layer_3/weights": (h, h),
        "layer_3/bias": (h,),
        "layer_5/weights": (h, h),
        "layer_5/bias": (h,),
        "layer_6/weights": (h, n_classes),
        "layer_6/bias": (n_classes,),
    }


def canonical_from_opaque(opaque: np.ndarray, n_in: int, h: int):
    """CudnnLSTMSaveable's canonical kernel [n_in + h, 4h] and bias [4h] of a
    single-layer cuDNN buffer: per gate W [h, n_in] then R [h, h] (cuDNN order i, f,
    c~, o), then bW and bR; canonical gate order i, c~, f, o, bias bW + bR (TF 1.15
    CudnnParamsFormatConverterLSTM)."""
    sizes = [h * n_in] * 4 + [h * h] * 4 + [h] * 8
    parts = np.split(opaque, np.cumsum(sizes)[:-1])
    w = [p.reshape(h, n_in) for p in parts[:4]]
    r = [p.reshape(h, h) for p in parts[4:8]]
    b = [parts[8 + g] + parts[12 + g] for g in range(4)]
    icfo = (0, 2, 1, 3)
    kernel = np.concatenate([np.concatenate([w[g], r[g]], 1) for g in icfo], 0).T
    return kernel.astype(np.float32), np.concatenate([b[g] for g in icfo])


def write_ds09(
    directory: str,
    n_hidden: int = N_HIDDEN,
    n_classes: int = N_CLASSES,
    cudnn: bool = False,
    seed: int = 0,
    layer_norm: bool = False,
) -> dict:
    """A DeepSpeech 0.9 checkpoint dir (best_dev and last); returns every saved value
    by 0.9 name. Written in a scratch dir, then moved to ``directory``."""
    rng = np.random.default_rng(seed)
    h = n_hidden
    v1 = tf.compat.v1
    initial = {
        name: rng.normal(0.0, 0.4, shape).astype(np.float32)
        for name, shape in _shapes(h, n_classes).items()
    }
    if layer_norm:  # tf.contrib.layers.layer_norm in layer_N's scope
        for n in (1, 2, 3, 5):
            initial[f"layer_{n}/LayerNorm/gamma"] = rng.uniform(0.5, 1.5, h).astype(
                np.float32
            )
            initial[f"layer_{n}/LayerNorm/beta"] = rng.normal(0.0, 0.2, h).astype(
                np.float32
            )
    if cudnn:
        initial["cudnn_lstm/opaque_kernel"] = rng.normal(
            0.0, 0.4, 8 * h * h + 8 * h
        ).astype(np.float32)
    else:
        initial[f"{LSTM}/kernel"] = rng.normal(0.0, 0.4, (2 * h, 4 * h)).astype(
            np.float32
        )
        initial[f"{LSTM}/bias"] = rng.normal(0.0, 0.4, 4 * h).astype(np.float32)
    scratch = directory + ".writing"
    graph = tf.Graph()
    with graph.as_default():
        variables = {}
        for name, value in initial.items():
            scope, leaf = name.rsplit("/", 1)
            with v1.variable_scope(scope):
                variables[name] = v1.get_variable(leaf, initializer=value)
        learning_rate = v1.get_variable(
            "learning_rate", initializer=0.0005, trainable=False
        )
        global_step = v1.train.get_or_create_global_step()
        loss = tf.add_n([tf.reduce_sum(tf.sin(v)) for v in variables.values()])
        step = v1.train.AdamOptimizer(learning_rate).minimize(loss, global_step)
        var_list = {v.op.name: v for v in v1.global_variables()}
        if cudnn:  # the saveable's canonical tensors: no Adam slots of their own
            with v1.variable_scope("saveable"):
                kernel = v1.get_variable("k", [2 * h, 4 * h], trainable=False)
                bias = v1.get_variable("b", [4 * h], trainable=False)
            var_list.update({f"{LSTM}/kernel": kernel, f"{LSTM}/bias": bias})
        with v1.Session(graph=graph) as session:
            session.run(v1.global_variables_initializer())
            for _ in range(GLOBAL_STEP):
                session.run(step)
            if cudnn:
                k, b = canonical_from_opaque(
                    session.run(variables["cudnn_lstm/opaque_kernel"]), h, h
                )
                kernel.load(k, session)
                bias.load(b, session)
            saver = v1.train.Saver(var_list, max_to_keep=1)
            saver.save(
                session,
                os.path.join(scratch, "best_dev"),
                global_step=global_step,
                latest_filename="best_dev_checkpoint",
            )
            v1.train.Saver(var_list, max_to_keep=5).save(
                session, os.path.join(scratch, "train"), global_step=global_step
            )
            saved = dict(zip(var_list, session.run(list(var_list.values()))))
    with open(os.path.join(scratch, "flags.txt"), "w", encoding="utf-8") as f:
        f.write(f"--n_hidden={h}\n")
    shutil.move(scratch, directory)  # the state files' absolute paths go stale
    return saved


def ds09_forward(x: np.ndarray, saved: dict, cudnn: bool = False) -> np.ndarray:
    """0.9's logits [T, n_classes] for features [T, n_input], float64 numpy."""
    x = x.astype(np.float64)
    w = {k: v.astype(np.float64) for k, v in saved.items()}
    n_frames, width = len(x), 2 * N_CONTEXT + 1
    padded = np.concatenate(
        [np.zeros((N_CONTEXT, N_INPUT)), x, np.zeros((N_CONTEXT, N_INPUT))]
    )
    windows = np.stack([padded[t : t + width].reshape(-1) for t in range(n_frames)])

    def dense(a, n, relu=True):
        out = a @ w[f"layer_{n}/weights"] + w[f"layer_{n}/bias"]
        if not relu:
            return out
        out = np.minimum(np.maximum(out, 0.0), 20.0)
        if f"layer_{n}/LayerNorm/gamma" in w:  # contrib layer_norm, epsilon 1e-12
            mean = out.mean(-1, keepdims=True)
            var = out.var(-1, keepdims=True)
            out = (out - mean) / np.sqrt(var + 1e-12)
            out = out * w[f"layer_{n}/LayerNorm/gamma"] + w[f"layer_{n}/LayerNorm/beta"]
        return out

    a = dense(dense(dense(windows, 1), 2), 3)
    step = _cudnn_step(w) if cudnn else _block_lstm_step(w)
    h_size = w["layer_2/weights"].shape[0]
    h, c, outputs = np.zeros(h_size), np.zeros(h_size), []
    for t in range(n_frames):
        h, c = step(a[t], h, c)
        outputs.append(h)
    return dense(dense(np.stack(outputs), 5), 6, relu=False)


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _block_lstm_step(w):
    """TF1 BlockLSTM: xh = [x, h]; [i, ci, f, o] = xh W + b; f += forget_bias (0)."""
    kernel, bias = w[f"{LSTM}/kernel"], w[f"{LSTM}/bias"]

    def step(x, h, c):
        i, ci, f, o = np.split(np.concatenate([x, h]) @ kernel + bias, 4)
        c = np.tanh(ci) * _sigmoid(i) + c * _sigmoid(f + 0.0)
        return _sigmoid(o) * np.tanh(c), c

    return step


def _cudnn_step(w):
    """cuDNN's LSTM on the opaque buffer: gates i, f, c~, o; W x + R h + bW + bR."""
    opaque = w["cudnn_lstm/opaque_kernel"]
    n = w["layer_2/weights"].shape[0]
    sizes = [n * n] * 8 + [n] * 8
    parts = np.split(opaque, np.cumsum(sizes)[:-1])
    W = [p.reshape(n, n) for p in parts[:4]]
    R = [p.reshape(n, n) for p in parts[4:8]]
    B = [parts[8 + g] + parts[12 + g] for g in range(4)]

    def step(x, h, c):
        i, f, g, o = (W[k] @ x + R[k] @ h + B[k] for k in range(4))
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        return _sigmoid(o) * np.tanh(c), c

    return step


def model_for(n_hidden: int = N_HIDDEN, n_classes: int = N_CLASSES, **kw):
    cfg = ModelConfig(n_hidden=n_hidden, bidirectional=False, dropout_rate=0.0, **kw)
    return DeepSpeechModel(cfg, N_INPUT, n_classes, seed=7)


def digest(directory: str) -> dict:
    out = {}
    for root, _, files in os.walk(directory):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                key = os.path.relpath(os.path.join(root, name), directory)
                out[key] = hashlib.sha256(f.read()).hexdigest()
    return out


@pytest.mark.parametrize(
    "cudnn, layer_norm",
    [(False, False), (True, False), (False, True)],
    ids=["lstmblockfused", "cudnn", "layer_norm"],
)
def test_logits_equal_ds09_forward_pass(tmp_path, cudnn, layer_norm):
    src = str(tmp_path / "deepspeech-0.9.3-checkpoint")
    saved = write_ds09(src, cudnn=cudnn, layer_norm=layer_norm)
    assert ds09.is_ds09_dir(src)
    kind, path = ds09.choose(src, "auto")
    assert (kind, os.path.basename(path)) == ("best", f"best_dev-{GLOBAL_STEP}")
    model = model_for(layer_norm=layer_norm)
    report = ds09.load(path, model)
    x = np.random.default_rng(1).normal(0, 1, (40, N_INPUT)).astype(np.float32)
    logits = model(tf.constant(x[None]), tf.constant([40]), training=False)[0]
    expected = ds09_forward(x, saved, cudnn=cudnn)
    tolerance = LAYER_NORM_TOLERANCE if layer_norm else TOLERANCE
    assert np.max(np.abs(logits.numpy() - expected)) < tolerance
    assert report.layers == [
        "layer_1",
        "layer_2",
        "layer_3",
        "layer_5",
        "layer_6",
        "lstm",
    ]
    ignored = set(report.ignored)
    assert {"global_step", "learning_rate", "beta1_power", "beta2_power"} <= ignored
    assert "layer_1/weights/Adam" in ignored  # no optimizer passed: weights only
    if cudnn:
        assert {"cudnn_lstm/opaque_kernel", "cudnn_lstm/opaque_kernel/Adam"} <= ignored


def test_optimizer_state_continues(tmp_path):
    src = str(tmp_path / "ds09")
    saved = write_ds09(src)
    model = model_for()
    optimizer = _adam(model)
    report = ds09.load(ds09.choose(src, "last")[1], model, optimizer)
    assert report.global_step == GLOBAL_STEP and int(optimizer.iterations) == 2
    assert float(optimizer.learning_rate) == pytest.approx(0.0005)
    slots = dict(zip([v.name for v in trainable_variables(model)], optimizer.v))
    np.testing.assert_array_equal(
        slots["lstm_fw/recurrent_kernel:0"].numpy(),
        saved[f"{LSTM}/kernel/Adam_1"][N_HIDDEN:],
    )
    moments = dict(zip([v.name for v in trainable_variables(model)], optimizer.m))
    np.testing.assert_array_equal(
        moments["layer_1/weights:0"].numpy(), saved["layer_1/weights/Adam"]
    )
    assert {"beta1_power", "beta2_power"} <= set(report.ignored)


def test_cudnn_checkpoint_reinitialises_lstm_moments(tmp_path):
    """0.9's --load_cudnn: the LSTM's moments exist only for the opaque buffer."""
    src = str(tmp_path / "ds09")
    write_ds09(src, cudnn=True)
    model = model_for()
    optimizer = _adam(model)
    report = ds09.load(ds09.choose(src, "best")[1], model, optimizer)
    assert any(f"no {LSTM}/kernel/Adam" in r for r in report.reinitialised)
    assert not any(r.startswith("layer_") for r in report.reinitialised)


def _adam(model):
    from util.optimizer import Adam

    return Adam(trainable_variables(model), 0.001)


def test_geometry_mismatch_names_variables_shapes_and_flag(tmp_path):
    src = str(tmp_path / "ds09")
    write_ds09(src, n_hidden=N_HIDDEN)
    path = ds09.choose(src, "auto")[1]
    with pytest.raises(ds09.DS09CheckpointError) as err:
        ds09.load(path, model_for(n_hidden=8))
    text = str(err.value)
    assert f"layer_2/weights: checkpoint [{N_HIDDEN}, {N_HIDDEN}], model [8, 8]" in text
    assert f"{LSTM}/kernel: checkpoint [{2 * N_HIDDEN}, {4 * N_HIDDEN}]" in text
    assert f"--n_hidden {N_HIDDEN} (this run: 8)" in text
    with pytest.raises(ds09.DS09CheckpointError, match="--bidirectional=false"):
        ds09.load(path, DeepSpeechModel(ModelConfig(n_hidden=N_HIDDEN), 26, 29))
    with pytest.raises(ds09.DS09CheckpointError, match="--drop_source_layers 1"):
        ds09.load(path, model_for(n_classes=34))


def _config(tiny_config, sample_csv, src, dst, **checkpoint):
    return tiny_config(
        model={"n_hidden": N_HIDDEN, "bidirectional": False},
        data={"train_files": (sample_csv(),)},
        checkpoint={
            "load_checkpoint_dir": src,
            "save_checkpoint_dir": dst,
            **checkpoint,
        },
    )


def test_training_continues_and_saves_elsewhere(
    tmp_path, tiny_config, sample_csv, alphabet, caplog
):
    src, dst = str(tmp_path / "ds09"), str(tmp_path / "new")
    saved = write_ds09(src)
    before = digest(src)
    cfg = _config(tiny_config, sample_csv, src, dst)
    session = build_session(cfg, alphabet, make_strategy([]))
    with caplog.at_level(logging.INFO):
        result = train(session)
    assert np.isfinite(result.last_train_loss)
    assert digest(src) == before  # the source is never written
    assert tf.train.latest_checkpoint(dst)  # ours, in the new directory
    steps = int(session.state.global_step)
    assert steps > GLOBAL_STEP  # continued from 0.9's step count
    assert int(session.optimizer.iterations) == steps
    assert not np.allclose(
        session.model.layer_2.weights.numpy(), saved["layer_2/weights"]
    )
    logs = "\n".join(r.getMessage() for r in caplog.records)
    assert "loaded: layer_1/weights -> layer_1/weights:0" in logs
    assert "ignored: beta1_power" in logs
    assert "continue" in logs and "best checkpoint" in logs
    # a rerun resumes the new model (no second load from the source)
    caplog.clear()
    again = build_session(cfg, alphabet, make_strategy([]))
    with caplog.at_level(logging.INFO):
        train(again)
    assert "transfer: continuing the new model in" in caplog.text
    assert digest(src) == before


def test_new_alphabet_drops_the_output_layer(
    tmp_path, tiny_config, sample_csv, alphabet, caplog
):
    src, dst = str(tmp_path / "ds09"), str(tmp_path / "new")
    saved = write_ds09(src, n_classes=40)  # another alphabet's output layer
    cfg = _config(tiny_config, sample_csv, src, dst, drop_source_layers=1)
    with pytest.raises(ds09.DS09CheckpointError, match="layer_6/weights"):
        bad = _config(tiny_config, sample_csv, src, str(tmp_path / "x"))
        train(build_session(bad, alphabet, make_strategy([])))
    session = build_session(cfg, alphabet, make_strategy([]))
    with caplog.at_level(logging.INFO):
        train(session)
    assert "transfer: re-initialised layer_6 (--drop_source_layers 1)" in caplog.text
    assert "fresh optimizer" in caplog.text
    # a fresh optimizer: --learning_rate, not the checkpoint's 0.0005
    assert float(session.optimizer.learning_rate) == pytest.approx(0.003)
    assert session.model.layer_6.weights.shape == (N_HIDDEN, N_CLASSES)
    # layer_1 is loaded (and has trained one epoch from there)
    assert (
        np.corrcoef(
            session.model.layer_1.weights.numpy().ravel(),
            saved["layer_1/weights"].ravel(),
        )[0, 1]
        > 0.9
    )


def test_source_dir_is_never_written(tmp_path, tiny_config, sample_csv, alphabet):
    src = str(tmp_path / "ds09")
    write_ds09(src)
    before = digest(src)
    cfg = _config(tiny_config, sample_csv, src, src)
    session = build_session(cfg, alphabet, make_strategy([]))
    with pytest.raises(transfer.TransferError, match="another --save_checkpoint_dir"):
        train(session)
    assert digest(src) == before


def test_test_and_export_read_the_ds09_weights(tmp_path, tiny_config, alphabet):
    """--checkpoint_dir at a 0.9 directory: the evaluation restore loads its weights."""
    src = str(tmp_path / "ds09")
    saved = write_ds09(src)
    cfg = tiny_config(
        model={"n_hidden": N_HIDDEN, "bidirectional": False},
        checkpoint={"load_checkpoint_dir": src, "save_checkpoint_dir": src},
    )
    session = build_session(cfg, alphabet, make_strategy([]))
    assert session.checkpoints.restore_for_evaluation().endswith("best_dev-2")
    np.testing.assert_array_equal(
        session.model.layer_5.weights.numpy(), saved["layer_5/weights"]
    )


def test_found_without_state_files(tmp_path):
    """A directory whose state files were lost (or never copied) is still found."""
    src = str(tmp_path / "ds09")
    write_ds09(src)
    os.remove(os.path.join(src, ds09.BEST_STATE))
    os.remove(os.path.join(src, ds09.LAST_STATE))
    assert ds09.is_ds09_dir(src)
    assert os.path.basename(ds09.choose(src, "auto")[1]) == f"best_dev-{GLOBAL_STEP}"
    assert os.path.basename(ds09.choose(src, "last")[1]) == f"train-{GLOBAL_STEP}"
    assert not ds09.is_ds09_dir(str(tmp_path))  # no checkpoint at all


@pytest.mark.slow
def test_cli_command_of_the_docs(tmp_path, repo_root, ldc93s1_wav):
    """doc/TRAINING.rst's command: continue a 0.9 checkpoint, test the new model."""
    from helpers import run_deepspeech

    src, dst = str(tmp_path / "deepspeech-0.9.3-checkpoint"), str(tmp_path / "new")
    write_ds09(src)
    before = digest(src)
    csv_path = tmp_path / "ldc93s1.csv"
    csv_path.write_text(
        "wav_filename,wav_filesize,transcript\n"
        f"{ldc93s1_wav},{os.path.getsize(ldc93s1_wav)},she had your dark suit\n",
        encoding="utf-8",
    )
    result = run_deepspeech(
        repo_root,
        ["--train_files", str(csv_path), "--test_files", str(csv_path),
         "--load_checkpoint_dir", src + "/", "--save_checkpoint_dir", dst + "/",
         "--bidirectional=false", "--n_hidden", str(N_HIDDEN), "--epochs", "1",
         "--show_progressbar=false", "--summary_dir", str(tmp_path / "sum")],
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "DeepSpeech 0.9 best checkpoint" in result.stderr
    assert f"global_step {GLOBAL_STEP}" in result.stderr
    assert os.path.exists(os.path.join(dst, f"train-{GLOBAL_STEP + 1}.index"))
    assert "WER" in result.stdout
    assert digest(src) == before
