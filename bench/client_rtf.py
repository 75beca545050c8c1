#!/usr/bin/env python3
"""Client real-time factor (compute s / audio s) of exported TFLite models.

    python bench/client_rtf.py --n_hidden 2048 --seconds 10 --threads 1,2
    python bench/client_rtf.py --model deepspeech2 --n_hidden 800 --rnn_layers 5 \
        --directions bi --quantize 0,1    # DeepSpeech2: --n_hidden = rnn_hidden_size

Exports random-weight models (uni and bi, float and int8) with util/export.py, then
times the ``deepspeech`` client in a fresh process per configuration (so peak memory
and start-up time are the client's own, without TensorFlow): whole-file ``stt``,
streaming in 320 ms chunks, model load time and peak RSS. Prints one JSON line each.
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


def peak_rss_mb():
    # VmHWM belongs to this process image; ru_maxrss would carry over the parent's
    # (TensorFlow-sized) high-water mark across fork + exec on Linux.
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024


t0 = time.perf_counter()
import deepspeech
model = deepspeech.Model({path!r}, num_threads={threads})
startup = time.perf_counter() - t0
rng = np.random.default_rng(0)
audio = (rng.standard_normal(16000 * {seconds}) * 3000).astype(np.int16)
model.stt(audio[:16000])  # warm-up
t = time.perf_counter()
probs = model.probabilities(audio)
full = time.perf_counter() - t
stream = model.createStream(); t = time.perf_counter()
for i in range(0, len(audio), 5120):
    stream.feedAudioContent(audio[i:i + 5120])
stream._all_probs(flush=True); streamed = time.perf_counter() - t
print(json.dumps({{"startup_s": round(startup, 3),
    "rtf_full": round(full / {seconds}, 4),
    "rtf_stream_320ms": round(streamed / {seconds}, 4),
    "peak_rss_mb": peak_rss_mb()}}))
"""


def export_model(
    tmp: str,
    n_hidden: int,
    bidirectional: bool,
    quantize: bool,
    model_name: str = "deepspeech",
    rnn_layers: int = 5,
) -> str:
    """A random-weight export; DeepSpeech2: ``n_hidden`` is its rnn_hidden_size, on
    spectrogram features with per-utterance normalisation (its defaults)."""
    from ctcdecode import Alphabet
    from util import export
    from util.config import Config, FeatureConfig
    from util.models import build_model

    alphabet = Alphabet(os.path.join(ROOT, "data", "alphabet.txt"))
    base = Config()
    kind = "bi" if bidirectional else "uni"
    name = f"{model_name}_h{n_hidden}_{kind}_{'int8' if quantize else 'f32'}"
    features = base.features
    if model_name == "deepspeech2":
        features = FeatureConfig.of_type(
            "spectrogram", feature_normalization="utterance"
        )
    cfg = dataclasses.replace(
        base,
        features=features,
        model=dataclasses.replace(
            base.model, n_hidden=n_hidden, bidirectional=bidirectional,
            model=model_name, rnn_hidden_size=n_hidden, rnn_layers=rnn_layers,
        ),
        export=dataclasses.replace(base.export, export_dir=tmp, export_file_name=name,
                                   export_quantize=quantize),
    )  # fmt: skip
    model = build_model(cfg.model, cfg.features.n_input, alphabet.n_classes)
    return export.export_tflite(model, cfg, alphabet)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n_hidden", default="2048,100")
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--directions", default="uni,bi")
    p.add_argument("--quantize", default="0,1")
    p.add_argument(
        "--model", default="deepspeech", choices=["deepspeech", "deepspeech2"]
    )
    p.add_argument("--rnn_layers", type=int, default=5, help="deepspeech2 only")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for n_hidden in map(int, args.n_hidden.split(",")):
            for direction in args.directions.split(","):
                for quantize in map(int, args.quantize.split(",")):
                    path = export_model(
                        tmp, n_hidden, direction == "bi", bool(quantize),
                        args.model, args.rnn_layers,
                    )  # fmt: skip
                    for threads in map(int, args.threads.split(",")):
                        code = _CHILD.format(
                            path=path,
                            threads=threads,
                            seconds=args.seconds,
                        )
                        child = subprocess.run(
                            [sys.executable, "-c", code],
                            capture_output=True,
                            text=True,
                        )
                        if child.returncode:
                            sys.exit(f"client run failed:\n{child.stderr[-3000:]}")
                        out = child.stdout
                        row = {"model": args.model, "n_hidden": n_hidden,
                               "direction": direction,
                               "int8": bool(quantize), "threads": threads,
                               "size_mb": round(os.path.getsize(path) / 1e6, 1),
                               **json.loads(out.strip().splitlines()[-1])}  # fmt: skip
                        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
