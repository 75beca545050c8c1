"""Multi-worker training on loopback: util/distributed.py's cluster path, end to end.

Each worker is a subprocess (a cluster needs TF uninitialised, and one process per
task); ports are free loopback ports; every wait is bounded.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Dict, List

import numpy as np
import pytest
import tensorflow as tf

from util.config import ClusterConfig
from util.distributed import describe_failure, is_chief, make_strategy, tf_config
from util.model import trainable_variables
from util.training import build_session, train

WAIT_S = 240  # upper bound on any subprocess wait


def free_hosts(n: int) -> List[str]:
    """``n`` distinct free loopback host:port (bound together, then released)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [f"127.0.0.1:{s.getsockname()[1]}" for s in socks]
    finally:
        for s in socks:
            s.close()


# --- the cluster description, without starting anything ----------------------------


def test_flags_become_tf_config():
    cfg = ClusterConfig(worker_hosts=("a:1", "b:2"), task_index=1)
    cluster = tf_config(cfg, {"TF_CONFIG": '{"ignored": 1}'})
    assert cluster == {
        "cluster": {"worker": ["a:1", "b:2"]},
        "task": {"type": "worker", "index": 1},
    }
    assert not is_chief(cluster)
    assert is_chief(tf_config(ClusterConfig(worker_hosts=("a:1", "b:2")), {}))


def test_tf_config_from_the_environment():
    env = {
        "TF_CONFIG": json.dumps(
            {
                "cluster": {"chief": ["c:1"], "worker": ["w:2"]},
                "task": {"type": "worker", "index": 0},
            }
        )
    }
    cluster = tf_config(ClusterConfig(), env)
    assert cluster["cluster"]["chief"] == ["c:1"]
    assert not is_chief(cluster)  # the 'chief' task is, not worker 0
    assert tf_config(ClusterConfig(), {}) is None
    one = {"TF_CONFIG": '{"cluster": {"worker": ["w:2"]}, "task": {"type": "worker"}}'}
    assert tf_config(ClusterConfig(), one) is None  # one worker trains alone
    assert is_chief(None)


def test_parameter_servers_are_explained():
    with pytest.raises(ValueError, match="parameter-server training is not supported"):
        ClusterConfig(worker_hosts=("a:1",), ps_hosts=("p:1",))
    with pytest.raises(ValueError, match="parameter-server"):
        ClusterConfig(job_name="ps")
    env = {
        "TF_CONFIG": '{"cluster": {"ps": ["p:1"], "worker": ["a:1", "b:1"]}, '
        '"task": {"type": "worker", "index": 0}}'
    }
    with pytest.raises(ValueError, match="'ps' job"):
        tf_config(ClusterConfig(), env)


def test_cluster_flag_validation():
    with pytest.raises(ValueError, match="--task_index 2"):
        ClusterConfig(worker_hosts=("a:1", "b:2"), task_index=2)
    with pytest.raises(ValueError, match="not host:port"):
        ClusterConfig(worker_hosts=("a",))
    assert ClusterConfig(job_name="localhost").job_name == "localhost"  # DeepSpeech's


def test_failure_names_the_peer():
    cluster = tf_config(ClusterConfig(worker_hosts=("h0:1", "h1:2"), task_index=0), {})
    err = tf.errors.UnavailableError(
        None,
        None,
        "Collective ops is aborted by: The following tasks are unhealthy (stopped "
        "sending heartbeats):\n/job:worker/replica:0/task:1\n[[node on "
        "/job:worker/replica:0/task:0/device:CPU:0]]",
    )
    message = describe_failure(err, cluster)
    assert "worker 1 (h1:2)" in message and "worker 0" not in message
    assert "stopped sending heartbeats" in message


# --- two workers on loopback ----------------------------------------------------------

