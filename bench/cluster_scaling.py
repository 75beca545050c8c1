#!/usr/bin/env python3
"""Cluster scaling: samples/s of 1 worker vs W workers on loopback, same global batch.

Runs the real train step (``util.steps.Steps``, model, CTC, our Adam with its one
all-reduce) on synthetic MFCC batches, first in one process, then in ``--workers``
processes on 127.0.0.1 under ``MultiWorkerMirroredStrategy`` (what
``bin/run-cluster.sh`` starts). The global batch is the same, so the ratio of the
throughputs is the scaling. Each worker also times an all-reduce of the gradients
alone (same sizes and dtypes as the model's variables): the communication overhead a
step pays. On a CPU-only machine the workers share its cores (``--threads``
intra-op threads each, default cores / workers), so expect a ratio near 1 at best.

    python bench/cluster_scaling.py --workers 2 --n_hidden 256 --batch_size 16
"""

import json
import os
import socket
import statistics
import subprocess
import sys
import time

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

flags.DEFINE_integer("workers", 2, "workers of the cluster run")
flags.DEFINE_integer("n_hidden", 256, "model width")
flags.DEFINE_integer("batch_size", 16, "global batch (utterances per step)")
flags.DEFINE_float("utterance_s", 5.0, "length of each synthetic utterance (s)")
flags.DEFINE_integer("steps", 8, "measured steps (after two warm-up steps)")
flags.DEFINE_integer("threads", 0, "intra-op threads per worker (0: cores / workers)")
flags.DEFINE_boolean("worker", False, "internal: measure in this process")
flags.DEFINE_string("worker_hosts", "", "internal: the cluster of the worker processes")
flags.DEFINE_integer("task_index", 0, "internal: this worker's index")
FLAGS = flags.FLAGS

N_MFCC = 26
N_CLASSES = 29
FRAME_S = 0.02


def worker() -> dict:
    """One process of the measurement; returns its timings."""
    import tensorflow as tf

    from util import distributed
    from util.config import ClusterConfig, ModelConfig

    threads = FLAGS.threads or max(1, os.cpu_count() // max(FLAGS.workers, 1))
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    hosts = tuple(FLAGS.worker_hosts.split(",")) if FLAGS.worker_hosts else ()
    cluster_cfg = ClusterConfig(worker_hosts=hosts, task_index=FLAGS.task_index)
    cluster = distributed.tf_config(cluster_cfg, {})
    strategy = distributed.make_strategy(cluster=cluster, timeouts=cluster_cfg)

    from util.model import DeepSpeechModel, trainable_variables
    from util.optimizer import Adam
    from util.steps import Steps

    with strategy.scope():
        model = DeepSpeechModel(
            ModelConfig(n_hidden=FLAGS.n_hidden, dropout_rate=0.0), N_MFCC, N_CLASSES
        )
        optimizer = Adam(trainable_variables(model), 1e-4)
    steps = Steps(model, optimizer, strategy)
    batch = synthetic_batch(tf)
    seed = tf.constant([1, 2], tf.int32)
    step_s = timed(lambda: steps.train_step(batch, seed)[0].numpy())
    result = {"threads": threads, "step_s": step_s}
    if cluster is not None:
        result["all_reduce_s"] = all_reduce_time(tf, strategy, steps.variables)
    return result


def synthetic_batch(tf) -> dict:
    """A global batch of equal-length utterances (features, labels, lengths, index)."""
    n, frames = FLAGS.batch_size, int(FLAGS.utterance_s / FRAME_S)
    rng = tf.random.Generator.from_seed(0)
    return {
        "features": rng.normal([n, frames, N_MFCC]),
        "features_len": tf.fill([n], frames),
        "labels": rng.uniform([n, 40], 0, N_CLASSES - 1, tf.int32),
        "labels_len": tf.fill([n], 40),
        "index": tf.range(n),
        "skipped": tf.zeros([n], tf.bool),
    }


def all_reduce_time(tf, strategy, variables) -> float:
    """Median seconds of an all-reduce of gradient-shaped tensors over the cluster."""
    zeros = [tf.zeros_like(v) for v in variables]

    @tf.function
    def reduce():
        def replica():
            ctx = tf.distribute.get_replica_context()
            return ctx.all_reduce(tf.distribute.ReduceOp.SUM, zeros)[0]

        return strategy.run(replica)

    return timed(lambda: strategy.experimental_local_results(reduce())[0].numpy())


def timed(fn) -> float:
    for _ in range(2):
        fn()
    times = []
    for _ in range(FLAGS.steps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def free_hosts(n: int) -> list:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    hosts = [f"127.0.0.1:{s.getsockname()[1]}" for s in socks]
    for s in socks:
        s.close()
    return hosts


def launch(n_workers: int) -> list:
    """Run the measurement in ``n_workers`` processes; their results, task order."""
    common = [sys.executable, os.path.abspath(__file__)] + [
        f"--{name}={getattr(FLAGS, name)}"
        for name in ("n_hidden", "batch_size", "utterance_s", "steps")
    ]
    common += [f"--workers={n_workers}", "--worker"]
    if FLAGS.threads:
        common.append(f"--threads={FLAGS.threads}")
    hosts = free_hosts(n_workers) if n_workers > 1 else []
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    procs = [
        subprocess.Popen(
            common + ([f"--worker_hosts={','.join(hosts)}", f"--task_index={i}"]
                      if hosts else []),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
        )
        for i in range(n_workers)
    ]  # fmt: skip
    outs = [p.communicate(timeout=900)[0] for p in procs]
    if any(p.returncode for p in procs):
        raise RuntimeError(f"a worker failed: {outs}")
    return [json.loads(out.strip().splitlines()[-1]) for out in outs]


def main(argv) -> None:
    del argv
    if FLAGS.worker:
        print(json.dumps(worker()), flush=True)
        return
    audio_s = FLAGS.batch_size * FLAGS.utterance_s
    one = launch(1)[0]
    many = launch(FLAGS.workers)
    step_s = max(r["step_s"] for r in many)
    reduce_s = statistics.median(r["all_reduce_s"] for r in many)
    print(
        f"n_hidden {FLAGS.n_hidden}, global batch {FLAGS.batch_size} x "
        f"{FLAGS.utterance_s:g} s, {os.cpu_count()} cores\n"
        f"1 worker  ({one['threads']} threads): {one['step_s'] * 1e3:7.1f} ms/step, "
        f"{FLAGS.batch_size / one['step_s']:6.1f} samples/s, "
        f"{audio_s / one['step_s']:6.1f} audio-s/s\n"
        f"{FLAGS.workers} workers ({many[0]['threads']} threads each): "
        f"{step_s * 1e3:7.1f} ms/step, {FLAGS.batch_size / step_s:6.1f} samples/s, "
        f"{audio_s / step_s:6.1f} audio-s/s\n"
        f"scaling {one['step_s'] / step_s:.2f}x; gradient all-reduce alone "
        f"{reduce_s * 1e3:.1f} ms/step ({reduce_s / step_s:.1%} of a step)"
    )


if __name__ == "__main__":
    app.run(main)
