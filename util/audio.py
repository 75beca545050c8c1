"""Read audio files as float32 mono PCM at the model's sample rate. No flags, no TF.

Contract (doc/ARCHITECTURE.rst, Contracts, "audio"): :func:`read_audio` returns
``samples: np.ndarray, shape [n], float32 in [-1, 1]`` at exactly the requested
``sample_rate``, or raises :class:`AudioError`, whose message names the file and the
fix. Conversions are explicit and reported in :class:`Conversion`:

* integer PCM scales like TF's ``decode_wav``, i.e. ``int16 / 32768``, so a 16 kHz mono
  16-bit WAV (DeepSpeech's training format) gives bit-identical samples to
  ``tf.audio.decode_wav``;
* several channels are downmixed by averaging them;
* another sample rate is resampled with soxr's high-quality sinc resampler (the call
  the inference client makes);
* the result is rounded to the 16-bit PCM grid (and clipped), so training, testing and
  the int16 client see identical samples; 16-bit sources are unchanged by this.

libsndfile (through soundfile) decodes WAV, FLAC, OGG/Vorbis and, since libsndfile
1.1, MP3. Only files it cannot decode whose extension is a compressed format
(:data:`FALLBACK_EXTENSIONS`) go to librosa/audioread, which needs ffmpeg or GStreamer.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass
from typing import Iterator, Tuple

import numpy as np
import soundfile as sf
from absl import logging

from ctcdecode.fileio import atomic_path

SOXR_QUALITY = "HQ"  # soxr's high-quality sinc resampler (librosa's "soxr_hq")
INT16_SCALE = 32768.0  # int16 PCM <-> [-1, 1), as TF's decode_wav
INT16_SCALE = 32768.0  # full scale of 16-bit PCM, as TF's decode_wav divides by it
# Extensions handed to audioread when libsndfile fails (compressed, container formats).
FALLBACK_EXTENSIONS = frozenset({".mp3", ".m4a", ".mp4", ".aac", ".wma", ".opus"})
_CONVERT_HINT = (
    "convert it to 16-bit PCM WAV, e.g. `sox IN -b 16 OUT.wav` or "
    "`ffmpeg -i IN -c:a pcm_s16le OUT.wav`"
)
_SOUNDFILE_ERRORS = (sf.SoundFileError, RuntimeError, TypeError)


class AudioError(ValueError):
    """An audio file that cannot be used; the message names the file and the fix."""


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says, before any conversion."""

    path: str
    sample_rate: int  # Hz, at the source
    n_channels: int
    n_frames_source: int  # samples per channel at the source rate
    duration_s: float  # seconds


@dataclass(frozen=True)
class Conversion:
    """Which conversions :func:`read_audio` applied to reach the requested format."""

    resampled: bool
    downmixed: bool
    source_rate: int  # Hz
    source_channels: int


def audio_info(path: str) -> AudioInfo:
    """Header facts of ``path`` without decoding the samples.

    Raises:
        AudioError: the file is missing, unreadable, or holds no samples.
    """
    _check_is_file(path)
    try:
        info = sf.info(path)
        rate, n_channels, n_frames = info.samplerate, info.channels, info.frames
    except _SOUNDFILE_ERRORS as err:
        _raise_unless_fallback(path, err)
        rate, n_channels, n_frames = _fallback_info(path)
    if rate <= 0 or n_frames <= 0:
        raise AudioError(f"audio file {path!r} contains no samples; remove it")
    return AudioInfo(path, int(rate), int(n_channels), int(n_frames), n_frames / rate)


