"""Audio files -> int16 mono PCM at the model's rate (wav, flac, mp3, ogg: libsndfile).

Channels are averaged (DeepSpeech's Python client read stereo as interleaved mono, and
got garbage) and other rates are resampled with soxr (high quality); both with a
warning, since the model was trained on mono audio at its own rate.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Tuple

import numpy as np
import soundfile
import soxr

INT16_MAX = 32767
FORMATS = "WAV, FLAC, MP3 or OGG/Opus"  # what libsndfile reads


class AudioError(ValueError):
    """An audio file that cannot be read: missing, empty, not audio, or corrupt.

    The message names the file and says what to do; the CLI prints it and skips the
    file.
    """


def read_audio(path: str, sample_rate: int) -> Tuple[np.ndarray, float]:
    """(int16 samples [n] at ``sample_rate``, duration s) of an audio file.

    Raises:
        AudioError: the file is missing, empty, not audio libsndfile can decode, or
            holds NaN/infinite samples.
    """
    data, rate = _decode(path)
    if data.shape[1] > 1:
        warnings.warn(
            f"{path}: {data.shape[1]} channels averaged to mono", stacklevel=2
        )
    mono = data.mean(axis=1)
    if rate != sample_rate:
        warnings.warn(
            f"{path}: resampled from {rate} Hz to the model's {sample_rate} Hz "
            "(accuracy may suffer)",
            stacklevel=2,
        )
        mono = soxr.resample(mono, rate, sample_rate, quality="HQ")
    pcm = np.clip(np.round(mono * 32768.0), -32768, INT16_MAX).astype(np.int16)
    return pcm, len(pcm) / float(sample_rate)


def _decode(path: Any) -> Tuple[np.ndarray, int]:
    """float32 [n, channels] and the rate of ``path`` (a path or a binary file
    object); AudioError on any failure."""
    name = path if isinstance(path, (str, os.PathLike)) else getattr(path, "name", "")
    name = name or "the audio data"
    if isinstance(path, (str, os.PathLike)):
        if not os.path.exists(path):
            raise AudioError(f"audio file {path!r} does not exist; check the path")
        if os.path.isdir(path):
            raise AudioError(f"{path!r} is a directory, not an audio file")
        if os.path.getsize(path) == 0:
            raise AudioError(
                f"audio file {path!r} is empty (0 bytes); record or copy it again"
            )
    try:
        data, rate = soundfile.read(path, dtype="float32", always_2d=True)
    except (soundfile.SoundFileError, RuntimeError, OSError) as err:
        reason = str(err).split(": ", 1)[-1].rstrip(".")
        raise AudioError(
            f"cannot read {name!r} as audio ({reason}); give a {FORMATS} file, or "
            "convert it, e.g. `ffmpeg -i IN -ac 1 -ar 16000 OUT.wav`"
        ) from err
    if not np.isfinite(data).all():
        raise AudioError(
            f"audio file {name!r} holds NaN or infinite samples; it is corrupt "
            "(re-export it as 16-bit PCM)"
        )
    return data, rate
