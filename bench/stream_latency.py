#!/usr/bin/env python3
"""Per-chunk streaming latency over a long synthetic stream: does it stay constant?

    python bench/stream_latency.py --minutes 10
    python bench/stream_latency.py --minutes 10 --model m.tflite --scorer kenlm.scorer

Feeds ``--minutes`` of noise to one ``deepspeech`` stream in ``--chunk_ms`` chunks and
times ``feedAudioContent`` + ``intermediateDecode`` for every chunk (the model step and
the incremental beam search, doc/USING.rst). Prints the latency percentiles of the
first and the last minute (equal is the goal: DeepSpeech#1757 was a stream that slowed
down as it grew), the decoder's commit counters and the history it held, and one JSON
line. Without ``--model`` it exports a random-weight unidirectional model
(``--n_hidden``) with util/export.export_tflite first, which imports TensorFlow;
``--model`` skips that.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from typing import Dict, List

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SAMPLE_RATE = 16000  # Hz, the exported model's (util/config.py default)


def export_random_uni(directory: str, n_hidden: int) -> str:
    """A random-weight unidirectional .tflite (with the ``stream`` signature)."""
    from ctcdecode import Alphabet
    from util import export
    from util.config import Config
    from util.model import DeepSpeechModel

    alphabet = Alphabet(os.path.join(ROOT, "data", "alphabet.txt"))
    base = Config()
    cfg = dataclasses.replace(
        base,
        model=dataclasses.replace(base.model, n_hidden=n_hidden, bidirectional=False),
        export=dataclasses.replace(base.export, export_dir=directory),
    )
    model = DeepSpeechModel(cfg.model, cfg.features.n_mfcc, alphabet.n_classes, seed=1)
    return export.export_tflite(model, cfg, alphabet)


def percentiles(values_s: List[float]) -> Dict[str, float]:
    """p50/p90/p99/max in milliseconds."""
    ms = np.asarray(values_s) * 1000.0
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p90_ms": round(float(np.percentile(ms, 90)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "max_ms": round(float(ms.max()), 2),
    }


def run_stream(model, minutes: float, chunk_ms: int, seed: int) -> Dict:
    """Feed the stream, timing feed + intermediateDecode per chunk."""
    chunk = SAMPLE_RATE * chunk_ms // 1000
    n_chunks = int(minutes * 60 * 1000 // chunk_ms)
    per_minute = max(1, min(60 * 1000 // chunk_ms, n_chunks))  # short smoke runs
    rng = np.random.default_rng(seed)
    stream = model.createStream()
    latencies = []
    held = []
    start = time.perf_counter()
    for _ in range(n_chunks):
        audio = (rng.standard_normal(chunk) * 3000).astype(np.int16)
        t = time.perf_counter()
        stream.feedAudioContent(audio)
        stream.intermediateDecode()
        latencies.append(time.perf_counter() - t)
        held.append(stream._decoder.n_held_frames)
    total = time.perf_counter() - start
    decoder = stream._decoder
    t = time.perf_counter()
    text = stream.finishStream()
    finish = time.perf_counter() - t
    first = latencies[:per_minute]
    last = latencies[-per_minute:]
    return {
        "chunks": n_chunks,
        "first_minute": percentiles(first),
        "last_minute": percentiles(last),
        "last_over_first_p50": round(float(np.median(last) / np.median(first)), 3),
        "rtf": round(total / (n_chunks * chunk_ms / 1000.0), 4),
        "finish_ms": round(finish * 1000.0, 1),
        "frames": decoder.n_frames,
        "commits": decoder.n_commits,
        "forced_commits": decoder.n_forced_commits,
        "max_held_frames": int(max(held)),
        "transcript_chars": len(text),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0, help="stream length")
    p.add_argument("--chunk_ms", type=int, default=320, help="audio per feed")
    p.add_argument("--model", help="a .tflite (default: export a random uni model)")
    p.add_argument("--n_hidden", type=int, default=100, help="for the random model")
    p.add_argument("--scorer", help="optional .scorer package for the beam search")
    p.add_argument("--beam_width", type=int, help="default: the model's")
    p.add_argument("--threads", type=int, default=1, help="TFLite threads")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if args.minutes <= 0:
        p.error("--minutes must be > 0 (below 2 the compared minutes overlap)")
    with tempfile.TemporaryDirectory() as tmp:
        path = args.model or export_random_uni(tmp, args.n_hidden)
        import deepspeech

        model = deepspeech.Model(path, num_threads=args.threads)
        if not model.streams_natively:
            p.error(f"{path} has no stream signature (a bidirectional model?)")
        if args.beam_width:
            model.setBeamWidth(args.beam_width)
        if args.scorer:
            model.enableExternalScorer(args.scorer)
        result = run_stream(model, args.minutes, args.chunk_ms, args.seed)
    result = {
        "model": args.model or f"random uni n_hidden {args.n_hidden}",
        "beam_width": model.beamWidth(),
        "scorer": bool(args.scorer),
        "chunk_ms": args.chunk_ms,
        "minutes": args.minutes,
        **result,
    }
    for name in ("first_minute", "last_minute"):
        row = result[name]
        print(
            f"{name:>12}: p50 {row['p50_ms']:7.2f} ms  p90 {row['p90_ms']:7.2f} ms  "
            f"p99 {row['p99_ms']:7.2f} ms  max {row['max_ms']:7.2f} ms"
        )
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
