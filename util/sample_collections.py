"""DeepSpeech 0.9 sample databases (``.sdb``, ``bin/data_set_tool.py``'s output).

Format, from DeepSpeech 0.9.3's
``training/deepspeech_training/util/sample_collections.py``
(``DirectSDBWriter``/``SDB``); every integer is big-endian::

    b"SAMPLEDB"
    uint64 M, then M bytes of JSON: {"schema": [{"content": "speech", "mime-type":
           AUDIO_TYPE}, {"content": "transcript", "mime-type": "text/plain"}]}
           (the transcript column is absent in unlabeled databases)
    uint64 S: bytes from after this field to the index; uint64 number of samples
    samples, each: uint32 entry length, then per schema column uint32 length + bytes
    index: uint64 bytes after this field, uint64 n, n x uint64 absolute entry offsets

``AUDIO_TYPE`` is ``audio/wav`` (a complete WAV file) or
``application/vnd.mozilla.opus``: 0.9's Opus container (``util/audio.py``
``write_opus``): uint32 PCM byte count, uint32 rate, uint8 channels, uint8 sample width,
then per 60 ms frame a uint16 length and an Opus packet. Opus needs libopus (Debian
``libopus0``) through the ``opuslib`` package, as in 0.9.

A sample of a database is referred to as ``<file>.sdb:<index>`` (0.9's sample ids);
``util.samples`` reads a database wherever a CSV is accepted and ``util.feeding`` loads
the audio of such a reference with :func:`read_sdb_audio`. No TensorFlow here.
"""

from __future__ import annotations

import io
import json
import os
import struct
import uuid
from dataclasses import dataclass
from typing import Any, BinaryIO, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import soundfile as sf

from util.audio import AudioError, AudioInfo, convert_samples

MAGIC = b"SAMPLEDB"
SUFFIX = ".sdb"
REF_SEPARATOR = ":"
AUDIO_TYPE_WAV = "audio/wav"
AUDIO_TYPE_OPUS = "application/vnd.mozilla.opus"
AUDIO_TYPES = (AUDIO_TYPE_WAV, AUDIO_TYPE_OPUS)
CONTENT_SPEECH, CONTENT_TRANSCRIPT, MIME_TEXT = "speech", "transcript", "text/plain"
_U32, _U64 = struct.Struct(">I"), struct.Struct(">Q")
_OPUS_HEADER = struct.Struct(">IIBB")  # PCM bytes, rate, channels, sample width
_OPUS_CHUNK = struct.Struct(">H")
OPUS_FRAME_MS = 60  # 0.9's get_opus_frame_size
DEFAULT_BUFFER = 1 << 20  # bytes, 0.9's BUFFER_SIZE (--read_buffer)


class SDBError(ValueError):
    """A file that is not a readable sample database; the message names it."""


@dataclass(frozen=True)
class SDBEntry:
    """One sample: ``audio`` in ``audio_type`` and its transcript (None: unlabeled)."""

    index: int
    audio: bytes
    transcript: Optional[str]


def is_sdb(path: str) -> bool:
    return path.lower().endswith(SUFFIX)


def sample_ref(path: str, index: int) -> str:
    return f"{path}{REF_SEPARATOR}{index}"


def split_ref(ref: str) -> Optional[Tuple[str, int]]:
    """(database, index) of a ``<file>.sdb:<index>`` reference; None otherwise."""
    path, sep, index = ref.rpartition(REF_SEPARATOR)
    if not sep or not is_sdb(path) or not index.isdigit():
        return None
    return path, int(index)


