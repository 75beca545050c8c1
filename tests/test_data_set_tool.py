"""TFRecord shards: CSV -> shards -> the same training batches, restart, and back.

Also the .tar/.tar.gz/.tgz targets of 0.9's command line: DeepSpeech's ``TarWriter``
layout (``samples`` directory entry, ``--include`` files at the root, WAVs
``samples/sampleNNNNNNNN.wav``, ``samples.csv`` last), readable as a training set once
extracted, and never a truncated archive under the target's name.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import os
import tarfile

import numpy as np
import pytest
import soundfile as sf

from util.config import FeatureConfig
from util.feeding import batch_plan, make_dataset
from util.samples import read_sample_set

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRANSCRIPTS = ("a", "ab", "abc", "bad", "cab")
TAR_TRANSCRIPTS = ("a", "bb", "ccc")


@pytest.fixture(scope="module")
def tool():
    path = os.path.join(REPO, "bin", "data_set_tool.py")
    spec = importlib.util.spec_from_file_location("data_set_tool", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def batches(samples, cfg):
    plan = batch_plan(samples, 2, epoch=0, seed=1, shuffle=False)
    return list(make_dataset(samples, plan, cfg).as_numpy_iterator())


def assert_same_batches(got, expected):
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert sorted(a) == sorted(b)
        for key in b:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_shards_give_the_same_batches_as_the_csv(tmp_path, sample_csv, alphabet, tool):
    csv_path = sample_csv(TRANSCRIPTS)
    prefix = str(tmp_path / "shards" / "train")
    assert tool.main(["to-tfrecord", csv_path, prefix, "--partition_size", "2"]) == 0
    shards = sorted(os.listdir(tmp_path / "shards"))
    assert shards == [f"train-{k:05d}-of-00003.tfrecord" for k in range(3)]
    cfg = FeatureConfig()
    from_csv = read_sample_set(csv_path, alphabet, cfg).samples
    from_shards = read_sample_set(f"{prefix}-*.tfrecord", alphabet, cfg).samples
    assert [s.transcript for s in from_shards] == list(TRANSCRIPTS)
    assert [s.labels for s in from_shards] == [s.labels for s in from_csv]
    assert [s.n_frames for s in from_shards] == [s.n_frames for s in from_csv]
    expected = batches(from_csv, cfg)
    assert_same_batches(batches(from_shards, cfg), expected)
    mixed = list(from_csv[:2]) + list(from_shards[2:])  # CSV and shards in one set
    assert_same_batches(batches(mixed, cfg), expected)


def test_restart_from_starting_position(tmp_path, sample_csv, tool):
    csv_path = sample_csv(TRANSCRIPTS)
    prefix = str(tmp_path / "train")
    argv = ["to-tfrecord", csv_path, prefix, "--partition_size", "2"]
    assert tool.main(argv) == 0
    second = tmp_path / "train-00001-of-00003.tfrecord"
    content = second.read_bytes()
    second.unlink()  # as if the first run had died while writing shard 1
    os.utime(tmp_path / "train-00002-of-00003.tfrecord", ns=(0, 0))
    assert tool.main(argv + ["--starting_position", "1"]) == 0
    assert second.read_bytes() == content
    assert os.stat(tmp_path / "train-00002-of-00003.tfrecord").st_mtime_ns == 0


def test_round_trip_to_csv(tmp_path, sample_csv, alphabet, tool):
    csv_path = sample_csv(TRANSCRIPTS[:3])
    assert tool.main(["to-tfrecord", csv_path, str(tmp_path / "s" / "x")]) == 0
    out = tmp_path / "back"
    shard = str(tmp_path / "s" / "x-00000-of-00001.tfrecord")
    assert tool.main(["to-csv", shard, str(out), "--csv_name", "x.csv"]) == 0
    original = read_sample_set(csv_path, alphabet, FeatureConfig()).samples
    back = read_sample_set(str(out / "x.csv"), alphabet, FeatureConfig()).samples
    assert [s.transcript for s in back] == [s.transcript for s in original]
    for a, b in zip(back, original):
        np.testing.assert_array_equal(
            sf.read(a.wav_filename, dtype="int16")[0],
            sf.read(b.wav_filename, dtype="int16")[0],
        )


def test_feature_shards_train_without_audio(tmp_path, sample_csv, alphabet, tool):
    csv_path = sample_csv(TRANSCRIPTS[:3])
    prefix = str(tmp_path / "f")
    assert tool.main(["to-tfrecord", csv_path, prefix, "--kind", "features"]) == 0
    cfg = FeatureConfig()
    from_csv = read_sample_set(csv_path, alphabet, cfg).samples
    shard_samples = read_sample_set(f"{prefix}-*.tfrecord", alphabet, cfg).samples
    got, expected = batches(shard_samples, cfg), batches(from_csv, cfg)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a["features"], b["features"], atol=1e-5)
        np.testing.assert_array_equal(a["features_len"], b["features_len"])
    with pytest.raises(ValueError, match="cannot be mixed"):
        batches(list(from_csv[:1]) + list(shard_samples[1:]), cfg)


def test_shards_written_without_tensorflow_read_back_with_tensorflow(tmp_path):
    """The hand-written Example/TFRecord encoding is what TensorFlow reads (CRCs)."""
    import tensorflow as tf

    from util import tfrecords
    from util.importing import shards

    pcm = np.array([0, 1, -1, 32767, -32768], np.int16)
    path = str(tmp_path / "x.tfrecord")
    shards.write_shard(path, [shards.audio_example("héllo", "a.wav", pcm, 16000)])
    (data,) = [r.numpy() for r in tf.data.TFRecordDataset(path)]  # checks both CRCs
    example = tf.train.Example.FromString(data)
    feature = example.features.feature
    assert feature["transcript"].bytes_list.value[0].decode() == "héllo"
    assert feature["sample_rate"].int64_list.value[0] == 16000
    np.testing.assert_array_equal(
        np.frombuffer(feature["audio"].bytes_list.value[0], "<i2"), pcm
    )
    # and the reverse: an Example TensorFlow serialized parses here
    ours = tfrecords.parse_example(example.SerializeToString())
    assert ours["kind"] == b"audio" and ours["sample_rate"] == 16000
    negative = tf.train.Example(
        features=tf.train.Features(
            feature={"n": tf.train.Feature(int64_list=tf.train.Int64List(value=[-3]))}
        )
    )
    assert tfrecords.parse_example(negative.SerializeToString())["n"] == -3
    assert tfrecords.encode_example({"n": -3}) == negative.SerializeToString()


def test_corrupt_record_names_the_shard(tmp_path):
    from util import tfrecords
    from util.importing import shards

    path = tmp_path / "x.tfrecord"
    shards.write_shard(str(path), [tfrecords.encode_example({"kind": b"audio"})])
    path.write_bytes(path.read_bytes()[:-6])
    with pytest.raises(ValueError, match="x.tfrecord: truncated record"):
        list(tfrecords.iter_records(str(path)))


@pytest.mark.parametrize("name", ["set.tar", "set.tar.gz", "set.tgz"])
def test_tar_layout_and_training_set(tool, tmp_path, sample_csv, alphabet, name):
    source = sample_csv(transcripts=TAR_TRANSCRIPTS)
    include = os.path.join(REPO, "data", "alphabet.txt")
    target = str(tmp_path / name)
    assert tool.main([source, target, "--include", include, "--workers", "2"]) == 0
    assert _is_gzip(target) == (name != "set.tar")
    with tarfile.open(target) as tar:  # autodetects gzip
        members = tar.getmembers()
        names = [m.name for m in members]
        assert names == [
            "samples",
            "alphabet.txt",
            "samples/sample00000000.wav",
            "samples/sample00000001.wav",
            "samples/sample00000002.wav",
            "samples.csv",
        ]
        assert members[0].isdir()
        rows = list(
            csv.DictReader(io.StringIO(tar.extractfile("samples.csv").read().decode()))
        )
        assert [r["transcript"] for r in rows] == list(
            TAR_TRANSCRIPTS
        )  # shortest first
        for row in rows:
            assert int(row["wav_filesize"]) == tar.getmember(row["wav_filename"]).size
        tar.extractall(tmp_path / "x", filter="data")
    extracted = read_sample_set(
        str(tmp_path / "x" / "samples.csv"), alphabet, FeatureConfig()
    )
    assert [s.transcript for s in extracted.samples] == list(TAR_TRANSCRIPTS)


def _is_gzip(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def test_unlabeled_tar_has_no_transcript_column(tool, tmp_path, sample_csv):
    target = str(tmp_path / "noise.tar")
    assert tool.main([sample_csv(), target, "--unlabeled"]) == 0
    with tarfile.open(target) as tar:
        header = tar.extractfile("samples.csv").read().decode().splitlines()[0]
    assert header == "wav_filename,wav_filesize"


def test_bad_targets_and_includes(tool, tmp_path, sample_csv, capsys):
    source = sample_csv()
    assert tool.main([source, str(tmp_path / "x.zip")]) == 1
    assert ".tar, .tar.gz or .tgz" in capsys.readouterr().err
    assert tool.main([source, str(tmp_path / "x.csv"), "--include", source]) == 1
    assert "--include: only .tar" in capsys.readouterr().err
    missing = str(tmp_path / "nope.txt")
    assert tool.main([source, str(tmp_path / "x.tar"), "--include", missing]) == 1
    assert "no such file" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "x.tar")


def test_interrupted_write_leaves_no_archive(tool, tmp_path, sample_csv, monkeypatch):
    calls = []

    def failing(tar, name, data):
        calls.append(name)
        if len(calls) == 2:
            raise OSError("No space left on device")
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))

    monkeypatch.setattr(tool, "_add_bytes", failing)
    target = str(tmp_path / "set.tar")
    assert tool.main([sample_csv(), target]) == 1
    assert not os.path.exists(target) and not os.path.exists(target + ".partial")
