"""CPU settings chosen from the machine, applied before TensorFlow is imported.

TensorFlow reads some settings only once, when it is imported or when its thread pools
start: ``TF_ENABLE_ONEDNN_OPTS`` (oneDNN kernels for matmul, convolution and their
gradients) and the inter-/intra-op thread counts. Its own default turns oneDNN on only
on x86 CPUs with AVX-512 VNNI/BF16, AVX-VNNI or AMX; on AVX2 machines (most AMD EPYC /
Ryzen and older Intel servers) it falls back to Eigen kernels that the pip wheel builds
for AVX without FMA, about half as fast for our matmuls (bench/README.md). So the
program decides: :func:`decide` is the pure rule over a :class:`CpuInfo`,
:func:`apply` runs it for this machine and exports the environment, and
``util/devices.py`` logs the decision once and applies the thread counts.

Whatever the user set wins: an environment variable already set (e.g.
``TF_ENABLE_ONEDNN_OPTS=0``) is kept, and ``--inter_op_parallelism_threads`` /
``--intra_op_parallelism_threads`` other than 0 override the thread counts chosen here
(doc/PERFORMANCE.rst). ``DS_CPU_SETTINGS=off`` disables the automatic choices.

No TensorFlow here: this module must run before TensorFlow's first import.
"""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import sys
from dataclasses import dataclass
from typing import Dict, FrozenSet, Mapping, MutableMapping, Optional, Tuple

ONEDNN_ENV = "TF_ENABLE_ONEDNN_OPTS"
SWITCH_ENV = "DS_CPU_SETTINGS"  # "off": change nothing
CPUINFO = "/proc/cpuinfo"
CGROUP_CPU_MAX = "/sys/fs/cgroup/cpu.max"
# x86 features for which TensorFlow turns oneDNN on by itself (tensorflow/core/util/
# util.cc, IsMKLEnabled): shown in the log so the user sees why it was or was not on.
TF_ONEDNN_DEFAULT_ISA = frozenset(
    {"avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8"}
)
SHOWN_ISA = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")


@dataclass(frozen=True)
class CpuInfo:
    """What the rule looks at: architecture, vendor, model name, ISA flags, cores."""

    machine: str  # platform.machine(): x86_64, aarch64, ...
    vendor: str  # /proc/cpuinfo vendor_id: GenuineIntel, AuthenticAMD, "" if unknown
    model: str
    flags: FrozenSet[str]
    n_cores: int  # cores this process may run on (sched_getaffinity)

    @property
    def x86(self) -> bool:
        return self.machine.lower() in ("x86_64", "amd64", "i686", "i386")

    def describe(self) -> str:
        shown = [f for f in SHOWN_ISA if f in self.flags] or ["none of AVX2/AVX-512"]
        return (
            f"{self.model or self.machine} ({self.vendor or 'unknown vendor'}, "
            f"{self.machine}, {self.n_cores} core(s) usable, {' '.join(shown)})"
        )


@dataclass(frozen=True)
class CpuSettings:
    """The decision: environment to export, thread counts, and why."""

    cpu: CpuInfo
    environ: Tuple[Tuple[str, str], ...]  # (name, value) to set before TF import
    inter_op_threads: int  # 0: TensorFlow's default
    intra_op_threads: int
    reasons: Tuple[str, ...]

    def summary(self) -> str:
        """One line for the start-up log: what was detected, chosen and why."""
        chosen = [f"{k}={v}" for k, v in self.environ]
        if self.inter_op_threads:
            chosen.append(f"inter_op_threads={self.inter_op_threads}")
        if self.intra_op_threads:
            chosen.append(f"intra_op_threads={self.intra_op_threads}")
        return (
            f"CPU {self.cpu.describe()}; chose {', '.join(chosen) or 'nothing'}: "
            + "; ".join(self.reasons)
        )


def parse_cpuinfo(text: str) -> Tuple[str, str, FrozenSet[str]]:
    """vendor_id, model name and flags of the first processor in /proc/cpuinfo text."""
    fields: Dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break  # first processor block only
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip().lower(), value.strip())
    flags = fields.get("flags") or fields.get("features") or ""
    return (
        fields.get("vendor_id", ""),
        fields.get("model name", ""),
        frozenset(flags.lower().split()),
    )


def detect(cpuinfo_path: str = CPUINFO) -> CpuInfo:
    """This machine's CpuInfo; an unreadable /proc/cpuinfo gives empty flags."""
    try:
        with open(cpuinfo_path, encoding="utf-8", errors="replace") as f:
            vendor, model, flags = parse_cpuinfo(f.read())
    except OSError:
        vendor, model, flags = "", "", frozenset()
    try:
        n_cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n_cores = os.cpu_count() or 1
    quota = cgroup_cpus(_read(CGROUP_CPU_MAX))
    if quota:
        n_cores = min(n_cores, quota)
    return CpuInfo(platform.machine(), vendor, model, flags, n_cores)


