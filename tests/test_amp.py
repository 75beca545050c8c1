"""``--automatic_mixed_precision``: 16-bit compute, float32 variables, loss scaling.

The slow test trains LDC93S1 in bfloat16 on the CPU to the exact transcript (measured:
200 epochs, n_hidden 100, ~100 s on the 2-core reference machine, test loss 0.045).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from util.config import DeviceConfig
from util.distributed import make_strategy
from util.model import trainable_variables
from util.optimizer import DynamicLossScale
from util.training import build_session, train

LDC93S1_TEXT = "she had your dark suit in greasy wash water all year"


def _amp_config(tiny_config, sample_csv, dtype: str, epochs: int = 1):
    return tiny_config(
        data={"train_files": (sample_csv(),)},
        train={"epochs": epochs},
        device={"automatic_mixed_precision": True, "mixed_precision_dtype": dtype},
    )


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_amp_trains_float32_variables(tiny_config, alphabet, sample_csv, dtype):
    # float16 starts at loss scale 2^15; this tiny model overflows until 2^9 (6 skipped
    # steps), so it trains 4 epochs of 3 steps.
    cfg = _amp_config(tiny_config, sample_csv, dtype, epochs=4)
    session = build_session(cfg, alphabet, make_strategy([]))
    before = [v.numpy().copy() for v in trainable_variables(session.model)]
    result = train(session)
    assert np.isfinite(result.last_train_loss)
    after = trainable_variables(session.model)
    assert all(v.dtype == tf.float32 for v in after)
    assert any(not np.array_equal(a, v.numpy()) for a, v in zip(before, after))
    assert (session.steps.loss_scale is not None) == (dtype == "float16")


def test_amp_checkpoint_evaluates_in_float32(tiny_config, alphabet, sample_csv):
    """Export and evaluation read the same float32 checkpoint: nothing to convert."""
    cfg = _amp_config(tiny_config, sample_csv, "bfloat16")
    trained = build_session(cfg, alphabet, make_strategy([]))
    train(trained)
    plain = dataclasses.replace(cfg, device=DeviceConfig())
    session = build_session(plain, alphabet, make_strategy([]))
    session.checkpoints.restore_for_evaluation()
    features = tf.random.stateless_normal([1, 40, 26], [1, 2])
    lengths = tf.constant([40])
    full = session.model(features, lengths)
    half = trained.model(tf.cast(features, tf.bfloat16), lengths)
    assert full.dtype == tf.float32 and half.dtype == tf.bfloat16
    # bfloat16 keeps 8 significant bits: the two agree to about 1 %.
    scale = float(tf.reduce_max(tf.abs(full)))
    assert float(tf.reduce_max(tf.abs(full - tf.cast(half, tf.float32)))) < 0.05 * scale


def test_loss_scale_halves_on_overflow_and_grows_after_good_steps():
    scale = DynamicLossScale(initial=8.0, growth_steps=3)
    scale.update(tf.constant(False))
    assert float(scale.scale.numpy()) == 4.0
    for _ in range(2):
        scale.update(tf.constant(True))
    assert float(scale.scale.numpy()) == 4.0
    scale.update(tf.constant(True))
    assert float(scale.scale.numpy()) == 8.0 and int(scale.good_steps.numpy()) == 0
    grads = scale.unscale([tf.constant([16.0])])
    assert float(grads[0][0]) == 2.0


def test_float16_overflow_skips_the_update_and_lowers_the_scale(
    tiny_config, alphabet, sample_csv, caplog
):
    cfg = _amp_config(tiny_config, sample_csv, "float16")
    session = build_session(cfg, alphabet, make_strategy([]))
    session.steps.loss_scale.scale.assign(3e38)  # loss * scale overflows float32
    before = [v.numpy().copy() for v in trainable_variables(session.model)]
    result = train(session)
    assert np.isfinite(result.last_train_loss)
    # 3 steps, 3 overflows: every update skipped, the scale halved each time.
    assert float(session.steps.loss_scale.scale.numpy()) == pytest.approx(3e38 / 8)
    assert int(session.optimizer.iterations.numpy()) == 0
    after = trainable_variables(session.model)
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(before, after))
    # Overflows are the loss scale's business, not bad batches: no warning.
    assert not [r for r in caplog.records if "skipped a weight update" in r.message]


@pytest.mark.slow
def test_bfloat16_overfits_ldc93s1(repo_root, tmp_path):
    run = tmp_path / "ldc"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    subprocess.run(
        [sys.executable, "bin/import_ldc93s1.py", str(run)],
        cwd=repo_root, env=env, check=True, capture_output=True,
    )  # fmt: skip
    csv_path = str(run / "ldc93s1.csv")
    result = subprocess.run(
        [sys.executable, "DeepSpeech.py", "--train_files", csv_path,
         "--test_files", csv_path, "--n_hidden", "100", "--epochs", "200",
         "--learning_rate", "0.003", "--dropout_rate", "0",
         "--automatic_mixed_precision", "--mixed_precision_dtype", "bfloat16",
         "--checkpoint_dir", str(tmp_path / "ckpt"),
         "--summary_dir", str(tmp_path / "summaries"),
         "--show_progressbar=false", "--report_count", "1"],
        cwd=repo_root, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    assert "compute dtype bfloat16" in log
    assert "WER: 0.000000, CER: 0.000000" in result.stdout, log
    assert f' - res: "{LDC93S1_TEXT}"' in result.stdout
