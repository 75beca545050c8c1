"""TFRecord shards of samples: the record format, and reading records back.

A shard holds one ``tf.train.Example`` per sample (``util.importing.shards`` writes
them, driven by ``bin/data_set_tool.py``): ``transcript`` and ``wav_filename`` (the
source, for reports) as bytes, and either ``audio`` (16-bit little-endian PCM at
``sample_rate``, kind "audio") or ``features`` (float32 ``[n_frames, n_input]`` bytes
plus the FeatureConfig as JSON, kind "features"). Few large files instead of millions
of small ones suit network file systems and object stores (tensorflow/models
deep_speech_1's ``prepare_libri``).

The trainer takes a shard (or a glob of shards) wherever it takes a CSV:
``util.samples.read_sample_set`` reads ``.tfrecord`` sources through this module;
their Samples have ``wav_filename = "<shard>#<offset>"``, the byte offset of the
record, and ``row`` = its index in the shard. Reading one record is then a seek, no
index and no state: :func:`read_record_audio` serves ``util.feeding`` for records, and
feature shards are served like a feature cache (:class:`RecordFeatures`). Audio
records give exactly the samples that ``util.audio.read_audio`` gives for the 16-bit
WAV they were made from, so training on shards and on the CSV sees identical batches.
This module knows nothing of Samples (``util.samples`` imports it, not the reverse).
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import struct
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
from absl import logging

from util.audio import INT16_SCALE, AudioError
from util.config import FeatureConfig

SUFFIX = ".tfrecord"
REF_SEPARATOR = "#"
KIND_AUDIO = "audio"
KIND_FEATURES = "features"
_HEADER = struct.Struct("<QI")  # record length (uint64), masked CRC32C of the length


def is_tfrecord_source(path: str) -> bool:
    """True for a shard path or a glob of shards (``train-*.tfrecord``)."""
    return path.endswith(SUFFIX)


def shard_paths(pattern: str) -> List[str]:
    """The shards a path or glob names, sorted; FileNotFoundError if there are none."""
    paths = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
    paths = [p for p in paths if os.path.isfile(p)]
    if not paths:
        raise FileNotFoundError(f"no TFRecord shard matches {pattern!r}")
    return paths


def split_ref(path: str) -> Optional[Tuple[str, int]]:
    """(shard, byte offset) of a record reference, None for an ordinary file path."""
    shard, sep, offset = path.rpartition(REF_SEPARATOR)
    if not sep or not shard.endswith(SUFFIX) or not offset.isdigit():
        return None
    return shard, int(offset)


def file_of(path: str) -> str:
    """The file on disk behind a sample path (the shard of a record reference)."""
    ref = split_ref(path)
    return ref[0] if ref else path


# -- the format: tf.train.Example and TFRecord framing, without TensorFlow -----------
#
# An Example is Features{map<string, Feature>}; a Feature here is a BytesList or an
# Int64List of one value (tensorflow/core/example/{example,feature}.proto). The fields
# are encoded as protobuf wire format directly, so the import tooling writes shards and
# the trainer reads them without importing TensorFlow; tf.data.TFRecordDataset and
# tf.train.Example read these shards unchanged (tests/test_data_set_tool.py checks).
# A TFRecord is: uint64 length, masked CRC32C of the length, data, masked CRC32C of
# the data (tensorflow/core/lib/io/record_writer.cc).

Field = Union[bytes, int]  # a BytesList or an Int64List of one value
_LEN = 2  # protobuf wire type: length-delimited
_VARINT = 0  # protobuf wire type: varint
_MASK_DELTA = 0xA282EAD8


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # int64 as protobuf encodes it (two's complement)
    out = bytearray()
    while True:
        bits, value = value & 0x7F, value >> 7
        out.append(bits | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _delimited(field_number: int, payload: bytes) -> bytes:
    return _varint(field_number << 3 | _LEN) + _varint(len(payload)) + payload


def encode_example(fields: Dict[str, Field]) -> bytes:
    """A serialized ``tf.train.Example`` holding ``fields`` (bytes or int values)."""
    entries = []
    for key, value in sorted(fields.items()):
        if isinstance(value, bytes):
            feature = _delimited(1, _delimited(1, value))  # bytes_list.value
        else:
            feature = _delimited(3, _delimited(1, _varint(int(value))))  # int64_list
        entry = _delimited(1, key.encode("utf-8")) + _delimited(2, feature)
        entries.append(_delimited(1, entry))  # Features.feature (map entry)
    return _delimited(1, b"".join(entries))  # Example.features


def _read_varint(data: bytes, pos: int) -> Tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _parse(data: bytes) -> Iterator[Tuple[int, int, Any]]:
    """(field number, wire type, value) of each field; value is bytes or an int."""
    pos = 0
    while pos < len(data):
        tag, pos = _read_varint(data, pos)
        number, wire = tag >> 3, tag & 7
        if wire == _VARINT:
            value, pos = _read_varint(data, pos)
        elif wire == _LEN:
            size, pos = _read_varint(data, pos)
            value, pos = data[pos : pos + size], pos + size
            if len(value) < size:
                raise ValueError("truncated field")
        elif wire == 1:  # 64-bit
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 5:  # 32-bit
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, wire, value


def _feature_value(feature: bytes) -> Field:
    for number, _, payload in _parse(feature):
        if number == 1:  # BytesList
            values = [v for n, _, v in _parse(payload) if n == 1]
            return values[0] if values else b""
        if number == 3:  # Int64List, packed (as TF writes it) or not
            ints: List[int] = []
            for n, wire, v in _parse(payload):
                if n != 1:
                    continue
                if wire == _VARINT:
                    ints.append(v)
                else:
                    pos = 0
                    while pos < len(v):
                        x, pos = _read_varint(v, pos)
                        ints.append(x)
            value = ints[0] if ints else 0
            return value - (1 << 64) if value >= 1 << 63 else value
    raise ValueError("feature is neither a BytesList nor an Int64List")


def parse_example(data: bytes) -> Dict[str, Field]:
    """The fields of a serialized ``tf.train.Example`` (first value of each list)."""
    fields: Dict[str, Field] = {}
    for number, _, features in _parse(data):
        if number != 1:
            continue
        for n, _, entry in _parse(features):
            if n != 1:
                continue
            key, value = "", b""
            for k, _, v in _parse(entry):
                if k == 1:
                    key = v.decode("utf-8")
                elif k == 2:
                    value = v
            fields[key] = _feature_value(value)
    return fields


def _masked_crc(data: bytes) -> int:
    import google_crc32c  # C implementation; a pure-Python fallback if unbuilt

    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def frame_record(data: bytes) -> bytes:
    """``data`` framed as one TFRecord (length, its CRC, data, data CRC)."""
    length = struct.pack("<Q", len(data))
    return b"".join(
        (
            length,
            struct.pack("<I", _masked_crc(length)),
            data,
            struct.pack("<I", _masked_crc(data)),
        )
    )


# -- reading --------------------------------------------------------------------------


def iter_records(shard: str) -> Iterator[Tuple[int, bytes]]:
    """(byte offset, serialized Example) of each record of ``shard``, in order.

    Reads TFRecord framing directly (length, CRC, data, CRC) so the offsets are known;
    CRCs are not checked here (``frame_record`` writes them; ``tf.data`` checks them).
    """
    with open(shard, "rb") as f:
        while True:
            offset = f.tell()
            header = f.read(_HEADER.size)
            if not header:
                return
            if len(header) < _HEADER.size:
                raise ValueError(f"{shard}: truncated record header at byte {offset}")
            length, _ = _HEADER.unpack(header)
            data = f.read(length)
            if len(data) < length or len(f.read(4)) < 4:
                raise ValueError(f"{shard}: truncated record at byte {offset}")
            yield offset, data


def read_record(shard: str, offset: int) -> Dict[str, Field]:
    """The fields of the ``tf.train.Example`` at ``offset`` of ``shard``."""
    with open(shard, "rb") as f:
        f.seek(offset)
        length, _ = _HEADER.unpack(f.read(_HEADER.size))
        return parse_example(f.read(length))


def _field(example: Dict[str, Field], name: str) -> bytes:
    value = example.get(name)
    if not isinstance(value, bytes):
        raise ValueError(f"TFRecord example lacks the bytes field {name!r}")
    return value


def example_kind(example: Dict[str, Field]) -> str:
    return _field(example, "kind").decode()


def example_audio(example: Dict[str, Field], where: str) -> Tuple[np.ndarray, int]:
    """(float32 [n] in [-1, 1], sample rate Hz) of an audio Example."""
    if example_kind(example) != KIND_AUDIO:
        raise AudioError(
            f"{where} holds features, not audio; train on audio shards "
            "(data_set_tool.py --kind audio) or on feature shards only"
        )
    pcm = np.frombuffer(_field(example, "audio"), dtype="<i2")
    rate = int(example["sample_rate"])
    return (pcm.astype(np.float32) / np.float32(INT16_SCALE)), rate


def example_features(example: Dict[str, Field], n_input: int) -> np.ndarray:
    """float32 [n_frames, n_input] of a features Example."""
    return np.frombuffer(_field(example, "features"), dtype="<f4").reshape(-1, n_input)


def read_record_audio(path: str, sample_rate: int) -> np.ndarray:
    """float32 [n] samples of a record reference ``<shard>#<offset>``."""
    ref = split_ref(path)
    if ref is None:
        raise ValueError(f"{path!r} is not a TFRecord reference <shard>#<offset>")
    samples, rate = example_audio(read_record(*ref), path)
    if rate != sample_rate:
        raise AudioError(
            f"{path} holds {rate} Hz audio, the model needs {sample_rate} Hz; "
            "rewrite the shards with data_set_tool.py"
        )
    return samples


