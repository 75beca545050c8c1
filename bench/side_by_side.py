#!/usr/bin/env python3
"""Ours against the plain PyTorch peers, interleaved, on this CPU: prints one table.

Each round runs, for every benchmark, our side and then the peer's, each in a fresh
process, so both see the same machine load; the table shows the medians over rounds
and the ratio. Ours runs with its default settings: the benches apply the program's
automatic CPU settings (util/cpu_settings.py) exactly as DeepSpeech.py does, and this
script sets no TensorFlow variable for them. The CPU model, its ISA flags, the
emulated ISA and the load average are printed by the script itself.

    python bench/side_by_side.py --torch_python /work/torchvenv/bin/python
    python bench/side_by_side.py --torch_python ... --isa avx2   # AVX2 emulation

Benchmarks (``--only``, comma list):

- ``uni2048``, ``bi256``: DeepSpeech training step (bench/train_throughput.py)
  against ``bench/peers/torch_ds_train.py N {uni,bi} 16 10``: batch 16 x 10 s, 140
  labels per utterance on both sides.
- ``ds2``: DeepSpeech2 800 x 5 bidirectional GRU training step
  (bench/ds2_train_throughput.py) against ``bench/peers/torch_ds2_train.py``.
- ``client``: the ``deepspeech`` client's real-time factor of a float32 uni-2048
  export (TFLite + XNNPACK; bench/client_rtf.py, MFCCs included) against the same
  geometry in PyTorch (``bench/peers/torch_ds_infer.py``, no features), 1 and 2
  threads.

``--isa avx2`` on an AVX-512 machine approximates an AVX2 one: ``ONEDNN_MAX_CPU_ISA=
AVX2`` for TensorFlow's oneDNN kernels (its convolution kernels change from
``brg_conv:avx512_core`` to ``brg_conv:avx2`` with ``ONEDNN_VERBOSE=1``), and for the
peer also ``ATEN_CPU_CAPABILITY=avx2`` and ``MKL_ENABLE_INSTRUCTIONS=AVX2``. What it
cannot emulate: TensorFlow's Eigen kernels (the pip wheel builds them for AVX without
FMA, so they are the same code on both machines), XNNPACK's run-time ISA choice in
the client (no switch), the memory system and clock of a real AVX2 machine, and
TensorFlow's own oneDNN default (it looks at the real CPU flags; our program turns
oneDNN on for every AVX2 CPU anyway).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from util import cpu_settings  # noqa: E402  (no TensorFlow)

BENCH = os.path.join(ROOT, "bench")
PEERS = os.path.join(BENCH, "peers")
# Cleared for both sides: no speed setting by hand (the --isa emulation sets its own).
CLEARED = {
    "TF_ENABLE_ONEDNN_OPTS", "DS_CPU_SETTINGS", "ONEDNN_MAX_CPU_ISA",
    "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS", "OMP_NUM_THREADS",
}  # fmt: skip
ALL = ("uni2048", "bi256", "ds2", "client")
ISA_ENV = {
    "native": ({}, {}),
    "avx2": (
        {"ONEDNN_MAX_CPU_ISA": "AVX2"},
        {
            "ONEDNN_MAX_CPU_ISA": "AVX2",
            "ATEN_CPU_CAPABILITY": "avx2",
            "MKL_ENABLE_INSTRUCTIONS": "AVX2",
        },
    ),
}


def run(cmd, env_extra, pattern: str) -> float:
    """Run ``cmd``; the float that ``pattern`` captures in its output."""
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env.update(env_extra)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONPATH"] = os.pathsep.join(
        [
            ROOT,
            os.path.join(ROOT, "native_client"),
            os.path.join(ROOT, "native_client", "python"),
        ]
        + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    )
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    found = re.findall(pattern, out)
    if proc.returncode or not found:
        raise RuntimeError(
            f"{' '.join(cmd)} failed (rc {proc.returncode}):\n{out[-3000:]}"
        )
    return float(found[-1])


def ds1(args, hidden: int, direction: str, ours_env, peer_env):
    bidir = "--bidirectional" if direction == "bi" else "--nobidirectional"
    steps = args.steps_2048 if hidden == 2048 else args.steps
    ours = run(
        [sys.executable, os.path.join(BENCH, "train_throughput.py"),
         f"--n_hidden={hidden}", bidir, "--batch_size=16", "--min_s=10",
         "--max_s=10", "--label_len=140", f"--steps={steps}"],
        ours_env, r"median ([0-9.]+) audio-s/s",
    )  # fmt: skip
    peer = run(
        [args.torch_python, os.path.join(PEERS, "torch_ds_train.py"), str(hidden),
         direction, "16", "10", str(steps)],
        peer_env, r"([0-9.]+) audio-s/s",
    )  # fmt: skip
    return ours, peer, steps


def ds2(args, ours_env, peer_env):
    steps = args.steps_ds2
    ours = run(
        [sys.executable, os.path.join(BENCH, "ds2_train_throughput.py"),
         "--geometries=800:5:bi", "--batch_size=16", "--seconds=10",
         f"--steps={steps}", "--rounds=1"],
        ours_env, r"ours ([0-9.]+) audio-s/s",
    )  # fmt: skip
    peer = run(
        [args.torch_python, os.path.join(PEERS, "torch_ds2_train.py"), "800", "5",
         "bi", "16", "10", str(steps)],
        peer_env, r"([0-9.]+) audio-s/s",
    )  # fmt: skip
    return ours, peer, steps


def client(args, threads: int, ours_env, peer_env):
    rows = run(
        [sys.executable, os.path.join(BENCH, "client_rtf.py"), "--n_hidden=2048",
         "--directions=uni", "--quantize=0", f"--threads={threads}", "--seconds=10"],
        ours_env, r'"rtf_full": ([0-9.]+)',
    )  # fmt: skip
    peer = run(
        [args.torch_python, os.path.join(PEERS, "torch_ds_infer.py"), "2048", "uni",
         "10", str(threads)],
        peer_env, r"rtf ([0-9.]+)",
    )  # fmt: skip
    return rows, peer, 3


def header(isa: str) -> str:
    cpu = cpu_settings.detect()
    isa_flags = sorted(
        f for f in cpu.flags if f.startswith(("avx", "fma", "amx", "sse4"))
    )
    ident = _cpu_ident()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    ours_env, peer_env = ISA_ENV[isa]
    return "\n".join(
        [
            f"CPU: {cpu.model} ({cpu.vendor}{ident}, {cpu.machine}, "
            f"{cpu.n_cores} usable cores)",
            f"ISA flags: {' '.join(isa_flags)}",
            f"ISA setting: {isa}"
            + (f"; ours {ours_env}, peer {peer_env}" if ours_env else " (as detected)"),
            f"ours' automatic settings: {cpu_settings.decide(cpu, {}).summary()}",
            f"load average at start: {load}; {time.strftime('%Y-%m-%d %H:%M:%S')}",
        ]
    )


def _cpu_ident() -> str:
    """family F model M stepping S, from /proc/cpuinfo ("" if unreadable)."""
    fields = {}
    try:
        with open(cpu_settings.CPUINFO, encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        return ""
    names = ("cpu family", "model", "stepping")
    return "".join(f" {n} {fields[n]}" for n in names if n in fields)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--torch_python", required=True, help="a Python with torch")
    p.add_argument("--isa", choices=sorted(ISA_ENV), default="native")
    p.add_argument(
        "--only", default=",".join(ALL), help="comma list of " + ",".join(ALL)
    )
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--steps", type=int, default=5, help="timed steps, bi256")
    p.add_argument("--steps_2048", type=int, default=2, help="timed steps, uni2048")
    p.add_argument("--steps_ds2", type=int, default=1, help="timed steps, ds2")
    p.add_argument(
        "--ours_env",
        default="",
        help="NAME=VALUE,... for our side only, for before/after comparisons (e.g. "
        "TF_ENABLE_ONEDNN_OPTS=0: what an AVX2 CPU ran before util/cpu_settings.py)",
    )
    args = p.parse_args()
    wanted = args.only.split(",")
    unknown = set(wanted) - set(ALL)
    if unknown:
        p.error(f"--only: unknown {sorted(unknown)}; choose from {','.join(ALL)}")
    ours_env, peer_env = ISA_ENV[args.isa]
    extra = dict(kv.split("=", 1) for kv in args.ours_env.split(",") if kv)
    ours_env = {**ours_env, **extra}
    print(header(args.isa), flush=True)
    if extra:
        print(f"ours with, set by --ours_env (NOT the default settings): {extra}")
    jobs = []
    if "uni2048" in wanted:
        jobs.append(
            (
                "DS1 uni-2048 train, audio-s/s",
                lambda: ds1(args, 2048, "uni", ours_env, peer_env),
                "higher",
            )
        )
    if "bi256" in wanted:
        jobs.append(
            (
                "DS1 bi-256 train, audio-s/s",
                lambda: ds1(args, 256, "bi", ours_env, peer_env),
                "higher",
            )
        )
    if "ds2" in wanted:
        jobs.append(
            (
                "DS2 800x5 bi GRU train, audio-s/s",
                lambda: ds2(args, ours_env, peer_env),
                "higher",
            )
        )
    if "client" in wanted:
        for threads in (1, 2):
            jobs.append(
                (f"client uni-2048 f32 RTF, {threads} thread(s)",
                 lambda t=threads: client(args, t, ours_env, peer_env), "lower"),
            )  # fmt: skip
    results = {name: [] for name, _, _ in jobs}
    loads = []
    for r in range(args.rounds):
        for name, job, _ in jobs:
            ours, peer, steps = job()
            results[name].append((ours, peer, steps))
            loads.append(os.getloadavg()[0])
            print(f"round {r + 1}: {name}: ours {ours:g}, peer {peer:g} "
                  f"(load {loads[-1]:.2f})", flush=True)  # fmt: skip
    print(f"\nmedians of {args.rounds} round(s); load average (1 min) during the run "
          f"{min(loads):.2f}-{max(loads):.2f}\n")  # fmt: skip
    print("| benchmark | timed steps | ours | PyTorch peer | ours / peer |")
    print("|---|---|---|---|---|")
    for name, _, better in jobs:
        ours = statistics.median(o for o, _, _ in results[name])
        peer = statistics.median(p for _, p, _ in results[name])
        steps = results[name][0][2]
        ratio = ours / peer if better == "higher" else peer / ours
        print(f"| {name} | {steps} | {ours:.3g} | {peer:.3g} | **{ratio:.2f}x** |")
    print(json.dumps({"isa": args.isa, "results": results}))


if __name__ == "__main__":
    main()
