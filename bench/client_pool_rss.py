#!/usr/bin/env python3
"""Memory of one shared Model under many threads: is the interpreter pool bounded?

    python bench/client_pool_rss.py --model m.tflite --threads 8
    python bench/client_pool_rss.py --model m.tflite --client_root /old/checkout

In a fresh process (the client of ``--client_root``, default this checkout): load the
model, then ``--threads`` threads call ``stt`` on 10 s of noise at the same time, a
few rounds; prints the RSS (MB) after loading, after the threads, and after
``freeModel()``, and how many interpreters the pool created. One JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_CHILD = r"""
import concurrent.futures, gc, json
import numpy as np
import deepspeech


def rss_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024


model = deepspeech.Model({path!r}, num_threads=1)
audio = (np.random.default_rng(0).standard_normal(160000) * 3000).astype(np.int16)
model.stt(audio)
row = {{"threads": {threads}, "loaded_rss_mb": rss_mb()}}
with concurrent.futures.ThreadPoolExecutor({threads}) as pool:
    for _ in range(3):
        list(pool.map(model.probabilities, [audio] * {threads}))
row["after_threads_rss_mb"] = rss_mb()
row["interpreters"] = getattr(model._tflite, "n_created", None)
model.freeModel()
gc.collect()
row["after_free_rss_mb"] = rss_mb()
print(json.dumps(row))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--client_root", default=ROOT)
    args = p.parse_args()
    root = os.path.abspath(args.client_root)
    paths = [os.path.join(root, "native_client", "python"),
             os.path.join(root, "native_client"), root]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    code = _CHILD.format(path=os.path.abspath(args.model), threads=args.threads)
    child = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env
    )
    if child.returncode:
        sys.exit(child.stderr[-3000:])
    row = json.loads(child.stdout.strip().splitlines()[-1])
    print(json.dumps({"client": root, **row}))


if __name__ == "__main__":
    main()
