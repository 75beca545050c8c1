#!/usr/bin/env python3
"""Training throughput: audio seconds per wall second of the real train step.

Feeds synthetic MFCC batches (uniform 5-15 s utterances, 20 ms frames) straight to
``util.steps.Steps.train_step`` - the exact step ``DeepSpeech.py`` runs - so the number
measures the model, CTC and Adam, not audio decoding (the tf.data pipeline decodes and
featurises in parallel, ahead of the step). Also measures the machine's fp32 matmul
ceiling and reports the fraction of it the step achieves, counting the model's matmul
FLOPs (forward x 3 for forward + backward).

    python bench/train_throughput.py --n_hidden 2048 --bidirectional=false
"""

import os
import resource
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from util.config import ModelConfig  # noqa: E402
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
FLAGS = flags.FLAGS

N_MFCC = 26
N_CLASSES = 29
FRAME_S = 0.02


def matmul_ceiling() -> float:
    """Median fp32 GFLOP/s of a large square-ish matmul on this machine."""
    a = tf.random.normal([2048, 2048])
    b = tf.random.normal([2048, 4096])
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
    }


def main(_) -> None:
    cfg = ModelConfig(n_hidden=FLAGS.n_hidden, bidirectional=FLAGS.bidirectional)
    model = DeepSpeechModel(cfg, N_MFCC, N_CLASSES, seed=1)
    steps = Steps(
        model,
        Adam(trainable_variables(model), 1e-4),
        tf.distribute.get_strategy(),
        jit=FLAGS.jit,
    )
    rng = np.random.default_rng(0)
    batches = synthetic_batches(rng, FLAGS.batch_size, FLAGS.steps + 1)
    rates, frames_per_s = [], []
    for i, batch in enumerate(batches):
        t = time.perf_counter()
        loss, _ = steps.train_step(batch, tf.constant([0, i], tf.int32))
        loss.numpy()
        wall = time.perf_counter() - t
        frames = float(tf.reduce_sum(batch["features_len"]))
        if i:  # the first step traces and warms up
            rates.append(frames * FRAME_S / wall)
            frames_per_s.append(frames / wall)
    ceiling = matmul_ceiling()
    achieved = statistics.median(frames_per_s) * flops_per_frame(cfg) / 1e9
    kind = "bi" if cfg.bidirectional else "uni"
    print(
        f"n_hidden {cfg.n_hidden} {kind} batch {FLAGS.batch_size} jit {FLAGS.jit}: "
        f"median {statistics.median(rates):.2f} audio-s/s "
        f"(steps: {', '.join(f'{r:.2f}' for r in rates)}); "
        f"model {achieved:.0f} GFLOP/s = {100 * achieved / ceiling:.0f}% of "
        f"matmul ceiling {ceiling:.0f} GFLOP/s; peak RSS {peak_rss_gib():.1f} GiB"
    )


def peak_rss_gib() -> float:
    """Peak resident memory of this process (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


if __name__ == "__main__":
    app.run(main)
