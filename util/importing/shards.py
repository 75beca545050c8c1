"""Write TFRecord shards of samples (the writing half of ``util.tfrecords``).

``bin/data_set_tool.py to-tfrecord`` builds one serialized ``tf.train.Example`` per
sample with :func:`audio_example` or :func:`features_example` and writes each shard with
:func:`write_shard`; ``util.tfrecords`` defines the record layout and reads shards back.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Sequence

import numpy as np

from util.audio import INT16_SCALE
from util.config import FeatureConfig
from util.tfrecords import KIND_AUDIO, KIND_FEATURES


def audio_example(
    transcript: str, wav_filename: str, samples: np.ndarray, sample_rate: int
) -> bytes:
    """Serialized Example of kind "audio"; ``samples`` float [n] in [-1, 1] or int16."""
    import tensorflow as tf

    pcm = np.asarray(samples)
    if pcm.dtype != np.int16:
        scaled = np.round(pcm.astype(np.float64) * INT16_SCALE)
        pcm = np.clip(scaled, -INT16_SCALE, INT16_SCALE - 1).astype(np.int16)
    feature = {
        "kind": _bytes(KIND_AUDIO.encode()),
        "transcript": _bytes(transcript.encode("utf-8")),
        "wav_filename": _bytes(wav_filename.encode("utf-8")),
        "audio": _bytes(pcm.astype("<i2").tobytes()),
        "sample_rate": tf.train.Feature(
            int64_list=tf.train.Int64List(value=[sample_rate])
        ),
    }
    return tf.train.Example(
        features=tf.train.Features(feature=feature)
    ).SerializeToString()


def features_example(
    transcript: str, wav_filename: str, features: np.ndarray, cfg: FeatureConfig
) -> bytes:
    """Serialized Example of kind "features": float32 [n_frames, n_mfcc], config."""
    import tensorflow as tf

    data = np.ascontiguousarray(features, dtype="<f4")
    feature = {
        "kind": _bytes(KIND_FEATURES.encode()),
        "transcript": _bytes(transcript.encode("utf-8")),
        "wav_filename": _bytes(wav_filename.encode("utf-8")),
        "features": _bytes(data.tobytes()),
        "feature_config": _bytes(json.dumps(dataclasses.asdict(cfg)).encode()),
    }
    return tf.train.Example(
        features=tf.train.Features(feature=feature)
    ).SerializeToString()


def _bytes(value: bytes) -> Any:
    import tensorflow as tf

    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def write_shard(path: str, records: Sequence[bytes]) -> None:
    """Write serialized records to ``path`` atomically (temporary file, rename)."""
    import tensorflow as tf

    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with tf.io.TFRecordWriter(tmp) as writer:
            for record in records:
                writer.write(record)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
