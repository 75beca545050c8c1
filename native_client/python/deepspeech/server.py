"""``deepspeech-server``: one loaded model serving files and live streams over HTTP.

    deepspeech-server --model output_graph.tflite --scorer kenlm.scorer --port 8080

Endpoints (Starlette on uvicorn; doc/USING.rst has the protocol):

- ``GET /``: the browser page (``web/``): microphone streaming and file drop.
- ``GET /health``: ``{"status": "ok", "sample_rate", "streaming", "streams",
  "max_streams"}``.
- ``POST /stt``: an audio file (wav, flac, ogg, mp3; any rate and channels) as the
  body, or as the ``file`` field of a multipart form; answers ``{"transcript",
  "confidence", "duration", "words": [{"word", "start", "end"}]}``.
- ``WebSocket /ws``: binary messages of audio, by default 16-bit little-endian mono PCM
  at the model's rate; a first text message ``{"type": "start", "sample_rate": Hz,
  "format": "s16le" | "f32le"}`` announces other audio (the server resamples). After
  each audio message the server answers ``{"type": "partial", "transcript",
  "audio_s"}``; the text message ``{"type": "end"}`` ends the stream with ``{"type":
  "final", "transcript", "confidence", "words", "audio_s"}`` and a normal close.

Limits keep one client from starving the others: at most ``max_streams`` streams at
once (more are refused with an ``error`` message and close code 1013, "try again
later"), ``max_stream_s`` of audio per stream (which bounds a stream's memory),
``max_message_bytes`` per WebSocket message and ``max_upload_bytes`` per file. Bad
input gets an ``{"type": "error", "error": ...}`` message (close code 1003 or 1009)
or an HTTP 400/413 with ``{"error": ...}``; the server goes on serving everyone else.
Model and decoder work runs in worker threads, never on the event loop.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence

import numpy as np

from .audio import read_audio
from .errors import DeepSpeechError
from .metadata import CandidateTranscript
from .model import Model

WEB_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "web")
CLOSE_UNSUPPORTED = 1003  # RFC 6455: data the endpoint cannot accept
CLOSE_TOO_BIG = 1009
CLOSE_TRY_LATER = 1013
FORMATS = {"s16le": np.dtype("<i2"), "f32le": np.dtype("<f4")}


@dataclass(frozen=True)
class Limits:
    max_streams: int = 32
    max_stream_s: float = 600.0  # audio seconds per WebSocket stream
    max_message_bytes: int = 1 << 20
    max_upload_bytes: int = 50 << 20
    partial_every_s: float = 1.0  # for bidirectional models (each partial re-runs it)
    workers: int = 0  # model/decoder calls at once (0: one per CPU core)


class ClientError(ValueError):
    """Bad input from a client: ``close_code`` for WebSockets, ``status`` for HTTP."""

    def __init__(
        self, message: str, close_code: int = CLOSE_UNSUPPORTED, status: int = 400
    ) -> None:
        super().__init__(message)
        self.close_code = close_code
        self.status = status


def words_of(best: CandidateTranscript) -> list:
    return [
        {"word": w.word, "start": round(w.start_time, 3), "end": round(w.end_time, 3)}
        for w in best.words
    ]


class StreamSession:
    """One WebSocket stream: format, resampling, the model's Stream and its limits.

    Its methods run in a worker thread, one call at a time (the connection awaits each).
    """

    def __init__(self, model: Model, limits: Limits) -> None:
        self.model = model
        self.limits = limits
        self.rate = model.sampleRate()
        self.dtype = FORMATS["s16le"]
        self.resampler = None
        self.stream = model.createStream()
        self.n_samples = 0  # at the model's rate
        self.since_partial = 0
        self.started = False

    def configure(self, message: Dict[str, Any]) -> None:
        if self.started:
            raise ClientError("'start' must come before any audio")
        fmt = message.get("format", "s16le")
        if fmt not in FORMATS:
            raise ClientError(f"format {fmt!r}: use one of {sorted(FORMATS)}")
        rate = message.get("sample_rate", self.rate)
        if not isinstance(rate, (int, float)) or not 8000 <= rate <= 192000:
            raise ClientError(f"sample_rate {rate!r}: give Hz between 8000 and 192000")
        self.dtype = FORMATS[fmt]
        if rate != self.rate:
            import soxr

            self.resampler = soxr.ResampleStream(rate, self.rate, 1, dtype="float32")
        self.started = True

    def feed(self, data: bytes) -> Dict[str, Any]:
        """Feed one audio message; the partial result to send."""
        self.started = True
        if len(data) % self.dtype.itemsize:
            raise ClientError(
                f"{len(data)} bytes is not a whole number of {self.dtype.name} samples"
            )
        pcm = self._to_model_rate(np.frombuffer(data, self.dtype))
        if (self.n_samples + len(pcm)) / self.rate > self.limits.max_stream_s:
            raise ClientError(
                f"stream longer than the server's limit of {self.limits.max_stream_s:g}"
                " s of audio: end it and start a new one",
                CLOSE_TOO_BIG,
            )
        self.stream.feedAudioContent(pcm)
        self.n_samples += len(pcm)
        self.since_partial += len(pcm)
        return {
            "type": "partial",
            "transcript": self._partial(),
            "audio_s": self.audio_s,
        }

    def _to_model_rate(self, samples: np.ndarray) -> np.ndarray:
        if self.dtype.kind == "f":
            if not np.all(np.isfinite(samples)):
                raise ClientError("float audio contains NaN or infinity")
            samples = np.clip(samples, -1.0, 1.0)
        if self.resampler is not None:
            floats = samples.astype(np.float32)
            if self.dtype.kind == "i":
                floats /= 32768.0
            samples = self.resampler.resample_chunk(floats)
        if samples.dtype.kind == "f":
            return np.round(samples * 32767.0).astype(np.int16)
        return samples.astype(np.int16, copy=False)

    def _partial(self) -> Optional[str]:
        if self.model.streams_natively:
            return self.stream.intermediateDecode()
        if self.since_partial / self.rate < self.limits.partial_every_s:
            return None  # a bidirectional model re-runs on everything: not each chunk
        self.since_partial = 0
        return self.stream.intermediateDecode()

    @property
    def audio_s(self) -> float:
        return round(self.n_samples / self.rate, 3)

    def finish(self) -> Dict[str, Any]:
        if self.resampler is not None:
            tail = self.resampler.resample_chunk(np.zeros(0, np.float32), last=True)
            self.stream.feedAudioContent(np.round(tail * 32767.0).astype(np.int16))
        best = self.stream.finishStreamWithMetadata(1).transcripts[0]
        return {
            "type": "final",
            "transcript": best.text,
            "confidence": float(best.confidence),
            "words": words_of(best),
            "audio_s": self.audio_s,
        }

    def close(self) -> None:
        self.stream.freeStream()


def transcribe_bytes(model: Model, data: bytes) -> Dict[str, Any]:
    """POST /stt: the JSON answer for one audio file's bytes."""
    import soundfile

    try:
        audio, duration = read_audio(io.BytesIO(data), model.sampleRate())
    except (RuntimeError, soundfile.LibsndfileError, ValueError) as err:
        raise ClientError(
            f"cannot read the audio ({err}); send a wav, flac, ogg or mp3 file"
        ) from err
    best = model.sttWithMetadata(audio, 1).transcripts[0]
    return {
        "transcript": best.text,
        "confidence": float(best.confidence),
        "duration": round(duration, 3),
        "words": words_of(best),
    }