def cgroup_cpus(cpu_max: str) -> int:
    """CPUs a cgroup v2 ``cpu.max`` ("QUOTA PERIOD", "max PERIOD") allows; 0: none."""
    parts = cpu_max.split()
    if len(parts) != 2 or parts[0] == "max":
        return 0
    try:
        quota, period = int(parts[0]), int(parts[1])
    except ValueError:
        return 0
    return max(1, math.ceil(quota / period)) if quota > 0 and period > 0 else 0


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return ""


def decide(
    cpu: CpuInfo,
    environ: Mapping[str, str],
    inter_op_threads: int = 0,
    intra_op_threads: int = 0,
) -> CpuSettings:
    """The settings for ``cpu``; the user's environment and thread flags win.

    environ : the environment as the user set it (before :func:`apply`).
    inter_op_threads, intra_op_threads : the user's flags (0: not given).
    """
    if environ.get(SWITCH_ENV, "").lower() in ("off", "0", "false", "no"):
        return CpuSettings(
            cpu,
            (),
            inter_op_threads,
            intra_op_threads,
            (f"{SWITCH_ENV}={environ[SWITCH_ENV]}: automatic CPU settings off",),
        )
    env, reasons = _environment(cpu, environ)
    return with_threads(
        CpuSettings(cpu, env, 0, 0, reasons), inter_op_threads, intra_op_threads
    )


def _environment(cpu: CpuInfo, environ: Mapping[str, str]):
    if ONEDNN_ENV in environ:
        return (), (f"{ONEDNN_ENV}={environ[ONEDNN_ENV]} kept (set by the user)",)
    if not (cpu.x86 and "avx2" in cpu.flags):
        return (), ("oneDNN left to TensorFlow's default (not an x86 CPU with AVX2)",)
    own = sorted(cpu.flags & TF_ONEDNN_DEFAULT_ISA)
    why = (
        f" (TensorFlow's own default too: {'/'.join(own)})"
        if own
        else " (TensorFlow's default would be off without AVX-512 VNNI/BF16, AVX-VNNI "
        "or AMX, leaving matmuls to Eigen kernels built for AVX without FMA)"
    )
    return ((ONEDNN_ENV, "1"),), ("oneDNN kernels on for this AVX2 CPU" + why,)


def with_threads(
    settings: CpuSettings, inter_op_threads: int = 0, intra_op_threads: int = 0
) -> CpuSettings:
    """``settings`` with thread counts decided; the user's flags (non-zero) win.

    Both pools get the usable cores (affinity and cgroup CPU quota, which TensorFlow's
    own default ignores: in a container limited to 2 CPUs of a 64-core host it would
    start 64 threads per pool).
    """
    if any(r.startswith(SWITCH_ENV) for r in settings.reasons):
        return settings
    reasons = [r for r in settings.reasons if "threads" not in r]
    pools = []
    for name, flag in (("inter", inter_op_threads), ("intra", intra_op_threads)):
        if flag:
            pools.append(flag)
            reasons.append(
                f"{name}-op threads {flag} from --{name}_op_parallelism_threads"
            )
        else:
            pools.append(max(1, settings.cpu.n_cores))
            reasons.append(f"{name}-op threads {pools[-1]} (the usable cores)")
    return dataclasses.replace(
        settings,
        inter_op_threads=pools[0],
        intra_op_threads=pools[1],
        reasons=tuple(reasons),
    )


_APPLIED: Optional[CpuSettings] = None


def apply(
    environ: Optional[MutableMapping[str, str]] = None,
    cpu: Optional[CpuInfo] = None,
) -> CpuSettings:
    """Decide for this machine and export the environment; call before importing TF.

    Thread counts are only recorded here (TensorFlow sets them, ``util/devices.py``).
    The first decision is kept: later calls return it unchanged.
    """
    global _APPLIED
    if _APPLIED is not None:
        return _APPLIED
    environ = os.environ if environ is None else environ
    settings = decide(cpu or detect(), environ)
    if settings.environ and "tensorflow" in sys.modules:
        # Too late for this process, and exporting it would mislabel children's
        # settings as the user's: record that nothing was set.
        settings = dataclasses.replace(
            settings,
            environ=(),
            reasons=(
                "TensorFlow was imported before the CPU settings; environment "
                "left as it was",
            )
            + settings.reasons[1:],
        )
    for name, value in settings.environ:
        environ.setdefault(name, value)
    _APPLIED = settings
    return settings


def applied() -> Optional[CpuSettings]:
    """The settings :func:`apply` chose in this process, None if it was not called."""
    return _APPLIED