class SDBReader:
    """Random access to a database's samples (0.9's ``SDB``); a context manager."""

    def __init__(self, path: str, buffering: int = DEFAULT_BUFFER) -> None:
        self.path = path
        try:
            self._file: BinaryIO = open(path, "rb", buffering=buffering)
        except OSError as err:
            raise SDBError(f"cannot open sample database {path!r}: {err}") from err
        try:
            self._read_header()
        except (SDBError, struct.error, ValueError, UnicodeDecodeError) as err:
            self._file.close()
            if isinstance(err, SDBError):
                raise
            raise SDBError(f"sample database {path!r} is corrupted ({err})") from err

    def _read_header(self) -> None:
        fin = self._file
        if fin.read(len(MAGIC)) != MAGIC:
            raise SDBError(
                f"{self.path!r} is not a sample database (no SAMPLEDB magic)"
            )
        meta = json.loads(fin.read(self._u64()).decode("utf-8"))
        schema = meta.get("schema") if isinstance(meta, dict) else None
        if not isinstance(schema, list):
            raise SDBError(f"sample database {self.path!r} has no schema")
        self.schema = schema
        speech = self._column(CONTENT_SPEECH, AUDIO_TYPES)
        if speech is None:
            raise SDBError(
                f"sample database {self.path!r} holds no speech of a known type "
                f"({', '.join(AUDIO_TYPES)})"
            )
        self.speech_column = speech
        self.audio_type = schema[speech]["mime-type"]
        self.transcript_column = self._column(CONTENT_TRANSCRIPT, (MIME_TEXT,))
        fin.seek(self._u64() + _U64.size, io.SEEK_CUR)  # skip the samples
        n = self._u64()
        raw = fin.read(n * _U64.size)
        if len(raw) != n * _U64.size:
            raise SDBError(f"sample database {self.path!r} is truncated (index)")
        self.offsets = struct.unpack(f">{n}Q", raw)

    def _u64(self) -> int:
        data = self._file.read(_U64.size)
        if len(data) != _U64.size:
            raise SDBError(f"sample database {self.path!r} is truncated")
        return _U64.unpack(data)[0]

    def _column(self, content: str, mime_types: Sequence[str]) -> Optional[int]:
        for index, column in enumerate(self.schema):
            if (
                column.get("content") == content
                and column.get("mime-type") in mime_types
            ):
                return index
        return None

    def __len__(self) -> int:
        return len(self.offsets)

    def __getitem__(self, index: int) -> SDBEntry:
        if not 0 <= index < len(self.offsets):
            raise SDBError(f"{self.path!r} has no sample {index} ({len(self)} samples)")
        self._file.seek(self.offsets[index] + _U32.size)
        columns = []
        for _ in self.schema:
            (size,) = _U32.unpack(self._file.read(_U32.size))
            data = self._file.read(size)
            if len(data) != size:
                raise SDBError(
                    f"sample database {self.path!r} is truncated (sample {index})"
                )
            columns.append(data)
        text = self.transcript_column
        return SDBEntry(
            index,
            columns[self.speech_column],
            None if text is None else columns[text].decode("utf-8"),
        )

    def __iter__(self) -> Iterator[SDBEntry]:
        for index in range(len(self)):
            yield self[index]

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "SDBReader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class SDBWriter:
    """Write a database exactly as 0.9's ``DirectSDBWriter`` did; a context manager.

    ``add(audio_bytes, transcript)`` takes the audio already in ``audio_type`` (see
    :func:`encode_audio`). The file is written under a temporary name and renamed on
    a clean close, so an interrupted run leaves no half database.
    """

    def __init__(
        self, path: str, audio_type: str = AUDIO_TYPE_OPUS, labeled: bool = True
    ):
        if audio_type not in AUDIO_TYPES:
            raise SDBError(f"audio type {audio_type!r} is not one of {AUDIO_TYPES}")
        self.path, self.audio_type, self.labeled = path, audio_type, labeled
        self._tmp = f"{path}.tmp-{uuid.uuid4().hex}"
        self._file: BinaryIO = open(self._tmp, "wb")
        schema = [{"content": CONTENT_SPEECH, "mime-type": audio_type}]
        if labeled:
            schema.append({"content": CONTENT_TRANSCRIPT, "mime-type": MIME_TEXT})
        meta = json.dumps({"schema": schema}).encode()
        self._file.write(MAGIC + _U64.pack(len(meta)) + meta)
        self._samples_at = self._file.tell()
        self._file.write(b"\0" * 2 * _U64.size)  # sizes, filled in by close()
        self._offsets: List[int] = []

    def add(self, audio: bytes, transcript: Optional[str] = None) -> str:
        """Append one sample; returns its reference ``<path>:<index>``."""
        columns = [audio]
        if self.labeled:
            if transcript is None:
                raise SDBError(
                    f"{self.path!r} is labeled: every sample needs a transcript"
                )
            columns.append(transcript.encode("utf-8"))
        body = b"".join(_U32.pack(len(c)) + c for c in columns)
        self._offsets.append(self._file.tell())
        self._file.write(_U32.pack(len(body)) + body)
        return sample_ref(self.path, len(self._offsets) - 1)

    def close(self, keep: bool = True) -> None:
        if self._file.closed:
            return
        index_at = self._file.tell()
        n = len(self._offsets)
        index = _U64.pack(n) + b"".join(_U64.pack(o) for o in self._offsets)
        self._file.write(_U64.pack(len(index)) + index)
        self._file.seek(self._samples_at)
        self._file.write(
            _U64.pack(index_at - self._samples_at - _U64.size) + _U64.pack(n)
        )
        self._file.close()
        if keep:
            os.replace(self._tmp, self.path)
        elif os.path.exists(self._tmp):
            os.remove(self._tmp)

    def __enter__(self) -> "SDBWriter":
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        self.close(keep=exc_type is None)