def read_audio(path: str, sample_rate: int) -> Tuple[np.ndarray, Conversion]:
    """Samples of ``path`` as float32 mono at ``sample_rate`` Hz.

    Args:
        path: WAV, FLAC, OGG or MP3 file (any rate, any number of channels).
        sample_rate: target rate in Hz, normally ``FeatureConfig.audio_sample_rate``.

    Returns:
        ``(samples, conversion)``: ``samples`` is ``np.ndarray [n] float32`` in
        [-1, 1]; ``conversion`` says what was resampled or downmixed.

    Raises:
        AudioError: missing file, unreadable/corrupt data, no samples, NaN/inf.
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    data, source_rate = _decode(path)  # [n, channels] float32
    return convert_samples(data, source_rate, sample_rate, path)


def convert_samples(
    data: np.ndarray, source_rate: int, sample_rate: int, path: str
) -> Tuple[np.ndarray, Conversion]:
    """:func:`read_audio`'s conversions of decoded audio ``data [n, channels]`` float32
    at ``source_rate`` (downmix, resample, int16 grid); ``path`` names it in errors.

    Also used for audio that is not a file of its own (``.sdb`` sample databases).
    """
    n_samples, n_channels = data.shape
    if n_samples == 0 or n_channels == 0:
        raise AudioError(f"audio file {path!r} contains no samples; remove it")
    if n_channels == 1:
        samples = np.ascontiguousarray(data[:, 0])
    else:
        samples = data.mean(axis=1, dtype=np.float32)
    resampled = source_rate != sample_rate
    if resampled:
        samples = _resample(samples, source_rate, sample_rate)
    if not np.all(np.isfinite(samples)):
        raise AudioError(f"audio file {path!r} has NaN or infinite samples; fix it")
    _to_int16_grid(samples)
    conversion = Conversion(resampled, n_channels > 1, int(source_rate), n_channels)
    return samples, conversion


def write_wav(path: str, samples: np.ndarray, sample_rate: int) -> None:
    """Write ``samples`` to ``path`` as 16-bit PCM WAV, atomically.

    Args:
        path: destination; written as a temporary file in the same directory, then
            renamed, so readers never see a partial file.
        samples: ``[n]`` mono or ``[n, channels]``; float in [-1, 1] (scaled by
            32768, rounded, clipped: the inverse of :func:`read_audio`) or int16 as is.
        sample_rate: Hz.
    """
    data = np.asarray(samples)
    if data.ndim not in (1, 2):
        raise ValueError(f"samples must be [n] or [n, channels], got {data.shape}")
    if data.dtype != np.int16:
        if not np.issubdtype(data.dtype, np.floating):
            raise ValueError(f"samples must be float or int16, got {data.dtype}")
        scaled = np.round(data.astype(np.float64) * INT16_SCALE)
        data = np.clip(scaled, -INT16_SCALE, INT16_SCALE - 1).astype(np.int16)
    with atomic_path(path) as tmp_path:
        sf.write(tmp_path, data, sample_rate, subtype="PCM_16", format="WAV")


def _check_is_file(path: str) -> None:
    if not os.path.isfile(path):
        raise AudioError(
            f"audio file {path!r} does not exist or is not a file; check the path "
            "(CSV paths are relative to the CSV's directory)"
        )


def _raise_unless_fallback(path: str, err: Exception) -> None:
    """Raise AudioError for ``err`` unless audioread should try ``path``."""
    if os.path.splitext(path)[1].lower() not in FALLBACK_EXTENSIONS:
        raise AudioError(f"cannot decode audio file {path!r} ({err}); {_CONVERT_HINT}")
    logging.debug("libsndfile cannot decode %s (%s); trying audioread", path, err)


def _decode(path: str) -> Tuple[np.ndarray, int]:
    """(samples ``[n, channels]`` float32, sample rate in Hz) of ``path``."""
    _check_is_file(path)
    try:
        data, rate = sf.read(path, dtype="float32", always_2d=True)
        return data, int(rate)
    except _SOUNDFILE_ERRORS as err:
        _raise_unless_fallback(path, err)
    return _fallback_decode(path)


@contextlib.contextmanager
def _quiet_fallback() -> Iterator[None]:
    """Silence warnings that are expected on the audioread path.

    librosa deprecates its audioread fallback (FutureWarning/UserWarning) and
    audioread imports aifc/audioop/sunau (DeprecationWarning on Python >= 3.11); here
    that path is intended, so the warnings would only be noise in training logs.
    """
    with warnings.catch_warnings():
        for category in (FutureWarning, UserWarning, DeprecationWarning):
            warnings.simplefilter("ignore", category)
        yield


def _fallback_decode(path: str) -> Tuple[np.ndarray, int]:
    """Decode with librosa/audioread (ffmpeg, GStreamer, Core Audio) when present."""
    import audioread  # librosa's dependency; heavy, so only imported on this path
    import librosa

    try:
        with _quiet_fallback():
            data, rate = librosa.load(path, sr=None, mono=False, dtype=np.float32)
    except (audioread.DecodeError, OSError, EOFError, RuntimeError, ValueError) as err:
        raise AudioError(
            f"cannot decode audio file {path!r} with libsndfile or audioread "
            f"({err!r}); install ffmpeg or {_CONVERT_HINT}"
        ) from err
    data = data[:, np.newaxis] if data.ndim == 1 else data.T
    return np.ascontiguousarray(data, dtype=np.float32), int(rate)


def _fallback_info(path: str) -> Tuple[int, int, int]:
    """(rate Hz, channels, frames) from audioread's header parse."""
    import audioread

    try:
        with _quiet_fallback(), audioread.audio_open(path) as fin:
            return (
                fin.samplerate,
                fin.channels,
                int(round(fin.duration * fin.samplerate)),
            )
    except (audioread.DecodeError, OSError, EOFError) as err:
        raise AudioError(
            f"cannot read the header of audio file {path!r} with libsndfile or "
            f"audioread ({err!r}); install ffmpeg or {_CONVERT_HINT}"
        ) from err


def _resample(samples: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """``samples [n]`` float32 at ``source_rate`` -> float32 at ``target_rate``.

    The same soxr call as the inference client (native_client/python/deepspeech/
    audio.py), so both sides see the same samples (tests/test_client.py checks it).
    """
    import soxr

    out = soxr.resample(samples, source_rate, target_rate, quality=SOXR_QUALITY)
    return np.ascontiguousarray(out, dtype=np.float32)


def _to_int16_grid(samples: np.ndarray) -> np.ndarray:
    """Round float samples to the 16-bit PCM grid, in place; int16 sources unchanged.

    The exported model and the client take int16 samples, and the importers write
    16-bit WAVs; quantising resampled or downmixed audio here makes training, testing
    and serving see identical values (train/serve parity).
    """
    np.multiply(samples, INT16_SCALE, out=samples)
    np.round(samples, out=samples)
    np.clip(samples, -INT16_SCALE, INT16_SCALE - 1, out=samples)
    np.divide(samples, INT16_SCALE, out=samples)
    return samples
