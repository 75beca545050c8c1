"""deepspeech-server: /health, POST /stt, WebSocket /ws, limits and bad input.

A real uvicorn server on 127.0.0.1 (an ephemeral port) serves the session's small
LDC93S1 model; clients are httpx and the ``websockets`` package. Concurrent streams
must give the transcripts of serial runs, and every bad request gets a clear error
while the server goes on serving.
"""

from __future__ import annotations

import asyncio
import io
import json

import httpx
import numpy as np
import pytest
import soundfile
import websockets

import deepspeech
from deepspeech import server
from helpers import LDC93S1_TEXT, LDC93S1_WAV, RATE, RunningServer, pad

CHUNK = 5120  # samples per WebSocket message (320 ms)


@pytest.fixture(scope="module")
def model(ldc93s1_model):
    path, scorer, _ = ldc93s1_model
    loaded = deepspeech.Model(path)
    loaded.enableExternalScorer(scorer)
    return loaded


@pytest.fixture(scope="module")
def running(model):
    limits = server.Limits(
        max_streams=40,
        max_stream_s=30.0,
        max_message_bytes=64 << 10,
        max_upload_bytes=2 << 20,
    )
    with RunningServer(server.create_app(model, limits)) as running:
        yield running


@pytest.fixture(scope="module")
def clips():
    """Different utterances: LDC93S1 padded with different silence and noise."""
    pcm, _ = soundfile.read(LDC93S1_WAV, dtype="int16")
    return [
        pad(pcm, 0.2 * (k % 4), 0.1 * (k % 3), (0, 3, 10)[k % 3], k) for k in range(8)
    ] + [pcm[: len(pcm) // 2]]


async def _stream(url, pcm, chunk=CHUNK, start=None, as_float=False):
    """(partial messages, final message) of one WebSocket stream."""
    partials = []
    async with websockets.connect(url, max_size=None) as ws:
        if start is not None:
            await ws.send(json.dumps(start))
        for i in range(0, len(pcm), chunk):
            piece = pcm[i : i + chunk]
            data = (piece / 32768.0).astype("<f4") if as_float else piece.astype("<i2")
            await ws.send(data.tobytes())
            partials.append(json.loads(await ws.recv()))
        await ws.send(json.dumps({"type": "end"}))
        final = json.loads(await ws.recv())
        await ws.wait_closed()
        assert ws.close_code == 1000
    return partials, final


def _serial_finals(model, clips):
    out = []
    for pcm in clips:
        stream = model.createStream()
        for i in range(0, len(pcm), CHUNK):
            stream.feedAudioContent(pcm[i : i + CHUNK])
        out.append(stream.finishStream())
    return out


def test_health_and_page(running, model):
    health = httpx.get(f"{running.url}/health").json()
    assert health == {
        "status": "ok",
        "sample_rate": 16000,
        "streaming": True,
        "streams": 0,
        "max_streams": 40,
    }
    page = httpx.get(f"{running.url}/")
    assert (
        page.status_code == 200
        and "getUserMedia" in httpx.get(f"{running.url}/static/app.js").text
    )
    assert (
        "AudioWorkletProcessor"
        in httpx.get(f"{running.url}/static/pcm-worklet.js").text
    )


def test_post_stt_body_and_multipart(running, model):
    wav = open(LDC93S1_WAV, "rb").read()
    body = httpx.post(f"{running.url}/stt", content=wav, timeout=60).json()
    assert body["transcript"] == LDC93S1_TEXT
    assert [w["word"] for w in body["words"]] == LDC93S1_TEXT.split()
    assert body["duration"] == pytest.approx(2.92, abs=0.01)
    pcm, _ = soundfile.read(LDC93S1_WAV, dtype="int16")
    flac = io.BytesIO()
    soundfile.write(flac, np.stack([pcm, pcm], 1), RATE, format="FLAC")  # stereo
    form = httpx.post(
        f"{running.url}/stt",
        timeout=60,
        files={"file": ("x.flac", flac.getvalue(), "audio/flac")},
    )
    assert form.json()["transcript"] == LDC93S1_TEXT


def test_post_stt_errors_and_still_serving(running):
    bad = httpx.post(f"{running.url}/stt", content=b"this is not audio")
    assert bad.status_code == 400 and "cannot read the audio" in bad.json()["error"]
    empty = httpx.post(f"{running.url}/stt", content=b"")
    assert empty.status_code == 400 and "empty upload" in empty.json()["error"]
    big = httpx.post(f"{running.url}/stt", content=b"\0" * (3 << 20))
    assert big.status_code == 413 and "larger than" in big.json()["error"]
    no_field = httpx.post(f"{running.url}/stt", files={"other": ("a", b"x")})
    assert no_field.status_code == 400 and "'file'" in no_field.json()["error"]
    wav = open(LDC93S1_WAV, "rb").read()
    ok = httpx.post(f"{running.url}/stt", content=wav, timeout=60)
    assert ok.json()["transcript"] == LDC93S1_TEXT


def test_stream_partials_and_final(running, model):
    pcm, _ = soundfile.read(LDC93S1_WAV, dtype="int16")
    partials, final = asyncio.run(_stream(running.ws_url, pad(pcm, 0.3, 0.5, 3, 0)))
    assert all(p["type"] == "partial" for p in partials)
    texts = [p["transcript"] for p in partials]
    assert any(t and t != LDC93S1_TEXT for t in texts)  # words arrive while streaming
    assert final["type"] == "final" and final["transcript"] == LDC93S1_TEXT
    assert [w["word"] for w in final["words"]] == LDC93S1_TEXT.split()
    assert final["audio_s"] == pytest.approx(2.92 + 0.8, abs=0.01)


def test_float_audio_at_48k_is_resampled(running):
    import soxr

    pcm, _ = soundfile.read(LDC93S1_WAV, dtype="int16")
    high = soxr.resample(pad(pcm, 0.3, 0.5, 3, 0) / 32768.0, RATE, 48000)
    start = {"type": "start", "sample_rate": 48000, "format": "f32le"}
    scaled = np.round(high * 32768.0)
    _, final = asyncio.run(
        _stream(running.ws_url, scaled, chunk=3 * CHUNK, start=start, as_float=True)
    )
    assert final["transcript"] == LDC93S1_TEXT


@pytest.mark.parametrize("n_streams", [8, 32])
def test_concurrent_streams_equal_serial(running, model, clips, n_streams):
    serial = _serial_finals(model, clips)
    order = [k % len(clips) for k in range(n_streams)]

    async def all_streams():
        return await asyncio.gather(*(_stream(running.ws_url, clips[k]) for k in order))

    results = asyncio.run(all_streams())
    assert [final["transcript"] for _, final in results] == [serial[k] for k in order]
    assert serial[0] == LDC93S1_TEXT


async def _expect_error(url, messages, code, match):
    """Send ``messages``; the server answers an error naming ``match`` and closes."""
    async with websockets.connect(url, max_size=None) as ws:
        for message in messages:
            await ws.send(message)
        reply = None
        async for raw in ws:
            reply = json.loads(raw)
            if reply["type"] == "error":
                break
        await ws.wait_closed()
        assert reply is not None and reply["type"] == "error", reply
        assert match in reply["error"], reply
        assert ws.close_code == code, (ws.close_code, reply)


def test_bad_messages_get_clear_errors_and_the_server_keeps_serving(running, clips):
    url = running.ws_url
    cases = [
        (["not json"], 1003, "must be JSON"),
        (['["a list"]'], 1003, "JSON objects"),
        (['{"type": "dance"}'], 1003, "unknown message type 'dance'"),
        (['{"type": "start", "format": "mp3"}'], 1003, "format 'mp3'"),
        (['{"type": "start", "sample_rate": 5}'], 1003, "sample_rate 5"),
        ([b"\x01\x02\x03"], 1003, "not a whole number"),
        ([b"\0" * (65 << 10)], 1009, "the limit is 65536"),
        ([b"\0" * 64000] * 16, 1009, "limit of 30 s"),
        ([b"\0\0" * 100, '{"type": "start"}'], 1003, "before any audio"),
        (
            ['{"type": "start", "format": "f32le"}', np.float32([np.nan]).tobytes()],
            1003,
            "NaN",
        ),
    ]
    for messages, code, match in cases:
        asyncio.run(_expect_error(url, messages, code, match))
    _, final = asyncio.run(_stream(url, clips[0]))
    assert final["transcript"] == LDC93S1_TEXT
    assert httpx.get(f"{running.url}/health").json()["streams"] == 0


def test_stream_limit_refuses_with_try_again_later(model, clips):
    limits = server.Limits(max_streams=2)
    with RunningServer(server.create_app(model, limits)) as running:

        async def scenario():
            async with (
                websockets.connect(running.ws_url) as a,
                websockets.connect(running.ws_url) as b,
            ):
                await a.send(clips[0][:CHUNK].tobytes())
                await b.send(clips[0][:CHUNK].tobytes())
                await a.recv(), await b.recv()
                await _expect_error(running.ws_url, [], 1013, "limit of 2 streams")
            return await _stream(running.ws_url, clips[0])  # a slot is free again

        _, final = asyncio.run(scenario())
        assert final["transcript"] == LDC93S1_TEXT
