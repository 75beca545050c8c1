#!/usr/bin/env python3
"""Training throughput: audio seconds per wall second of the real train step.

Feeds synthetic MFCC batches (uniform 5-15 s utterances, 20 ms frames) straight to
``util.steps.Steps.train_step`` - the exact step ``DeepSpeech.py`` runs - so the number
measures the model, CTC and Adam, not audio decoding (the tf.data pipeline decodes and
featurises in parallel, ahead of the step). Also measures the machine's fp32 matmul
ceiling and reports the fraction of it the step achieves, counting the model's matmul
FLOPs (forward x 3 for forward + backward).

    python bench/train_throughput.py --n_hidden 2048 --bidirectional=false

On a GPU (doc/GPU.rst): ``--device gpu`` runs the same step there, with
``--train_cudnn`` on by default (as DeepSpeech.py decides it) and optionally
``--automatic_mixed_precision``, and adds what a user compares with published numbers:
audio-hours trained per hour per GPU, median step time and peak GPU memory. Without a
visible GPU it says so and measures the CPU instead.

    python bench/train_throughput.py --device gpu --batch_size 64 \
        --automatic_mixed_precision
"""

import os
import resource
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from util import cpu_settings  # noqa: E402  (no TensorFlow)

cpu_settings.apply()  # the program's own CPU settings, as DeepSpeech.py applies them

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from util import devices  # noqa: E402
from util.config import DeviceConfig, ModelConfig  # noqa: E402
from util.devices import resolve  # noqa: E402
from util.model import DeepSpeechModel, trainable_variables  # noqa: E402
from util.optimizer import Adam  # noqa: E402
from util.steps import Steps  # noqa: E402

flags.DEFINE_integer("n_hidden", 2048, "model width")
flags.DEFINE_boolean("bidirectional", False, "bidirectional LSTM")
flags.DEFINE_integer("batch_size", 16, "utterances per step")
flags.DEFINE_float("min_s", 5.0, "shortest synthetic utterance (s)")
flags.DEFINE_float("max_s", 15.0, "longest synthetic utterance (s)")
flags.DEFINE_integer("steps", 4, "measured steps (after one warm-up)")
flags.DEFINE_boolean("jit", False, "XLA-compile the train step")
flags.DEFINE_integer("label_len", 60, "characters per synthetic transcript")
flags.DEFINE_enum("device", "cpu", ["cpu", "gpu"], "where the step runs")
flags.DEFINE_boolean("train_cudnn", None, "cuDNN LSTM (default: on with --device gpu)")
flags.DEFINE_boolean("automatic_mixed_precision", False, "16-bit compute")
flags.DEFINE_enum(
    "mixed_precision_dtype", "auto", ["auto", "float16", "bfloat16"], "16-bit type"
)
flags.DEFINE_integer("warmup", 1, "unmeasured steps first (tracing, cuDNN autotune)")
flags.DEFINE_integer("inter_op_parallelism_threads", 0, "0: chosen for this CPU")
flags.DEFINE_integer("intra_op_parallelism_threads", 0, "0: chosen for this CPU")
FLAGS = flags.FLAGS

N_MFCC = 26
N_CLASSES = 29
FRAME_S = 0.02


def matmul_ceiling(dtype: tf.DType = tf.float32) -> float:
    """Median GFLOP/s of a large square-ish matmul in ``dtype`` on this device."""
    a = tf.cast(tf.random.normal([2048, 2048]), dtype)
    b = tf.cast(tf.random.normal([2048, 4096]), dtype)
    f = tf.function(tf.matmul)
    f(a, b).numpy()
    times = []
    for _ in range(7):
        t = time.perf_counter()
        f(a, b).numpy()
        times.append(time.perf_counter() - t)
    return 2 * 2048 * 2048 * 4096 / statistics.median(times) / 1e9


def flops_per_frame(cfg: ModelConfig) -> float:
    """Matmul FLOPs of one training frame: forward x 3 (forward + 2 backward)."""
    h, d = cfg.n_hidden, 2 if cfg.bidirectional else 1
    macs = cfg.window_frames * N_MFCC * h + 2 * h * h  # layers 1-3
    macs += d * 4 * h * (h + h)  # LSTM input + recurrent
    macs += d * h * h + h * N_CLASSES  # layers 5, 6
    return 3 * 2 * macs


def synthetic_batches(rng: np.random.Generator, batch: int, n_batches: int) -> list:
    """Length-bucketed batches, as util/feeding.batch_plan makes them: draw
    batch * n_batches utterance lengths, sort, cut into batches, visit in random order.
    """
    seconds = np.sort(rng.uniform(FLAGS.min_s, FLAGS.max_s, batch * n_batches))
    chunks = [seconds[i * batch : (i + 1) * batch] for i in rng.permutation(n_batches)]
    return [synthetic_batch(rng, chunk) for chunk in chunks]