# -- audio inside a database ----------------------------------------------------------


def audio_header(audio: bytes, audio_type: str, ref: str) -> Tuple[int, int, int]:
    """(sample rate Hz, channels, frames) without decoding the audio."""
    if audio_type == AUDIO_TYPE_OPUS:
        if len(audio) < _OPUS_HEADER.size:
            raise AudioError(f"{ref}: Opus data too short")
        pcm_bytes, rate, channels, width = _OPUS_HEADER.unpack_from(audio)
        if not rate or not channels or not width:
            raise AudioError(f"{ref}: invalid Opus header")
        return rate, channels, pcm_bytes // (channels * width)
    try:
        info = sf.info(io.BytesIO(audio))
    except (sf.SoundFileError, RuntimeError, TypeError) as err:
        raise AudioError(f"{ref}: cannot read its WAV header ({err})") from err
    return int(info.samplerate), int(info.channels), int(info.frames)


def decode_audio(audio: bytes, audio_type: str, ref: str) -> Tuple[np.ndarray, int]:
    """(float32 [n, channels] in [-1, 1], rate Hz) of one sample's audio."""
    if audio_type == AUDIO_TYPE_OPUS:
        return _decode_opus(audio, ref)
    try:
        data, rate = sf.read(io.BytesIO(audio), dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError, TypeError) as err:
        raise AudioError(f"{ref}: cannot decode its WAV data ({err})") from err
    return data, int(rate)


def encode_audio(
    samples: np.ndarray, rate: int, audio_type: str, bitrate: Optional[int] = None
) -> bytes:
    """``samples`` float32 [n] mono in [-1, 1] as ``audio_type`` bytes (16-bit PCM)."""
    pcm = np.clip(np.round(samples * 32768.0), -32768, 32767).astype("<i2")
    if audio_type == AUDIO_TYPE_WAV:
        out = io.BytesIO()
        sf.write(out, pcm, rate, subtype="PCM_16", format="WAV")
        return out.getvalue()
    opuslib = _opuslib()
    encoder = opuslib.Encoder(rate, 1, "audio")
    if bitrate is not None:
        encoder.bitrate = bitrate
    frame = OPUS_FRAME_MS * rate // 1000
    raw = pcm.tobytes()
    parts = [_OPUS_HEADER.pack(len(raw), rate, 1, 2)]
    for start in range(0, len(raw), frame * 2):
        chunk = raw[start : start + frame * 2].ljust(frame * 2, b"\0")
        packet = encoder.encode(chunk, frame)
        parts.append(_OPUS_CHUNK.pack(len(packet)) + packet)
    return b"".join(parts)


