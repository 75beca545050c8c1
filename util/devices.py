"""Device settings at the edge: threads, GPU memory growth, and the ``auto`` choices.

``configure`` runs once in ``DeepSpeech.py`` before TensorFlow initialises its devices
(thread pools and memory growth cannot change afterwards), sets the thread pools
``util/cpu_settings.py`` chose for this CPU (the flags win) and logs that choice, then
records the resolved ``--train_cudnn`` and ``--mixed_precision_dtype`` in the Config,
so config.json and the log say what ran. ``resolve`` is the pure rule (doc/GPU.rst).
"""

import dataclasses
import os

import tensorflow as tf
from absl import logging

from util import cpu_settings
from util.config import Config, DeviceConfig


def resolve(device: DeviceConfig, n_gpus: int, jit: bool) -> DeviceConfig:
    """``device`` with its automatic values decided for ``n_gpus`` visible GPUs.

    train_cudnn None: on when a GPU is visible, unless ``--jit`` asks for XLA, which
    cannot compile cuDNN's RNN op. Explicit ``--train_cudnn --jit`` is an error.
    mixed_precision_dtype auto: float16 on a GPU (tensor cores from Volta on, with
    loss scaling), bfloat16 on a CPU (no loss scaling; AVX-512 BF16 / AMX machines
    run it natively).
    """
    if device.train_cudnn and jit:
        raise ValueError(
            "--train_cudnn and --jit: XLA cannot compile cuDNN's RNN kernel; pass "
            "--notrain_cudnn to use XLA, or drop --jit"
        )
    train_cudnn = device.train_cudnn
    if train_cudnn is None:
        train_cudnn = n_gpus > 0 and not jit
    dtype = device.mixed_precision_dtype
    if dtype == "auto":
        dtype = "float16" if n_gpus else "bfloat16"
    return dataclasses.replace(
        device, train_cudnn=train_cudnn, mixed_precision_dtype=dtype
    )


def configure(cfg: Config) -> Config:
    """Apply thread counts and memory growth, resolve and log; returns the new Config.

    Raises RuntimeError (from TensorFlow) if its devices are already initialised.
    """
    device = cfg.device
    cpu = set_threads(
        device.inter_op_parallelism_threads, device.intra_op_parallelism_threads
    )
    logging.info("%s", cpu.summary())
    gpus = tf.config.list_physical_devices("GPU")
    if device.use_allow_growth:
        for gpu in gpus:
            tf.config.experimental.set_memory_growth(gpu, True)
    if device.log_placement:  # DeepSpeech 0.9's --log_placement
        tf.debugging.set_log_device_placement(True)
    resolved = resolve(device, len(gpus), cfg.train.jit)
    _log(resolved, len(gpus))
    return dataclasses.replace(cfg, device=resolved)


def set_threads(inter_op_threads: int = 0, intra_op_threads: int = 0):
    """Set TensorFlow's thread pools as util/cpu_settings.py decides; returns the
    CpuSettings (the flags' values, when non-zero, win). Before TF initialises."""
    settings = cpu_settings.applied()
    if settings is None:  # the program did not call apply(): say what TF runs with
        settings = cpu_settings.CpuSettings(
            cpu_settings.detect(),
            (),
            0,
            0,
            (
                "environment not chosen (cpu_settings.apply() did not run before "
                f"TensorFlow was imported); {cpu_settings.ONEDNN_ENV}="
                f"{os.environ.get(cpu_settings.ONEDNN_ENV, 'unset')}",
            ),
        )
    settings = cpu_settings.with_threads(settings, inter_op_threads, intra_op_threads)
    try:
        if settings.inter_op_threads:
            tf.config.threading.set_inter_op_parallelism_threads(
                settings.inter_op_threads
            )
        if settings.intra_op_threads:
            tf.config.threading.set_intra_op_parallelism_threads(
                settings.intra_op_threads
            )
    except RuntimeError:  # TensorFlow already runs (a library caller, a test)
        if inter_op_threads or intra_op_threads:
            raise  # the user's flags cannot be honoured: say so
        return dataclasses.replace(
            settings,
            inter_op_threads=0,
            intra_op_threads=0,
            reasons=settings.reasons
            + ("TensorFlow already initialised: its thread pools kept",),
        )
    return settings


def _log(device: DeviceConfig, n_gpus: int) -> None:
    if device.train_cudnn:
        kernel = "cuDNN kernels" if n_gpus else "cuDNN-compatible math on the CPU"
    else:
        kernel = "default LSTM loop (util/lstm.py)"
    logging.info(
        "devices: %d GPU(s) visible; recurrent layers: %s; compute dtype %s%s",
        n_gpus,
        kernel,
        device.compute_dtype,
        " with dynamic loss scaling" if device.compute_dtype == "float16" else "",
    )
    if device.load_cudnn:
        logging.info(
            "--load_cudnn: nothing to convert; checkpoints trained with --train_cudnn "
            "hold the same variables as the default path"
        )