def create_app(model: Model, limits: Limits = Limits()):
    """The Starlette application serving ``model``."""
    import anyio
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import FileResponse, JSONResponse
    from starlette.routing import Mount, Route, WebSocketRoute
    from starlette.staticfiles import StaticFiles
    from starlette.websockets import WebSocket

    active = {"streams": 0}
    # More model calls at once than cores only adds interpreters (memory) and
    # contention: the others wait here, in order.
    limiter = anyio.CapacityLimiter(limits.workers or len(os.sched_getaffinity(0)))

    async def run_in_threadpool(function, *args):
        return await anyio.to_thread.run_sync(lambda: function(*args), limiter=limiter)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "status": "ok",
                "sample_rate": model.sampleRate(),
                "streaming": model.streams_natively,
                "streams": active["streams"],
                "max_streams": limits.max_streams,
            }
        )

    async def stt(request: Request) -> JSONResponse:
        try:
            data = await _upload(request, limits.max_upload_bytes)
            return JSONResponse(await run_in_threadpool(transcribe_bytes, model, data))
        except ClientError as err:
            return JSONResponse({"error": str(err)}, status_code=err.status)

    async def index(request: Request) -> FileResponse:
        return FileResponse(os.path.join(WEB_DIR, "index.html"))

    async def ws(socket: WebSocket) -> None:
        await socket.accept()
        if active["streams"] >= limits.max_streams:
            await _refuse(
                socket,
                f"the server is at its limit of {limits.max_streams}"
                " streams: try again later",
                CLOSE_TRY_LATER,
            )
            return
        active["streams"] += 1
        try:
            await _serve_stream(socket, model, limits, run_in_threadpool)
        finally:
            active["streams"] -= 1

    routes = [
        Route("/", index),
        Route("/health", health),
        Route("/stt", stt, methods=["POST"]),
        WebSocketRoute("/ws", ws),
        Mount("/static", StaticFiles(directory=WEB_DIR), name="static"),
    ]
    return Starlette(routes=routes)


