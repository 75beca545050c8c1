"""deepspeech-server under N concurrent real-time WebSocket streams.

    python bench/server_latency.py --model runs/robust/export/output_graph.tflite \
        --scorer runs/robust/kenlm.scorer --streams 1 8 32 --seconds 20

Starts ``deepspeech-server`` on 127.0.0.1 (a free port) and, for each N, opens N
WebSocket streams at once; each sends ``--seconds`` of audio (LDC93S1 clips between
quiet noise) in 320 ms messages at real-time pace, as a microphone would, then ``end``.
Reported per N:

- partial latency: from sending a message to receiving its partial transcript,
  p50/p95/max over all messages of all streams;
- final latency: from ``end`` to the final transcript (p50/p95);
- whether every stream's final transcript equals the serial one (the same audio
  through ``Model.createStream`` in this process);
- memory per stream: the server's resident set while all N streams are open (sampled
  at their midpoint) minus its idle resident set, divided by N.

``--workers 0 64`` compares server settings (0: model calls capped at the core
count; 64: effectively uncapped), alternating them for each N on a fresh server.

Every loop is bounded: N streams x seconds / 0.32 messages, and a timeout on each
receive; the server is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time

import numpy as np
import soundfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RATE = 16000
CHUNK = 5120  # samples: 320 ms


def _audio(seconds: float, seed: int) -> np.ndarray:
    clip, _ = soundfile.read(os.path.join(REPO, "data", "ldc93s1", "LDC93S1.wav"),
                             dtype="int16")  # fmt: skip
    rng = np.random.default_rng(seed)
    parts, n = [], 0
    while n < seconds * RATE:
        gap = (rng.standard_normal(int(rng.uniform(0.3, 1.5) * RATE)) * 3).astype(
            np.int16
        )
        parts += [gap, clip]
        n += len(gap) + len(clip)
    return np.concatenate(parts)[: int(seconds * RATE)]


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))


async def _stream(url: str, pcm: np.ndarray, timeout: float):
    import websockets

    latencies = []
    async with websockets.connect(url, max_size=None) as ws:
        next_send = time.perf_counter()
        for i in range(0, len(pcm), CHUNK):
            await asyncio.sleep(max(0.0, next_send - time.perf_counter()))
            sent = time.perf_counter()
            await ws.send(pcm[i : i + CHUNK].astype("<i2").tobytes())
            json.loads(await asyncio.wait_for(ws.recv(), timeout))
            latencies.append(time.perf_counter() - sent)
            next_send = sent + CHUNK / RATE
        sent = time.perf_counter()
        await ws.send(json.dumps({"type": "end"}))
        final = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        return latencies, time.perf_counter() - sent, final["transcript"]


async def _round(url, audios, pid, seconds):
    tasks = [asyncio.create_task(_stream(url, a, 60.0)) for a in audios]
    await asyncio.sleep(seconds / 2)
    rss = _rss_kb(pid)
    return await asyncio.gather(*tasks), rss


def _serial(model_path, scorer, audios):
    import deepspeech

    model = deepspeech.Model(model_path)
    if scorer:
        model.enableExternalScorer(scorer)
    out = []
    for pcm in audios:
        stream = model.createStream()
        for i in range(0, len(pcm), CHUNK):
            stream.feedAudioContent(pcm[i : i + CHUNK])
        out.append(stream.finishStream())
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(args, port: int, workers: int) -> subprocess.Popen:
    import httpx

    cmd = [sys.executable, "-m", "deepspeech.server", "--model", args.model,
           "--port", str(port), "--host", "127.0.0.1", "--log_level", "warning",
           "--max_streams", str(max(args.streams)),
           "--workers", str(workers)]  # fmt: skip
    if args.scorer:
        cmd += ["--scorer", args.scorer]
    server = subprocess.Popen(cmd)
    for _ in range(600):
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
            return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.terminate()
    raise SystemExit("the server did not start")


def _pct(values, q):
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


def _report(n, workers, results, serial, rss, idle) -> str:
    partial = sorted(x for lat, _, _ in results for x in lat)
    final = sorted(f for _, f, _ in results)
    same = [t for _, _, t in results] == serial
    return (
        f"{n:3d} streams, --workers {workers or 'cores'}: partial latency p50 "
        f"{_pct(partial, 0.5):.0f} ms, p95 {_pct(partial, 0.95):.0f} ms, max "
        f"{partial[-1] * 1000:.0f} ms ({len(partial)} messages); final p50 "
        f"{statistics.median(final) * 1000:.0f} ms, p95 {_pct(final, 0.95):.0f} ms; "
        f"finals == serial: {same}; memory {(rss - idle) / 1024 / n:.1f} MiB per "
        f"stream (RSS {rss / 1024:.0f} MiB, idle {idle / 1024:.0f} MiB)"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--scorer")
    p.add_argument("--streams", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--workers", type=int, nargs="+", default=[0],
                   help="server --workers values to alternate (0: cores)")  # fmt: skip
    args = p.parse_args()
    for n in args.streams:
        audios = [_audio(args.seconds, k) for k in range(n)]
        serial = _serial(args.model, args.scorer, audios)
        for workers in args.workers:
            port = _free_port()
            server = _start_server(args, port, workers)
            try:
                idle = _rss_kb(server.pid)
                url = f"ws://127.0.0.1:{port}/ws"
                results, rss = asyncio.run(
                    _round(url, audios, server.pid, args.seconds)
                )
                print(_report(n, workers, results, serial, rss, idle), flush=True)
            finally:
                server.terminate()
                server.wait(timeout=30)


if __name__ == "__main__":
    main()
