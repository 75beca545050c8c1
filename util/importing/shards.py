"""Write TFRecord shards of samples (the writing half of ``util.tfrecords``).

``bin/data_set_tool.py to-tfrecord`` builds one serialized ``tf.train.Example`` per
sample with :func:`audio_example` or :func:`features_example` and writes each shard with
:func:`write_shard`; ``util.tfrecords`` defines the record format (encoded without
TensorFlow) and reads shards back.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Iterable

import numpy as np

from ctcdecode.fileio import atomic_write
from util.audio import INT16_SCALE
from util.config import FeatureConfig
from util.tfrecords import KIND_AUDIO, KIND_FEATURES, encode_example, frame_record


def audio_example(
    transcript: str, wav_filename: str, samples: np.ndarray, sample_rate: int
) -> bytes:
    """Serialized Example of kind "audio"; ``samples`` float [n] in [-1, 1] or int16."""
    pcm = np.asarray(samples)
    if pcm.dtype != np.int16:
        scaled = np.round(pcm.astype(np.float64) * INT16_SCALE)
        pcm = np.clip(scaled, -INT16_SCALE, INT16_SCALE - 1).astype(np.int16)
    return encode_example(
        {
            "kind": KIND_AUDIO.encode(),
            "transcript": transcript.encode("utf-8"),
            "wav_filename": wav_filename.encode("utf-8"),
            "audio": pcm.astype("<i2").tobytes(),
            "sample_rate": int(sample_rate),
        }
    )


def features_example(
    transcript: str, wav_filename: str, features: np.ndarray, cfg: FeatureConfig
) -> bytes:
    """Serialized Example of kind "features": float32 [n_frames, n_mfcc], config."""
    data = np.ascontiguousarray(features, dtype="<f4")
    return encode_example(
        {
            "kind": KIND_FEATURES.encode(),
            "transcript": transcript.encode("utf-8"),
            "wav_filename": wav_filename.encode("utf-8"),
            "features": data.tobytes(),
            "feature_config": json.dumps(dataclasses.asdict(cfg)).encode(),
        }
    )


def write_shard(path: str, records: Iterable[bytes]) -> None:
    """Write serialized records to ``path`` as TFRecords, atomically."""
    with atomic_write(path, "wb") as out:
        for record in records:
            out.write(frame_record(record))