def example_transcript(example: Dict[str, Field]) -> str:
    return _field(example, "transcript").decode("utf-8")


def check_feature_config(
    example: Dict[str, Field], cfg: FeatureConfig, shard: str
) -> None:
    """Raise ValueError unless the features Example was computed with ``cfg``."""
    stored = json.loads(_field(example, "feature_config"))
    if stored != dataclasses.asdict(cfg):
        raise ValueError(
            f"{shard} holds features computed with {stored}, the model uses "
            f"{dataclasses.asdict(cfg)}; rewrite the shards or use audio shards"
        )


def holds_features(samples: Sequence[Any]) -> bool:
    """True when every sample (a ``util.samples.Sample``) is a features record, False
    when none is.

    Raises ValueError for a mix: features skip the MFCC step, so one dataset cannot
    serve both.
    """
    shards = {}
    for s in samples:
        ref = split_ref(s.wav_filename)
        key = ref[0] if ref else None
        if key not in shards:
            shards[key] = ref is not None and example_kind(read_record(*ref)) == (
                KIND_FEATURES
            )
    kinds = set(shards.values())
    if len(kinds) > 1:
        raise ValueError(
            "feature shards cannot be mixed with audio files or audio shards in one "
            "set; write audio shards (data_set_tool.py --kind audio) to mix sources"
        )
    return kinds == {True}


class RecordFeatures:
    """Features of feature-shard samples, read on demand: a FeatureCache stand-in.

    ``util.feeding.make_dataset`` uses it for samples of kind "features" instead of
    decoding audio, through the same ``n_samples``/``features(i)`` interface.
    """

    def __init__(self, samples: Sequence[Any], cfg: FeatureConfig) -> None:
        self._refs = [split_ref(s.wav_filename) for s in samples]
        self._n_input = cfg.n_input
        logging.info(
            "reading features of %d samples from TFRecord shards", len(samples)
        )

    @property
    def n_samples(self) -> int:
        return len(self._refs)

    def features(self, i: int) -> np.ndarray:
        """float32 [n_frames, n_input] of sample ``i``."""
        ref = self._refs[i]
        if ref is None:
            raise ValueError(f"sample {i} is not a TFRecord reference")
        return example_features(read_record(*ref), self._n_input)
