#!/usr/bin/env python3
"""DeepSpeech2 training throughput against the plain PyTorch peer, interleaved.

Our side feeds synthetic spectrogram batches (161 bins, 10 ms frames, fixed length)
straight to ``util.steps.Steps.train_step`` - the step ``DeepSpeech.py --model
deepspeech2`` runs: model, native CTC loss, Adam. The peer is
``bench/peers/torch_ds2_train.py`` (the same geometry in plain PyTorch: conv + BN +
ReLU6 twice, GRU layers with BN, BN + linear, CTC, Adam), run in a separate
interpreter that has torch (``--torch_python``; torch is never a project dependency).
Each round times ``--steps`` of ours, then ``--steps`` of the peer, so both sides see
the same machine load; the medians over all rounds are compared. Both wall time and
process CPU time per step are reported: on a machine shared with other jobs the wall
time of a multi-threaded step depends on how its threads get scheduled (PyTorch's
OpenMP threads suffer most), while CPU seconds per step measure the work each side
does. The peer runs unmodified; a wrapper records ``time.process_time()`` at each of
its ``time.perf_counter()`` calls (two per step).

    python bench/ds2_train_throughput.py --torch_python /work/torchvenv/bin/python \
        --geometries 800:5:bi,128:5:bi --batch_size 16 --seconds 10
"""

import os
import re
import statistics
import subprocess
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from util import cpu_settings  # noqa: E402  (no TensorFlow)

cpu_settings.apply()  # the program's own CPU settings, as DeepSpeech.py applies them

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from util import devices  # noqa: E402
from util.config import ModelConfig  # noqa: E402
from util.model import trainable_variables  # noqa: E402
from util.models import build_model  # noqa: E402
from util.optimizer import Adam  # noqa: E402
from util.steps import Steps  # noqa: E402

flags.DEFINE_string("torch_python", "", "a Python with torch for the peer ('': skip)")
flags.DEFINE_string(
    "geometries", "800:5:bi,128:5:bi", "rnn_hidden_size:rnn_layers:bi|uni, comma list"
)
flags.DEFINE_integer("batch_size", 16, "utterances per step")
flags.DEFINE_float("seconds", 10.0, "utterance length (s)")
flags.DEFINE_integer("steps", 2, "timed steps per side per round")
flags.DEFINE_integer("rounds", 2, "interleaved rounds")
flags.DEFINE_integer("inter_op_parallelism_threads", 0, "0: chosen for this CPU")
flags.DEFINE_integer("intra_op_parallelism_threads", 0, "0: chosen for this CPU")
FLAGS = flags.FLAGS

N_BINS = 161
N_CLASSES = 29
PEER = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "peers", "torch_ds2_train.py"
)


def synthetic_batch(rng: np.random.Generator) -> dict:
    """The peer's shapes: B x (seconds * 100) frames of 161 bins, 14 labels/s."""
    b, t = FLAGS.batch_size, int(FLAGS.seconds * 100)
    n_labels = int(FLAGS.seconds * 14)
    return {
        "features": tf.constant(rng.standard_normal((b, t, N_BINS)), tf.float32),
        "features_len": tf.fill([b], t),
        "labels": tf.constant(rng.integers(0, N_CLASSES - 1, (b, n_labels)), tf.int32),
        "labels_len": tf.fill([b], n_labels),
        "index": tf.range(b, dtype=tf.int32),
        "skipped": tf.zeros([b], tf.bool),
    }


# Runs the peer unmodified and prints the median CPU seconds of its timed steps.
_PEER_WRAPPER = r"""
import atexit, statistics, sys, time
wall, marks = time.perf_counter, []
def perf_counter():
    marks.append(time.process_time())
    return wall()
time.perf_counter = perf_counter
atexit.register(lambda: print("cpu step", statistics.median(
    [marks[i + 1] - marks[i] for i in range(2, len(marks) - 1, 2)])))
sys.argv = sys.argv[1:]
exec(compile(open(sys.argv[0]).read(), sys.argv[0], "exec"), {"__name__": "__main__"})
"""


def ours(steps: Steps, batch: dict, n: int, offset: int) -> list:
    """(wall s, CPU s) of ``n`` train steps."""
    times = []
    for i in range(n):
        t, c = time.perf_counter(), time.process_time()
        loss, _ = steps.train_step(batch, tf.constant([0, offset + i], tf.int32))
        loss.numpy()
        times.append((time.perf_counter() - t, time.process_time() - c))
    return times


def peer(hidden: int, layers: int, direction: str) -> tuple:
    """(median wall s, median CPU s) of the PyTorch peer's steps (first not timed)."""
    args = [str(hidden), str(layers), direction, str(FLAGS.batch_size)]
    args += [str(FLAGS.seconds), str(FLAGS.steps)]
    out = subprocess.run(
        [FLAGS.torch_python, "-c", _PEER_WRAPPER, PEER, *args],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    wall = re.search(r"median step ([0-9.]+) s", out)
    cpu = re.search(r"cpu step ([0-9.]+)", out)
    if wall is None or cpu is None:
        raise RuntimeError(f"unexpected peer output: {out!r}")
    return float(wall.group(1)), float(cpu.group(1))


def main(_) -> None:
    threads = devices.set_threads(
        FLAGS.inter_op_parallelism_threads, FLAGS.intra_op_parallelism_threads
    )
    print(threads.summary(), flush=True)
    rng = np.random.default_rng(0)
    batch = synthetic_batch(rng)
    audio_s = FLAGS.batch_size * FLAGS.seconds
    for geometry in FLAGS.geometries.split(","):
        hidden, layers, direction = geometry.split(":")
        cfg = ModelConfig(
            model="deepspeech2",
            rnn_hidden_size=int(hidden),
            rnn_layers=int(layers),
            bidirectional=direction == "bi",
        )
        model = build_model(cfg, N_BINS, N_CLASSES, seed=1)
        steps = Steps(
            model,
            Adam(trainable_variables(model), 5e-4),
            tf.distribute.get_strategy(),
        )
        ours(steps, batch, 1, 0)  # trace and warm up
        mine, theirs = [], []
        for r in range(FLAGS.rounds):
            mine += ours(steps, batch, FLAGS.steps, 1 + r * FLAGS.steps)
            if FLAGS.torch_python:
                theirs.append(peer(int(hidden), int(layers), direction))
        wall = statistics.median(t for t, _ in mine)
        cpu = statistics.median(c for _, c in mine)
        line = (
            f"DS2 {hidden}x{layers} {direction} batch {FLAGS.batch_size} x "
            f"{FLAGS.seconds:g} s: ours {audio_s / wall:.2f} audio-s/s, "
            f"{cpu:.2f} CPU-s/step (steps {', '.join(f'{t:.2f}' for t, _ in mine)} s)"
        )
        if theirs:
            peer_wall = statistics.median(t for t, _ in theirs)
            peer_cpu = statistics.median(c for _, c in theirs)
            line += (
                f"; torch {audio_s / peer_wall:.2f} audio-s/s, {peer_cpu:.2f} "
                f"CPU-s/step (round medians {', '.join(f'{t:.2f}' for t, _ in theirs)}"
                f" s); ratio wall {peer_wall / wall:.2f}x, CPU {peer_cpu / cpu:.2f}x"
            )
        print(line, flush=True)


if __name__ == "__main__":
    app.run(main)