async def _upload(request, max_bytes: int) -> bytes:
    """The audio bytes of a POST: a multipart form's ``file`` field or the body."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise ClientError(f"upload larger than {max_bytes} bytes", status=413)
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form(max_part_size=max_bytes)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise ClientError("multipart upload without a 'file' field")
        data = await upload.read()
    else:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise ClientError(f"upload larger than {max_bytes} bytes", status=413)
            chunks.append(chunk)
        data = b"".join(chunks)
    if not data:
        raise ClientError("empty upload: send an audio file as the body")
    return data


async def _refuse(socket, message: str, code: int) -> None:
    await socket.send_text(json.dumps({"type": "error", "error": message}))
    await socket.close(code=code, reason=message[:120])


async def _serve_stream(socket, model: Model, limits: Limits, in_thread) -> None:
    """Receive audio and control messages until ``end``, an error or a disconnect."""
    from starlette.websockets import WebSocketDisconnect

    session = await in_thread(StreamSession, model, limits)
    try:
        while True:
            message = await socket.receive()
            if message["type"] == "websocket.disconnect":
                return
            data, text = message.get("bytes"), message.get("text")
            if data is not None:
                if len(data) > limits.max_message_bytes:
                    raise ClientError(
                        f"message of {len(data)} bytes; the limit is "
                        f"{limits.max_message_bytes}: send smaller chunks",
                        CLOSE_TOO_BIG,
                    )
                reply = await in_thread(session.feed, data)
                await socket.send_text(json.dumps(reply))
                continue
            control = _control(text)
            if control.get("type") == "start":
                session.configure(control)
            elif control.get("type") == "end":
                await socket.send_text(json.dumps(await in_thread(session.finish)))
                await socket.close(code=1000)
                return
            else:
                raise ClientError(
                    f"unknown message type {control.get('type')!r}: "
                    "send 'start', audio bytes or 'end'"
                )
    except ClientError as err:
        await _refuse(socket, str(err), err.close_code)
    except DeepSpeechError as err:
        await _refuse(socket, f"audio rejected: {err}", CLOSE_UNSUPPORTED)
    except WebSocketDisconnect:
        return
    finally:
        session.close()


def _control(text: Optional[str]) -> Dict[str, Any]:
    try:
        control = json.loads(text or "")
    except json.JSONDecodeError as err:
        raise ClientError(f"text messages must be JSON objects ({err.msg})") from err
    if not isinstance(control, dict):
        raise ClientError('text messages must be JSON objects like {"type": "end"}')
    return control


# --- command line ---------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="deepspeech-server", description="DeepSpeech speech-to-text server"
    )
    p.add_argument("--model", required=True, help="exported .tflite model")
    p.add_argument("--scorer", help="external scorer (.scorer package)")
    p.add_argument("--beam_width", type=int, help="beam width (default: the model's)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (0.0.0.0: all interfaces)",
    )
    p.add_argument("--port", type=int, default=8080)
    p.add_argument(
        "--max_streams",
        type=int,
        default=Limits.max_streams,
        help="concurrent WebSocket streams",
    )
    p.add_argument(
        "--max_stream_s",
        type=float,
        default=Limits.max_stream_s,
        help="audio seconds per stream",
    )
    p.add_argument(
        "--max_upload_mb",
        type=float,
        default=Limits.max_upload_bytes / 2**20,
        help="largest POST /stt upload (MiB)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        help="model and decoder calls at once (default: one per CPU core)",
    )
    p.add_argument(
        "--log_level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
    )
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        import uvicorn
    except ImportError:
        print(
            "deepspeech-server: error: install the server extra: pip install "
            '"deepspeech[server]"',
            file=sys.stderr,
        )
        return 1
    try:
        model = Model(args.model)
        model.configureDecoder(args.beam_width, args.scorer)
    except DeepSpeechError as err:
        print(f"deepspeech-server: error: {err}", file=sys.stderr)
        return 1
    limits = Limits(
        max_streams=args.max_streams,
        max_stream_s=args.max_stream_s,
        max_upload_bytes=int(args.max_upload_mb * 2**20),
        workers=args.workers,
    )
    # uvicorn closes a WebSocket whose message exceeds ws_max_size with 1009; ours
    # (max_message_bytes) answers with an error message first, so let it pass.
    uvicorn.run(
        create_app(model, limits),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        ws_max_size=limits.max_message_bytes * 4,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
