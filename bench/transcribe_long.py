"""deepspeech-transcribe on long recordings of LDC93S1 between silence and noise.

    python bench/transcribe_long.py --model runs/robust/export/output_graph.tflite \
        --scorer runs/robust/kenlm.scorer --minutes 10 --workers 2

Builds a recording of ``--minutes`` minutes: LDC93S1 (2.92 s) again and again, each
time after a stretch of silence, noise and silence of random lengths (0.5-2 s each).
Silence is a room's noise floor (Gaussian, std 3/32768, -80 dBFS), noise is std 30
(-61 dBFS). (With digital silence, i.e. exact zeros, WebRTC's VAD takes about a third
of the noise onsets for speech; real recordings have a floor.) Runs the
``deepspeech-transcribe`` command on it in a subprocess and reports: segments found
vs. clips placed, how many segments are exactly LDC93S1's transcript, wall time,
real-time factor, and peak
memory (the sum of the resident sets of the command and its decoder processes,
sampled every 50 ms). The model: ``python -m tests.helpers runs/robust`` (a small model
trained on LDC93S1 and padded variants of it, tests/helpers.py).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import soundfile

LDC93S1_TEXT = "she had your dark suit in greasy wash water all year"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RATE = 16000


def make_recording(path: str, minutes: float, seed: int = 0) -> int:
    """Write the recording; returns the number of LDC93S1 clips in it."""
    clip, _ = soundfile.read(os.path.join(REPO, "data", "ldc93s1", "LDC93S1.wav"),
                             dtype="int16")  # fmt: skip
    rng = np.random.default_rng(seed)
    parts, n, clips = [], 0, 0
    while n + len(clip) + 4 * RATE < minutes * 60 * RATE:
        silence1, noise, silence2 = rng.uniform(0.5, 2.0, 3)
        for seconds, std in ((silence1, 3), (noise, 30), (silence2, 3)):
            part = (rng.standard_normal(int(seconds * RATE)) * std).astype(np.int16)
            parts.append(part)
            n += len(part)
        parts.append(clip)
        n += len(clip)
        clips += 1
    parts.append(np.zeros(int(minutes * 60 * RATE) - n, np.int16))
    soundfile.write(path, np.concatenate(parts), RATE, subtype="PCM_16")
    return clips


def _tree_rss_kb(pid: int) -> int:
    """Resident set (kB) of ``pid`` and all its descendants, from /proc."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                total += next(int(x.split()[1]) for x in f if x.startswith("VmRSS"))
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except (OSError, StopIteration, ValueError):
            continue
    return total


def run(args: argparse.Namespace, minutes: float, workers: int, work: str) -> dict:
    wav = os.path.join(work, f"long_{minutes:g}min.wav")
    clips = make_recording(wav, minutes)
    cmd = [sys.executable, "-m", "deepspeech.transcribe", "--model", args.model,
           "--src", wav, "--dst", work + os.sep, "--workers", str(workers),
           "--force", "--show_progressbar", "false"]  # fmt: skip
    if args.scorer:
        cmd += ["--scorer", args.scorer]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _tree_rss_kb(proc.pid))
        time.sleep(0.05)
    wall = time.perf_counter() - start
    err = proc.stderr.read()
    if proc.returncode != 0:
        raise SystemExit(f"transcribe failed:\n{err}")
    result = json.load(open(os.path.join(work, f"long_{minutes:g}min.json")))
    texts = [s["transcript"] for s in result["segments"]]
    return {
        "minutes": minutes, "clips": clips, "segments": len(texts),
        "exact": sum(t == LDC93S1_TEXT for t in texts), "wall_s": wall,
        "rtf": wall / (minutes * 60), "peak_mib": peak / 1024,
        "summary": err.strip().splitlines()[-1],
    }  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--scorer")
    p.add_argument("--minutes", type=float, nargs="+", default=[10.0])
    p.add_argument("--workers", type=int, nargs="+", default=[2],
                   help="--workers values to alternate for each length")  # fmt: skip
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as work:
        for minutes in args.minutes:
            for workers in args.workers:
                r = run(args, minutes, workers, work)
                print(
                    f"{r['minutes']:g} min, --workers {workers}: {r['segments']} "
                    f"segments for {r['clips']} clips, {r['exact']} exact; wall "
                    f"{r['wall_s']:.1f} s, RTF {r['rtf']:.4f}, peak RSS "
                    f"{r['peak_mib']:.0f} MiB (all processes)\n  {r['summary']}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