WORKER_SCRIPT = r"""
import json, os, sys
import numpy as np
from util import distributed
from util.config import ClusterConfig, Config

timeouts = ClusterConfig(heartbeat_timeout_s=10, collective_timeout_s=120,
                         cluster_start_timeout_s=120)
cluster = distributed.tf_config(timeouts, os.environ)
strategy = distributed.make_strategy(cluster=cluster, timeouts=timeouts)

from ctcdecode import Alphabet
from util.model import trainable_variables
from util.training import build_session, train

cfg = Config.from_json(open(sys.argv[1]).read())
chief = distributed.is_chief(cluster)
session = build_session(cfg, Alphabet(cfg.data.alphabet_config_path), strategy, chief)
result = train(session)
session.checkpoints.close()
np.savez(sys.argv[2], *[v.numpy() for v in trainable_variables(session.model)])
print(json.dumps({
    "chief": chief,
    "replicas": strategy.num_replicas_in_sync,
    "rows": distributed.worker_rows(2, strategy),
    "steps": int(session.state.global_step.numpy()),
    "loss": result.last_train_loss,
    "scratch_removed": not os.path.exists(session.checkpoints.save_dir),
}))
"""


def start_workers(argv_of, env_of, log_dir, repo_root) -> List[subprocess.Popen]:
    """One subprocess per worker; output to ``log_dir/worker-i.log``."""
    procs = []
    for i in range(2):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}  # util: installed
        env.update(env_of(i))
        env["CUDA_VISIBLE_DEVICES"] = ""
        log = open(os.path.join(log_dir, f"worker-{i}.log"), "w")
        procs.append(
            subprocess.Popen(
                argv_of(i), cwd=repo_root, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        )
        log.close()
    return procs


def wait_all(procs: List[subprocess.Popen], timeout: float = WAIT_S) -> List[int]:
    """Exit codes; kills every process still running after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    try:
        return [p.wait(timeout=max(deadline - time.monotonic(), 0.1)) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def read_log(log_dir, i: int) -> str:
    with open(os.path.join(log_dir, f"worker-{i}.log"), encoding="utf-8") as f:
        return f.read()


def test_two_workers_match_each_other_and_one_process(
    tiny_config, alphabet, sample_csv, repo_root, tmp_path
):
    """2 CPU workers x 1 utterance == 1 process x 2 utterances, 4 steps.

    (a) the chief's checkpoint and the other worker's weights are identical; (b) they
    match a single-process run with the same global batch. Adam's epsilon is 1 as in
    tests/test_distributed.py: with 1e-8 an element whose gradient is ~0 moves by
    about +-lr whatever its size, so the round-off of another summation order (an
    all-reduce) could move it by lr; a large epsilon keeps updates proportional to
    the gradients, so the comparison tests the distribution arithmetic. Measured: the
    weights move by > 1e-2 and the two runs differ by at most 4.7e-5 (2.5 s clips,
    125 LSTM steps of round-off from another batch geometry); a wrong gradient scale
    or a sample seen twice would differ by ~lr = 0.05.
    """
    csv_path = sample_csv(("she had", "your dark", "suit in", "greasy"), duration_s=2.5)

    def config(name: str, batch: int):
        directory = str(tmp_path / name)
        return tiny_config(
            data={"train_files": (csv_path,), "train_batch_size": batch},
            train={
                "epochs": 2,
                "learning_rate": 0.05,
                "epsilon": 1.0,
                "summary_dir": str(tmp_path / name / "summaries"),
            },
            checkpoint={
                "load_checkpoint_dir": directory,
                "save_checkpoint_dir": directory,
            },
        )

    cluster_cfg = config("cluster", 1)
    (tmp_path / "cfg.json").write_text(cluster_cfg.to_json())
    hosts = free_hosts(2)
    procs = start_workers(
        lambda i: [
            sys.executable, "-c", WORKER_SCRIPT, str(tmp_path / "cfg.json"),
            str(tmp_path / f"weights-{i}.npz"),
        ],  # fmt: skip
        lambda i: {
            "TF_CONFIG": json.dumps(
                {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": i}}
            )
        },
        str(tmp_path),
        repo_root,
    )
    codes = wait_all(procs)
    logs = [read_log(tmp_path, i) for i in range(2)]
    assert codes == [0, 0], "\n".join(logs)
    out = [json.loads(log.strip().splitlines()[-1]) for log in logs]
    assert [o["chief"] for o in out] == [True, False]
    assert [o["rows"] for o in out] == [[0], [1]]  # each decodes its own half
    assert all(o["replicas"] == 2 and o["steps"] == 4 for o in out)
    assert out[1]["scratch_removed"]

    single = build_session(config("single", 2), alphabet, make_strategy([]))
    initial = [v.numpy().copy() for v in trainable_variables(single.model)]
    result = train(single)
    want = [v.numpy() for v in trainable_variables(single.model)]
    assert int(single.state.global_step.numpy()) == 4
    assert np.isclose(out[0]["loss"], result.last_train_loss, rtol=1e-4)

    # The chief's weights as it saved them; the other worker's as it dumped them.
    chief = build_session(cluster_cfg, alphabet, make_strategy([]))
    chief.checkpoints.restore_for_evaluation()
    chief_weights = [v.numpy() for v in trainable_variables(chief.model)]
    with np.load(tmp_path / "weights-1.npz") as dump:
        worker_weights = [dump[f"arr_{k}"] for k in range(len(dump.files))]
    assert max(float(np.abs(a - b).max()) for a, b in zip(want, initial)) > 1e-2
    for got_chief, got_worker, expected in zip(chief_weights, worker_weights, want):
        np.testing.assert_array_equal(got_chief, got_worker)  # (a) bit-identical
        np.testing.assert_allclose(got_chief, expected, rtol=1e-4, atol=1e-4)  # (b)
    events = os.listdir(tmp_path / "cluster" / "summaries" / "train")
    assert len(events) == 1  # the chief's; the other worker writes no summaries


def latest_step(ckpt_dir: str) -> int:
    path = tf.train.latest_checkpoint(ckpt_dir)
    return int(path.rsplit("-", 1)[1]) if path else 0


def checkpoint_counters(ckpt_dir: str) -> Dict[str, int]:
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(ckpt_dir))
    value = "/.ATTRIBUTES/VARIABLE_VALUE"
    return {
        name: int(reader.get_tensor(f"state/{key}{value}"))
        for name, key in (("epoch", "epoch"), ("step", "global_step"))
    }


@pytest.mark.slow  # ~60-80 s on 2 shared cores: four TF processes in turn
def test_dead_worker_stops_the_other_and_the_cluster_resumes(
    sample_csv, repo_root, tmp_path
):
    """SIGKILL worker 1 mid-run: the chief exits non-zero, naming it, within the
    heartbeat timeout (+ slack); bin/run-cluster.sh then resumes both workers from
    the chief's last checkpoint."""
    csv_path = sample_csv(("she had", "your dark"), duration_s=2.5)
    ckpt_dir = str(tmp_path / "ckpt")
    args = [
        "--train_files", csv_path, "--n_hidden", "16", "--dropout_rate", "0",
        "--checkpoint_dir", ckpt_dir, "--summary_dir", str(tmp_path / "summaries"),
        "--checkpoint_secs", "1", "--show_progressbar=false",
        "--alphabet_config_path", os.path.join(repo_root, "data", "alphabet.txt"),
        "--heartbeat_timeout_s", "3", "--cluster_start_timeout_s", "120",
    ]  # fmt: skip
    hosts = free_hosts(2)
    script = os.path.join(repo_root, "DeepSpeech.py")
    procs = start_workers(
        lambda i: [sys.executable, script, *args, "--epochs", "100000",
                   "--worker_hosts", ",".join(hosts), "--task_index", str(i)],
        lambda i: {},
        str(tmp_path),
        repo_root,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + WAIT_S
        while latest_step(ckpt_dir) < 2:
            assert all(p.poll() is None for p in procs), read_log(tmp_path, 0)
            assert time.monotonic() < deadline, "no checkpoint in time"
            time.sleep(0.1)
        procs[1].send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        code = procs[0].wait(timeout=60)
        stopped_after_s = time.monotonic() - killed_at
    finally:
        wait_all(procs, timeout=5)
    log = read_log(tmp_path, 0)
    print(f"chief exited {code} {stopped_after_s:.1f} s after worker 1 was killed")
    assert code != 0, log
    assert stopped_after_s < 30, log
    assert f"cluster failure: worker 1 ({hosts[1]})" in log, log
    # The chief may have saved after the kill's last step; resume from whatever it has.
    killed = checkpoint_counters(ckpt_dir)
    assert killed["step"] >= 2

    env = {
        **os.environ,
        "LOG_DIR": str(tmp_path / "resumed"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    resumed = subprocess.run(
        ["bash", os.path.join(repo_root, "bin", "run-cluster.sh"), "2", "--", *args,
         "--epochs", "1"],
        cwd=repo_root, env=env, capture_output=True, text=True, timeout=WAIT_S,
    )  # fmt: skip
    out = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, out
    for i in range(2):
        assert f"[worker {i}]" in out and "resumed training from last checkpoint" in (
            read_log(tmp_path / "resumed", i)
        ), out
    assert killed["epoch"] >= 1 and "Epoch 0 |" not in out  # one step per epoch
    assert checkpoint_counters(ckpt_dir)["epoch"] == killed["epoch"] + 1


# --- fewer rows than replicas (issue 11 item 9) ---------------------------------------

SHORT_BATCH_SCRIPT = r"""
import json, sys
import numpy as np
from util.distributed import make_strategy, split_cpu

split_cpu(2)  # before anything initialises TensorFlow's devices

from ctcdecode import Alphabet
from util.config import Config
from util.model import trainable_variables
from util.training import build_session, train

out = {}
for name, cfg_json in json.loads(sys.argv[1]).items():
    cfg = Config.from_json(cfg_json)
    devices = ["/cpu:0", "/cpu:1"] if name.startswith("mirrored") else []
    session = build_session(cfg, Alphabet(cfg.data.alphabet_config_path),
                            make_strategy(devices))
    result = train(session)
    out[name] = {
        "steps": int(session.state.global_step.numpy()),
        "loss": result.last_train_loss,
        "weights": [v.numpy().tolist() for v in trainable_variables(session.model)],
    }
print(json.dumps(out))
"""


@pytest.mark.parametrize(
    "transcripts", [("a",), pytest.param(("a", "ab", "abc"), marks=pytest.mark.slow)]
)
def test_fewer_rows_than_replicas_train_like_one_device(
    tiny_config, sample_csv, run_python, tmp_path, transcripts
):
    """One sample on two replicas (``bin/run-cluster.sh 2`` on a one-row CSV used to
    fail with InvalidArgumentError), and a last batch of one row on two replicas:
    the replica without a row runs a zero-weight placeholder and the weights equal a
    single-device run with the same global batch."""
    csv_path = sample_csv(transcripts)
    configs = {}
    for name, batch in (("mirrored", 1), ("single", 2)):
        directory = str(tmp_path / name)
        configs[name] = tiny_config(
            data={"train_files": (csv_path,), "train_batch_size": batch},
            train={"epochs": 1, "shuffle_batches": False, "epsilon": 1.0},
            checkpoint={
                "load_checkpoint_dir": directory,
                "save_checkpoint_dir": directory,
            },
        ).to_json()
    code = SHORT_BATCH_SCRIPT.replace(
        "json.loads(sys.argv[1])", repr(json.dumps(configs)).join(["json.loads(", ")"])
    )
    out = json.loads(run_python(code).stdout.strip().splitlines()[-1])
    mirrored, single = out["mirrored"], out["single"]
    assert mirrored["steps"] == single["steps"] == (len(transcripts) + 1) // 2
    assert np.isfinite(mirrored["loss"])
    assert np.isclose(mirrored["loss"], single["loss"], rtol=1e-5)
    for got, want in zip(mirrored["weights"], single["weights"]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
