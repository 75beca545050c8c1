#!/usr/bin/env python3
"""Peak memory and CPU time of one long beam search: one-shot vs bounded history.

    python bench/decoder_memory.py --frames 3000,30000 --beam 50

For each length, in a fresh process: ``ctc_beam_search_decoder`` on synthetic
emissions (a random label per frame at probability ~0.7, the rest Dirichlet noise),
no scorer, once with the one-shot flashlight search (what every length used before;
forced here by raising ``ctcdecode.decoder.BOUNDED_FROM_FRAMES``) and once as shipped
(bounded history above 500 frames, doc/DECODER.rst). Prints CPU seconds, the growth of
peak RSS (VmHWM) during the search, and whether both found the same transcript. One
JSON line each; results in bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

_CHILD = r"""
import hashlib, json, time
import numpy as np
import ctcdecode
from ctcdecode import decoder


def peak_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024


alphabet = ctcdecode.Alphabet.from_symbols(list(" abcdefghijklmnopqrstuvwxyz'"))
T, n = {frames}, alphabet.n_classes
rng = np.random.default_rng(0)
probs = rng.dirichlet(np.full(n, 0.3), T).astype(np.float32) * 0.3 + 0.02 / n
probs[np.arange(T), rng.integers(0, n, T)] += 0.7
probs /= probs.sum(1, keepdims=True)
if {one_shot}:
    decoder.BOUNDED_FROM_FRAMES = 10**12
before = peak_mb()
t = time.process_time()
result = ctcdecode.ctc_beam_search_decoder(probs, alphabet, {beam})[0]
print(json.dumps({{"cpu_s": round(time.process_time() - t, 2),
                   "search_rss_mb": peak_mb() - before,
                   "text_sha": hashlib.sha256(result.text.encode()).hexdigest()}}))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--frames", default="3000,30000")
    p.add_argument("--beam", type=int, default=50)
    args = p.parse_args()
    for frames in map(int, args.frames.split(",")):
        rows = {}
        for mode in ("one_shot", "bounded"):
            code = _CHILD.format(
                frames=frames, beam=args.beam, one_shot=mode == "one_shot"
            )
            child = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True
            )
            if child.returncode:
                sys.exit(child.stderr[-3000:])
            rows[mode] = json.loads(child.stdout.strip().splitlines()[-1])
        same = rows["one_shot"].pop("text_sha") == rows["bounded"].pop("text_sha")
        print(json.dumps({"frames": frames, "beam": args.beam, **rows,
                          "same_transcript": same}), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