def synthetic_batch(rng: np.random.Generator, seconds: np.ndarray) -> dict:
    batch = len(seconds)
    lengths = (seconds / FRAME_S).astype(np.int32)
    t = int(lengths.max())
    features = rng.standard_normal((batch, t, N_MFCC)).astype(np.float32) * 10
    features *= np.arange(t)[None, :, None] < lengths[:, None, None]
    labels = rng.integers(0, N_CLASSES - 1, (batch, FLAGS.label_len)).astype(np.int32)
    return {
        "features": tf.constant(features),
        "features_len": tf.constant(lengths),
        "labels": tf.constant(labels),
        "labels_len": tf.fill([batch], FLAGS.label_len),
        "index": tf.range(batch, dtype=tf.int32),
        "skipped": tf.zeros([batch], tf.bool),
    }


def pick_device() -> DeviceConfig:
    """The DeviceConfig DeepSpeech.py would resolve; hides GPUs for --device cpu."""
    gpus = tf.config.list_physical_devices("GPU")
    if FLAGS.device == "cpu" and gpus:
        tf.config.set_visible_devices([], "GPU")
        gpus = []
    elif FLAGS.device == "gpu" and not gpus:
        print(
            "--device gpu: TensorFlow sees no GPU (tensorflow-cpu installed, or no "
            "CUDA driver; see doc/GPU.rst): measuring on the CPU instead"
        )
    requested = DeviceConfig(
        train_cudnn=FLAGS.train_cudnn,
        automatic_mixed_precision=FLAGS.automatic_mixed_precision,
        mixed_precision_dtype=FLAGS.mixed_precision_dtype,
    )
    return resolve(requested, len(gpus), FLAGS.jit)


def main(_) -> None:
    threads = devices.set_threads(
        FLAGS.inter_op_parallelism_threads, FLAGS.intra_op_parallelism_threads
    )
    print(threads.summary(), flush=True)
    device = pick_device()
    on_gpu = bool(tf.config.list_logical_devices("GPU"))
    cfg = ModelConfig(n_hidden=FLAGS.n_hidden, bidirectional=FLAGS.bidirectional)
    model = DeepSpeechModel(cfg, N_MFCC, N_CLASSES, seed=1)
    steps = Steps(
        model,
        Adam(trainable_variables(model), 1e-4),
        tf.distribute.get_strategy(),
        jit=FLAGS.jit,
        cudnn=device.train_cudnn,
        compute_dtype=device.compute_dtype,
    )
    rng = np.random.default_rng(0)
    batches = synthetic_batches(rng, FLAGS.batch_size, FLAGS.steps + FLAGS.warmup)
    rates, frames_per_s, step_s = [], [], []
    for i, batch in enumerate(batches):
        t = time.perf_counter()
        loss, _ = steps.train_step(batch, tf.constant([0, i], tf.int32))
        loss.numpy()
        wall = time.perf_counter() - t
        frames = float(tf.reduce_sum(batch["features_len"]))
        if i >= FLAGS.warmup:  # the first step traces and warms up
            rates.append(frames * FRAME_S / wall)
            frames_per_s.append(frames / wall)
            step_s.append(wall)
    ceiling = matmul_ceiling(tf.as_dtype(device.compute_dtype))
    achieved = statistics.median(frames_per_s) * flops_per_frame(cfg) / 1e9
    kind = "bi" if cfg.bidirectional else "uni"
    where = "GPU" if on_gpu else "CPU"
    print(
        f"{where} n_hidden {cfg.n_hidden} {kind} batch {FLAGS.batch_size} "
        f"jit {FLAGS.jit} cudnn {device.train_cudnn} {device.compute_dtype}: "
        f"median {statistics.median(rates):.2f} audio-s/s "
        f"(steps: {', '.join(f'{r:.2f}' for r in rates)}); "
        f"model {achieved:.0f} GFLOP/s = {100 * achieved / ceiling:.0f}% of "
        f"{device.compute_dtype} matmul ceiling {ceiling:.0f} GFLOP/s; "
        f"peak RSS {peak_rss_gib():.1f} GiB"
    )
    rate = statistics.median(rates)  # audio-s per s = audio-h per h
    memory = f"peak GPU memory {peak_gpu_gib():.2f} GiB" if on_gpu else "no GPU"
    print(
        f"per {where}: {rate:.1f} audio-hours per hour; "
        f"median step {statistics.median(step_s):.3f} s "
        f"({FLAGS.batch_size} x {FLAGS.min_s:g}-{FLAGS.max_s:g} s); {memory}; "
        f"960 h of LibriSpeech: {960 / rate:.1f} h per epoch on one {where}"
    )


def peak_gpu_gib() -> float:
    """Peak memory TensorFlow's allocator held on GPU:0 during the run."""
    return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**30


def peak_rss_gib() -> float:
    """Peak resident memory of this process (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


if __name__ == "__main__":
    app.run(main)
