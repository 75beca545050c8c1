"""Tests for util/devices.py: the edge's thread, memory and ``auto`` settings."""

from __future__ import annotations

import pytest

from util.config import DeviceConfig
from util.devices import resolve


@pytest.mark.parametrize(
    "n_gpus, jit, flag, expected",
    [
        (0, False, None, False),  # CPU: default LSTM loop
        (1, False, None, True),  # a GPU is visible: cuDNN
        (1, True, None, False),  # --jit: XLA cannot compile cuDNN's op
        (0, False, True, True),  # forced on a CPU: same math, CPU kernels
        (4, False, False, False),
    ],
)
def test_train_cudnn_auto(n_gpus, jit, flag, expected):
    assert resolve(DeviceConfig(train_cudnn=flag), n_gpus, jit).train_cudnn is expected


def test_train_cudnn_with_jit_is_an_error_naming_both_flags():
    with pytest.raises(ValueError, match="--train_cudnn and --jit"):
        resolve(DeviceConfig(train_cudnn=True), 1, jit=True)


def test_mixed_precision_dtype_auto():
    amp = DeviceConfig(automatic_mixed_precision=True)
    assert resolve(amp, 1, False).compute_dtype == "float16"
    assert resolve(amp, 0, False).compute_dtype == "bfloat16"
    assert resolve(DeviceConfig(), 0, False).compute_dtype == "float32"
    chosen = DeviceConfig(
        automatic_mixed_precision=True, mixed_precision_dtype="bfloat16"
    )
    assert resolve(chosen, 8, False).compute_dtype == "bfloat16"
    with pytest.raises(ValueError, match="resolved at start-up"):
        amp.compute_dtype


def test_configure_sets_threads_before_tensorflow_starts(run_python):
    """Thread pools can only be sized before TF initialises: a fresh interpreter."""
    code = """
import dataclasses
import tensorflow as tf
from util.config import Config, DeviceConfig
from util.devices import configure
device = DeviceConfig(inter_op_parallelism_threads=3, intra_op_parallelism_threads=2,
                      use_allow_growth=True)
cfg = configure(dataclasses.replace(Config(), device=device))
print(tf.config.threading.get_inter_op_parallelism_threads(),
      tf.config.threading.get_intra_op_parallelism_threads(), cfg.device.train_cudnn)
"""
    assert run_python(code).stdout.split() == ["3", "2", "False"]


def test_set_threads_after_tensorflow_started_keeps_its_pools_unless_asked():
    import tensorflow as tf

    from util import devices

    tf.constant(1.0) + 1.0  # TensorFlow's context is initialised
    current = tf.config.threading.get_inter_op_parallelism_threads()
    kept = devices.set_threads()
    assert "its thread pools kept" in kept.summary() or kept.inter_op_threads == current
    with pytest.raises(RuntimeError):
        devices.set_threads(inter_op_threads=current + 7)