def _decode_opus(audio: bytes, ref: str) -> Tuple[np.ndarray, int]:
    rate, channels, n_frames = audio_header(audio, AUDIO_TYPE_OPUS, ref)
    pcm_bytes, _, _, width = _OPUS_HEADER.unpack_from(audio)
    if width != 2:
        raise AudioError(f"{ref}: Opus samples of {width} bytes; 0.9 wrote 2")
    decoder = _opuslib().Decoder(rate, channels)
    frame = OPUS_FRAME_MS * rate // 1000
    pos, pcm = _OPUS_HEADER.size, bytearray()
    while len(pcm) < pcm_bytes:
        if pos + _OPUS_CHUNK.size > len(audio):
            raise AudioError(f"{ref}: Opus data truncated")
        (size,) = _OPUS_CHUNK.unpack_from(audio, pos)
        pcm += decoder.decode(audio[pos + 2 : pos + 2 + size], frame)
        pos += 2 + size
    data = np.frombuffer(bytes(pcm[:pcm_bytes]), "<i2").astype(np.float32) / 32768.0
    return data.reshape(-1, channels), rate


def _opuslib() -> Any:
    try:
        import opuslib
    except Exception as err:  # ImportError, or opuslib's own "libopus not found"
        raise AudioError(
            "Opus-coded sample databases need libopus and the opuslib package: "
            f"apt-get install libopus0 && pip install opuslib ({err})"
        ) from err
    return opuslib


def read_sdb_audio(ref: str, sample_rate: int, buffering: int = 1 << 16) -> np.ndarray:
    """float32 [n] samples of ``<file>.sdb:<index>`` at ``sample_rate`` (as
    ``util.audio.read_audio`` converts files: downmix, soxr, int16 grid)."""
    parts = split_ref(ref)
    if parts is None:
        raise ValueError(f"{ref!r} is not a sample database reference <file>.sdb:<n>")
    with SDBReader(parts[0], buffering) as reader:
        entry = reader[parts[1]]
        data, rate = decode_audio(entry.audio, reader.audio_type, ref)
    samples, _ = convert_samples(data, rate, sample_rate, ref)
    return samples


# -- headers of a database's samples (util.samples validates them like CSV rows) -----


@dataclass(frozen=True)
class SDBHeader:
    """One sample's transcript and audio header, or why its header is unreadable."""

    index: int
    ref: str  # <file>.sdb:<index>
    transcript: str
    n_bytes: int  # of its audio
    info: Optional[AudioInfo]
    error: Optional[str]


def sdb_headers(
    path: str, limit: int = 0, read_buffer: int = DEFAULT_BUFFER
) -> Iterator[SDBHeader]:
    """The first ``limit`` samples' headers (0 = all), without decoding audio.

    Raises:
        SDBError: not a database, corrupted, or unlabeled (training needs transcripts).
    """
    if not os.path.isfile(path):
        raise SDBError(f"sample database {path!r} does not exist")
    with SDBReader(path, read_buffer) as reader:
        if reader.transcript_column is None:
            raise SDBError(f"sample database {path!r} is unlabeled (no transcripts)")
        n = len(reader) if not limit else min(limit, len(reader))
        for index in range(n):
            entry = reader[index]
            ref = sample_ref(path, index)
            info, error = None, None
            try:
                rate, n_ch, frames = audio_header(entry.audio, reader.audio_type, ref)
                info = AudioInfo(ref, rate, n_ch, frames, frames / rate)
            except AudioError as err:
                error = str(err)
            yield SDBHeader(
                index, ref, entry.transcript or "", len(entry.audio), info, error
            )
