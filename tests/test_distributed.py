"""Tests for util/distributed.py: strategy, batch math, mirrored == single device."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from util.distributed import global_batch_size, is_chief, make_strategy


def test_one_device_gives_the_default_strategy():
    assert make_strategy([]).num_replicas_in_sync == 1
    assert make_strategy(["/cpu:0"]).num_replicas_in_sync == 1
    assert make_strategy() is tf.distribute.get_strategy()  # no (or one) GPU here


class _Replicas:
    """Stands in for a strategy: only ``num_replicas_in_sync`` is read."""

    def __init__(self, n: int) -> None:
        self.num_replicas_in_sync = n


@pytest.mark.parametrize("per_replica, replicas, expected", [(3, 1, 3), (3, 4, 12)])
def test_global_batch_size_is_per_replica_times_replicas(
    per_replica, replicas, expected
):
    assert global_batch_size(per_replica, _Replicas(replicas)) == expected


def _cluster(task_type, index, jobs):
    return {
        "cluster": {job: ["h:1"] * 2 for job in jobs},
        "task": {"type": task_type, "index": index},
    }


@pytest.mark.parametrize(
    "cluster, chief",
    [
        (None, True),  # a single process
        (_cluster("chief", 0, ("chief", "worker")), True),
        (_cluster("worker", 0, ("chief", "worker")), False),  # a chief job exists
        (_cluster("worker", 0, ("worker",)), True),  # else worker 0
        (_cluster("worker", 1, ("worker",)), False),
        (_cluster("ps", 0, ("worker", "ps")), False),
    ],
)
def test_exactly_one_process_is_chief(cluster, chief):
    assert is_chief(cluster) is chief


MIRRORED_TRAINING_SCRIPT = r"""
import dataclasses, json, sys
import numpy as np
import pytest
from util.distributed import global_batch_size, make_strategy, split_cpu

split_cpu(2)  # before anything initialises TensorFlow's devices

from ctcdecode import Alphabet
from util.config import Config
from util.model import trainable_variables
from util.training import build_session, train

configs = json.loads(sys.argv[1])
out = {}
for name, devices in (("mirrored", ["/cpu:0", "/cpu:1"]), ("single", [])):
    cfg = Config.from_json(configs[name])
    strategy = make_strategy(devices)
    session = build_session(cfg, Alphabet(cfg.data.alphabet_config_path), strategy)
    initial = [v.numpy() for v in trainable_variables(session.model)]
    result = train(session)
    final = [v.numpy() for v in trainable_variables(session.model)]
    out[name] = {
        "replicas": strategy.num_replicas_in_sync,
        "global_batch": global_batch_size(cfg.data.train_batch_size, strategy),
        "steps": int(session.state.global_step.numpy()),
        "loss": result.last_train_loss,
        "moved": max(float(np.abs(a - b).max()) for a, b in zip(final, initial)),
        "weights": [w.tolist() for w in final],
    }
print(json.dumps(out))
"""


def test_mirrored_over_two_cpus_equals_single_device(
    tiny_config, sample_csv, run_python, tmp_path
):
    """3 steps on 2 replicas x 2 utterances == 3 steps on 1 device x 4 utterances.

    The four utterances differ in length, so each replica trims its slice to its own
    longest utterance: padding invariance and the global-batch loss scaling are both
    exercised. Dropout is off: its masks depend on the tensor shapes.

    Adam's epsilon is 1 here. With 1e-8, an element whose gradient is ~0 moves by
    ``lr * g / |g|``, about +-lr, whatever the size of g, so the round-off of a
    different summation order (two replicas, then an all-reduce) can move it by up to
    lr (we saw 3e-5 after 3 steps). A large epsilon keeps each update proportional to
    its gradient, so the comparison tests the distribution arithmetic, not round-off.
    """
    csv_path = sample_csv(("a", "ab", "abc", "b"))
    configs = {}
    for name, batch in (("mirrored", 2), ("single", 4)):
        directory = str(tmp_path / name)
        cfg = tiny_config(
            data={"train_files": (csv_path,), "train_batch_size": batch},
            train={
                "epochs": 3,
                "shuffle_batches": False,
                "learning_rate": 0.05,
                "epsilon": 1.0,
            },
            checkpoint={
                "load_checkpoint_dir": directory,
                "save_checkpoint_dir": directory,
            },
        )
        assert cfg.model.dropout_rate == 0.0
        configs[name] = cfg.to_json()
    code = MIRRORED_TRAINING_SCRIPT.replace(
        "json.loads(sys.argv[1])", repr(json.dumps(configs)).join(["json.loads(", ")"])
    )
    out = json.loads(run_python(code).stdout.strip().splitlines()[-1])
    mirrored, single = out["mirrored"], out["single"]
    assert (mirrored["replicas"], single["replicas"]) == (2, 1)
    assert mirrored["global_batch"] == single["global_batch"] == 4
    assert mirrored["steps"] == single["steps"] == 3
    assert np.isclose(mirrored["loss"], single["loss"], rtol=1e-5)
    assert single["moved"] > 1e-2  # the weights moved far more than the tolerance
    for got, want in zip(mirrored["weights"], single["weights"]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
