#!/usr/bin/env python3
"""Whole-file inference cost vs audio length: does it grow linearly?

    python bench/client_long_audio.py --seconds 30,60,120,600 --n_hidden 256
    python bench/client_long_audio.py --client_root /path/to/other/checkout ...

Exports random-weight unidirectional and bidirectional models with util/export.py
(this checkout), then, in a fresh process per (model, length) with one TFLite thread,
times the ``deepspeech`` client of ``--client_root`` (default: this checkout; point it
at an older checkout for "before" numbers) on noise of each length:

* ``probabilities``: CPU seconds of ``Model.probabilities`` (features + network) and
  the process's peak RSS (VmHWM) after it;
* ``stt`` (``--beam`` > 0): ``sttWithMetadata``'s beam search (``--beam``, no
  scorer) on those probabilities: ``decode_cpu_s``, ``stt_cpu_s`` (network + search)
  and the peak RSS after both.

One JSON line per run; ``--timeout`` stops a run that takes too long (reported as
``"timeout"``). Results and the machine: bench/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_CHILD = r"""
import json, sys, time
import numpy as np
import deepspeech


def peak_rss_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024


model = deepspeech.Model({path!r}, num_threads=1)
rng = np.random.default_rng(0)
audio = (rng.standard_normal(16000 * {seconds}) * 3000).astype(np.int16)
model.probabilities(audio[:16000])  # warm-up
row = {{"load_rss_mb": peak_rss_mb()}}
t = time.process_time()
probs = model.probabilities(audio)
row["probabilities_cpu_s"] = round(time.process_time() - t, 3)
row["probabilities_rss_mb"] = peak_rss_mb()
if {beam} > 0:  # the beam search of sttWithMetadata, on the same probabilities
    model.setBeamWidth({beam})
    t = time.process_time()
    model._metadata(probs, 1)
    row["decode_cpu_s"] = round(time.process_time() - t, 3)
    row["stt_cpu_s"] = round(row["probabilities_cpu_s"] + row["decode_cpu_s"], 3)
    row["stt_rss_mb"] = peak_rss_mb()
print(json.dumps(row))
"""


def export_model(directory: str, n_hidden: int, bidirectional: bool) -> str:
    from ctcdecode import Alphabet
    from util import export
    from util.config import Config
    from util.model import DeepSpeechModel

    alphabet = Alphabet(os.path.join(ROOT, "data", "alphabet.txt"))
    base = Config()
    name = f"h{n_hidden}_{'bi' if bidirectional else 'uni'}"
    cfg = dataclasses.replace(
        base,
        model=dataclasses.replace(
            base.model, n_hidden=n_hidden, bidirectional=bidirectional
        ),
        export=dataclasses.replace(
            base.export, export_dir=directory, export_file_name=name
        ),
    )
    model = DeepSpeechModel(cfg.model, cfg.features.n_mfcc, alphabet.n_classes, seed=1)
    return export.export_tflite(model, cfg, alphabet)


def run_one(path: str, seconds: int, args: argparse.Namespace) -> dict:
    code = _CHILD.format(path=path, seconds=seconds, beam=args.beam)
    root = os.path.abspath(args.client_root)  # its client and decoder come first
    paths = [os.path.join(root, "native_client", "python"),
             os.path.join(root, "native_client"), root]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(paths)}
    try:
        child = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True,
            timeout=args.timeout, env=env,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"timeout": args.timeout}
    if child.returncode:
        return {"error": child.stderr[-2000:]}
    return json.loads(child.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", default="30,60,120,600")
    p.add_argument("--n_hidden", type=int, default=256)
    p.add_argument("--directions", default="uni,bi")
    p.add_argument("--beam", type=int, default=50, help="0: no stt run")
    p.add_argument(
        "--client_root", default=ROOT, help="checkout whose client runs (before: old)"
    )
    p.add_argument("--models", help="directory of already exported h*_uni/bi.tflite")
    p.add_argument("--timeout", type=int, default=1800)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = args.models or tmp
        for direction in args.directions.split(","):
            path = os.path.join(directory, f"h{args.n_hidden}_{direction}.tflite")
            if not os.path.exists(path):
                path = export_model(directory, args.n_hidden, direction == "bi")
            for seconds in map(int, args.seconds.split(",")):
                row = {"model": f"{direction}-{args.n_hidden}", "seconds": seconds,
                       "client": args.client_root, "beam": args.beam,
                       **run_one(path, seconds, args)}  # fmt: skip
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
