"""Which ``tf.distribute`` strategy trains (one process or a cluster), and batch math.

One device: the default strategy. Several local GPUs: ``MirroredStrategy``, one replica
per GPU (DeepSpeech's "towers"). A cluster (``--worker_hosts``/``--task_index`` or
``TF_CONFIG``): ``MultiWorkerMirroredStrategy``, one replica per local GPU (or the CPU)
of every worker, gradients all-reduced over gRPC. Tests use two logical CPU devices to
exercise the mirrored path without a GPU. The strategy must exist before any TF op runs:
TF refuses to enable collectives on an initialised context.

Every worker builds the same global batches from the same ``batch_plan``; replica ``g``
of ``n`` takes rows ``g, g + n, ...`` of each (util/steps.py), so an epoch visits every
sample exactly once across the cluster, in a deterministic order. ``worker_rows`` says
which rows a worker's own replicas read, so it decodes only those (util/feeding.py).
See doc/DISTRIBUTED.rst for the layout, timeouts and failure behaviour.
"""

import json
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence

import tensorflow as tf
from absl import logging

from util.config import ClusterConfig

TFConfig = Dict[str, Any]  # the parsed TF_CONFIG: {"cluster": {...}, "task": {...}}
COORDINATED_JOBS = ("chief", "worker")


def split_cpu(n_devices: int) -> None:
    """Expose the CPU as ``n_devices`` logical devices (tests and benchmarks only).

    Must run before TF initialises its devices.
    """
    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpus[0], [tf.config.LogicalDeviceConfiguration()] * n_devices
    )


def tf_config(cfg: ClusterConfig, environ: Mapping[str, str]) -> Optional[TFConfig]:
    """This process's cluster as a TF_CONFIG dict, or None when it trains alone.

    ``--worker_hosts``/``--task_index`` win (DeepSpeech's flags, turned into the
    TF_CONFIG TF documents); else ``environ["TF_CONFIG"]``. A cluster of one worker is
    no cluster. Raises ValueError for layouts we do not run (parameter servers).
    """
    if cfg.worker_hosts:
        config: TFConfig = {
            "cluster": {"worker": list(cfg.worker_hosts)},
            "task": {"type": "worker", "index": cfg.task_index},
        }
    elif environ.get("TF_CONFIG"):
        try:
            config = json.loads(environ["TF_CONFIG"])
        except json.JSONDecodeError as err:
            raise ValueError(f"TF_CONFIG is not JSON: {err}") from err
    else:
        return None
    _check_tf_config(config)
    n_tasks = sum(len(config["cluster"].get(job, ())) for job in COORDINATED_JOBS)
    return config if n_tasks > 1 else None


def _check_tf_config(config: TFConfig) -> None:
    cluster, task = config.get("cluster") or {}, config.get("task") or {}
    if "ps" in cluster or task.get("type") == "ps":
        raise ValueError(
            "TF_CONFIG has a 'ps' job: parameter-server training is not supported; "
            "list every process as a worker (see doc/DISTRIBUTED.rst)"
        )
    unknown = set(cluster) - set(COORDINATED_JOBS)
    if unknown:
        raise ValueError(f"TF_CONFIG: unsupported jobs {sorted(unknown)}")
    kind, index = task.get("type"), task.get("index", 0)
    if kind not in COORDINATED_JOBS or not 0 <= index < len(cluster.get(kind, ())):
        raise ValueError(f"TF_CONFIG: task {task} is not in the cluster {cluster}")


def is_chief(cluster: Optional[TFConfig] = None) -> bool:
    """Whether this process writes checkpoints, summaries, exports and test reports.

    The 'chief' task if the cluster has one, else worker 0; a single process is chief.
    """
    if cluster is None:
        return True
    task = cluster["task"]
    if "chief" in cluster["cluster"]:
        return task["type"] == "chief"
    return task["type"] == "worker" and task.get("index", 0) == 0


def local_devices(num_gpus: Optional[int]) -> Optional[List[str]]:
    """The devices ``--num_gpus`` asks for (the DeepSpeech2 reference's flag).

    None: let ``make_strategy`` decide (every GPU when there are several); -1: every
    visible GPU; 0: the CPU; N: the first N GPUs, or a ValueError naming the flag
    when fewer are visible.
    """
    if num_gpus is None:
        return None
    gpus = [g.name for g in tf.config.list_logical_devices("GPU")]
    if num_gpus == 0 or (num_gpus == -1 and not gpus):
        return [tf.config.list_logical_devices("CPU")[0].name]
    if num_gpus == -1:
        return gpus
    if num_gpus > len(gpus):
        raise ValueError(
            f"--num_gpus {num_gpus}: only {len(gpus)} GPU(s) visible; pass "
            f"--num_gpus {len(gpus)} or -1 (all)"
        )
    return gpus[:num_gpus]


def make_strategy(
    devices: Optional[Sequence[str]] = None,
    cluster: Optional[TFConfig] = None,
    timeouts: ClusterConfig = ClusterConfig(),
) -> tf.distribute.Strategy:
    """Multi-worker for a ``cluster``; else mirrored over ``devices`` (default: all
    local GPUs when there are several); else the default strategy.

    With a cluster this blocks until every worker has connected (at most
    ``timeouts.cluster_start_timeout_s``).
    """
    if cluster is not None:
        return _multi_worker(cluster, timeouts)
    if devices is None:
        gpus = tf.config.list_logical_devices("GPU")
        devices = [g.name for g in gpus] if len(gpus) > 1 else None
    if devices and len(devices) > 1:
        logging.info("training with one replica on each of %s", ", ".join(devices))
        return tf.distribute.MirroredStrategy(list(devices))
    return tf.distribute.get_strategy()


def _multi_worker(cluster: TFConfig, timeouts: ClusterConfig) -> tf.distribute.Strategy:
    """MultiWorkerMirroredStrategy with bounded waits for dead, hung or absent peers.

    TF's coordination service (leader: the first coordinated task) tracks heartbeats:
    a worker silent for ``heartbeat_timeout_s`` is reported to all others, whose
    collectives then abort with UnavailableError naming it. The strategy would set
    the service up itself with default timeouts; we configure it first, the same way,
    with ours. ``collective_timeout_s`` bounds each all-reduce (DeadlineExceededError),
    which catches a worker that is alive but stuck.
    """
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.eager import context

    spec = tf.train.ClusterSpec(cluster["cluster"])
    task = cluster["task"]
    jobs = [j for j in COORDINATED_JOBS if j in spec.jobs]
    context.context().configure_coordination_service(
        service_type="standalone",
        service_leader=f"/job:{jobs[0]}/replica:0/task:0",
        heartbeat_timeout_in_ms=timeouts.heartbeat_timeout_s * 1000,
        cluster_register_timeout_in_ms=timeouts.cluster_start_timeout_s * 1000,
        coordinated_jobs=[
            coordination_config_pb2.CoordinatedJob(name=j, num_tasks=spec.num_tasks(j))
            for j in jobs
        ],
    )
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
        spec, task_type=task["type"], task_id=task.get("index", 0), rpc_layer="grpc"
    )
    options = tf.distribute.experimental.CommunicationOptions(
        timeout_seconds=float(timeouts.collective_timeout_s) or None
    )
    logging.info(
        "%s %d of cluster %s: waiting for every worker to connect",
        task["type"],
        task.get("index", 0),
        json.dumps(cluster["cluster"]),
    )
    strategy = tf.distribute.MultiWorkerMirroredStrategy(
        cluster_resolver=resolver, communication_options=options
    )
    logging.info(
        "cluster up: %d replicas in sync, %d on this worker (%s)",
        strategy.num_replicas_in_sync,
        len(strategy.extended.worker_devices),
        ", ".join(strategy.extended.worker_devices),
    )
    return strategy


def global_batch_size(per_replica: int, strategy: tf.distribute.Strategy) -> int:
    """Utterances per step over all replicas (--train_batch_size is per replica)."""
    return per_replica * strategy.num_replicas_in_sync


def worker_rows(
    batch_size: int, strategy: tf.distribute.Strategy
) -> Optional[List[int]]:
    """Positions in a global batch of ``batch_size`` that this worker's replicas read.

    Replica ``g`` of ``n`` reads rows ``g, g + n, ...`` (util/steps.py) and worker ``w``
    hosts replicas ``w * L .. w * L + L - 1`` (L local replicas, TF's numbering of
    replicas in a multi-worker cluster). None when one process holds every replica.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().jobs:
        return None
    n_local = len(strategy.extended.worker_devices)
    n_replicas = strategy.num_replicas_in_sync
    if n_local == n_replicas:
        return None
    worker = _id_in_cluster(
        resolver.cluster_spec(), resolver.task_type, resolver.task_id
    )
    mine = range(worker * n_local, (worker + 1) * n_local)
    return [row for row in range(batch_size) if row % n_replicas in mine]


def _id_in_cluster(spec: tf.train.ClusterSpec, task_type: str, task_id: int) -> int:
    """TF's order of workers: the chief first, then the workers by index."""
    has_chief = "chief" in spec.jobs
    if task_type == "chief":
        return 0
    return task_id + (1 if has_chief else 0)


_TASK = re.compile(r"/job:(\w+)(?:/replica:\d+)?/task:(\d+)")


def describe_failure(err: Exception, cluster: Optional[TFConfig]) -> str:
    """One line for a cluster failure: the peers it names (host:port), and why."""
    text = str(err)
    first = next((m for m in text.splitlines() if m.strip()), type(err).__name__)
    cluster = cluster or {"cluster": {}, "task": {}}
    me = (cluster["task"].get("type"), str(cluster["task"].get("index", 0)))
    named = []
    for job, index in sorted(set(_TASK.findall(text)) - {me}):
        hosts = cluster["cluster"].get(job, [])
        host = hosts[int(index)] if int(index) < len(hosts) else "?"
        named.append(f"{job} {index} ({host})")
    who = ", ".join(named) if named else "a peer"
    reason = "stopped sending heartbeats" if "heartbeat" in text else first.strip()
    return f"cluster failure: {who}: {reason} [{type(err).__name__}]"


class ClusterFailureError(RuntimeError):
    """A collective failed: a peer died, hung or could not be reached."""
