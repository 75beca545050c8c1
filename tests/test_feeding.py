"""Tests for util/feeding.py: batch plans, the tf.data pipeline, the feature cache."""

from __future__ import annotations

import csv
import dataclasses
import logging
import os
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
import pytest
import soundfile
import tensorflow as tf

from ctcdecode import Alphabet
from util import feeding
from util.audio import read_audio
from util.config import FeatureConfig
from util.features import compute_mfcc
from util.samples import CSV_COLUMNS, Sample, read_sample_set

REPO_ROOT = Path(__file__).resolve().parents[1]
LDC93S1_DIR = REPO_ROOT / "data" / "ldc93s1"
LDC93S1_TEXT = "she had your dark suit in greasy wash water all year"
WORDS = ["a", "be", "see", "deed", "eerie", "fluffy", "good", "hello there"]


def write_sine(path: Path, seconds: float, hz: float = 440.0) -> Path:
    """A 16 kHz 16-bit PCM mono sine WAV."""
    t = np.arange(int(round(seconds * 16000))) / 16000
    soundfile.write(
        str(path), 0.5 * np.sin(2 * np.pi * hz * t), 16000, subtype="PCM_16"
    )
    return path


def write_csv(path: Path, rows: Sequence[Tuple[Path, str]]) -> Path:
    """A sample CSV of (wav, transcript) rows."""
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        writer.writerows((str(wav), os.path.getsize(wav), text) for wav, text in rows)
    return path


def fake_samples(n_frames: Sequence[int]) -> List[Sample]:
    """Samples with the given lengths; batch_plan reads nothing else."""
    return [
        Sample(f"/x/{i}.wav", 0, "a", (1,), n, n * 0.02, "x.csv", i + 2)
        for i, n in enumerate(n_frames)
    ]


@pytest.fixture(scope="module")
def english() -> Alphabet:
    return Alphabet(str(REPO_ROOT / "data" / "alphabet.txt"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, english: Alphabet) -> List[Sample]:
    """Eight sine WAVs of different lengths (unsorted) plus LDC93S1 at 16 and 8 kHz."""
    root = tmp_path_factory.mktemp("corpus")
    seconds = [0.9, 0.3, 1.2, 0.5, 0.7, 0.4, 1.0, 0.6]
    rows = [
        (write_sine(root / f"{i}.wav", s, hz=200 + 50 * i), WORDS[i])
        for i, s in enumerate(seconds)
    ]
    rows.append((LDC93S1_DIR / "LDC93S1.wav", LDC93S1_TEXT))
    rows.append((LDC93S1_DIR / "LDC93S1_pcms16le_1_8000.wav", LDC93S1_TEXT))
    csv_path = write_csv(root / "train.csv", rows)
    sample_set = read_sample_set(
        str(csv_path), english, FeatureConfig(), skip_bad=False
    )
    return list(sample_set.samples)


def reference_features(sample: Sample, cfg: FeatureConfig) -> np.ndarray:
    """float32 [n_frames, n_mfcc] computed eagerly, outside the pipeline."""
    audio, _ = read_audio(sample.wav_filename, cfg.audio_sample_rate)
    features, features_len = compute_mfcc(tf.constant(audio), cfg)
    return features.numpy()[: int(features_len)]


def pull(dataset: tf.data.Dataset) -> List[Dict[str, np.ndarray]]:
    return list(dataset.as_numpy_iterator())


# -- batch_plan ------------------------------------------------------------------------


def test_batch_plan_epoch0_is_sorted_with_partial_batch_last() -> None:
    samples = fake_samples([50, 10, 40, 10, 30, 20, 60])
    plan = feeding.batch_plan(samples, 3, epoch=0, seed=1, shuffle=True)
    assert plan == [[1, 3, 5], [4, 2, 0], [6]]
    reverse = feeding.batch_plan(
        samples, 3, epoch=0, seed=1, shuffle=False, reverse=True
    )
    assert reverse == [[6, 0, 2], [4, 5, 3], [1]]


def test_batch_plan_shuffles_full_batches_deterministically() -> None:
    samples = fake_samples(list(range(100, 0, -1)) + [7])  # 101 samples
    sorted_plan = feeding.batch_plan(samples, 4, epoch=0, seed=5, shuffle=True)
    plans = [
        feeding.batch_plan(samples, 4, epoch=e, seed=5, shuffle=True) for e in (1, 2)
    ]
    for plan in plans:
        assert plan[-1] == sorted_plan[-1] and len(plan[-1]) == 1  # partial stays last
        assert sorted(map(tuple, plan)) == sorted(map(tuple, sorted_plan))
        assert plan != sorted_plan
    assert plans[0] != plans[1]
    assert plans[0] == feeding.batch_plan(samples, 4, epoch=1, seed=5, shuffle=True)
    assert plans[0] != feeding.batch_plan(samples, 4, epoch=1, seed=6, shuffle=True)
    assert feeding.batch_plan(samples, 4, epoch=3, seed=5, shuffle=False) == sorted_plan
    flat = sorted(i for batch in plans[0] for i in batch)
    assert flat == list(range(101))


def test_batch_plan_edge_cases() -> None:
    assert feeding.batch_plan([], 4, epoch=2, seed=0, shuffle=True) == []
    samples = fake_samples([3, 2, 1])
    assert feeding.batch_plan(samples, 8, epoch=1, seed=0, shuffle=True) == [[2, 1, 0]]
    with pytest.raises(ValueError, match="batch_size"):
        feeding.batch_plan(samples, 0, epoch=0, seed=0, shuffle=False)


# -- make_dataset ----------------------------------------------------------------------


def check_batches(
    batches: List[Dict[str, np.ndarray]],
    plan: List[List[int]],
    samples: Sequence[Sample],
    english: Alphabet,
    cfg: FeatureConfig,
) -> None:
    """Each batch follows the plan and holds exactly its samples' data, zero-padded."""
    assert len(batches) == len(plan)
    for batch, planned in zip(batches, plan):
        size = len(planned)
        assert batch["index"].tolist() == planned
        assert batch["features"].dtype == np.float32 and batch["features"].ndim == 3
        assert batch["features"].shape[::2] == (size, cfg.n_mfcc)
        assert batch["features"].shape[1] == batch["features_len"].max()
        assert batch["labels"].shape == (size, batch["labels_len"].max())
        for key in ("features_len", "labels", "labels_len", "index"):
            assert batch[key].dtype == np.int32, key
            assert batch[key].shape[0] == size
        for row, i in enumerate(planned):
            n, length = batch["features_len"][row], batch["labels_len"][row]
            assert n == samples[i].n_frames and length == len(samples[i].labels)
            np.testing.assert_array_equal(
                batch["features"][row, :n], reference_features(samples[i], cfg)
            )
            assert not batch["features"][row, n:].any()
            assert (
                english.decode(batch["labels"][row, :length]) == samples[i].transcript
            )
            assert not batch["labels"][row, length:].any()


def test_make_dataset_follows_plan(corpus: List[Sample], english: Alphabet) -> None:
    cfg = FeatureConfig()
    plan = feeding.batch_plan(corpus, 3, epoch=1, seed=3, shuffle=True)
    dataset = feeding.make_dataset(corpus, plan, cfg)
    assert dataset.element_spec["features"].shape.as_list() == [None, None, cfg.n_mfcc]
    check_batches(pull(dataset), plan, corpus, english, cfg)


def test_make_dataset_empty_plan() -> None:
    dataset = feeding.make_dataset([], [], FeatureConfig())
    assert pull(dataset) == []


def test_make_dataset_rejects_plans_padded_batch_cannot_follow(
    corpus: List[Sample],
) -> None:
    with pytest.raises(ValueError, match="same size"):
        feeding.make_dataset(corpus, [[0], [1, 2], [3]], FeatureConfig())
    with pytest.raises(ValueError, match="outside"):
        feeding.make_dataset(corpus, [[0, 99]], FeatureConfig())


# -- FeatureCache ----------------------------------------------------------------------


def test_feature_cache_matches_and_is_reused(
    corpus: List[Sample], english: Alphabet, tmp_path: Path, caplog
) -> None:
    cfg = FeatureConfig()
    cache_dir = str(tmp_path / "cache")
    with caplog.at_level(logging.INFO):
        cache = feeding.FeatureCache.open(cache_dir, corpus, cfg)
    assert any("feature cache: built" in r.getMessage() for r in caplog.records)
    files = sorted(os.listdir(cache_dir))
    assert len(files) == 2 and files[0].endswith(".features.npy")  # no temp files left
    stamps = {f: os.stat(os.path.join(cache_dir, f)).st_mtime_ns for f in files}
    caplog.clear()
    with caplog.at_level(logging.INFO):
        again = feeding.FeatureCache.open(cache_dir, corpus, cfg)
    assert any("feature cache: reused" in r.getMessage() for r in caplog.records)
    assert stamps == {f: os.stat(os.path.join(cache_dir, f)).st_mtime_ns for f in files}
    plan = feeding.batch_plan(corpus, 4, epoch=2, seed=1, shuffle=True)
    cached = pull(feeding.make_dataset(corpus, plan, cfg, cache=again))
    uncached = pull(feeding.make_dataset(corpus, plan, cfg))
    for a, b in zip(cached, uncached):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    check_batches(cached, plan, corpus, english, cfg)
    assert cache.features(1).shape == (corpus[1].n_frames, cfg.n_mfcc)


def test_feature_cache_key_changes_with_config_and_files(
    corpus: List[Sample], tmp_path: Path
) -> None:
    cfg = FeatureConfig()
    key = feeding.cache_key(corpus, cfg)
    assert key == feeding.cache_key(corpus, FeatureConfig())
    assert key != feeding.cache_key(
        corpus, dataclasses.replace(cfg, feature_win_step=10)
    )
    assert key != feeding.cache_key(corpus, dataclasses.replace(cfg, n_mfcc=13))
    assert key != feeding.cache_key(corpus[:-1], cfg)
    wav = tmp_path / "a.wav"
    write_sine(wav, 0.5)
    one = [dataclasses.replace(corpus[0], wav_filename=str(wav))]
    before = feeding.cache_key(one, cfg)
    stat = os.stat(wav)
    os.utime(wav, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert feeding.cache_key(one, cfg) != before


def test_feature_cache_new_config_builds_new_files(
    corpus: List[Sample], tmp_path: Path
) -> None:
    cfg = FeatureConfig()
    small = corpus[:3]
    feeding.FeatureCache.open(str(tmp_path), small, cfg)
    other = dataclasses.replace(cfg, feature_win_step=10)
    cache = feeding.FeatureCache.open(str(tmp_path), small, other, show_progress=True)
    assert len(os.listdir(tmp_path)) == 4
    assert cache.features(0).shape == (other.n_frames(int(0.9 * 16000)), cfg.n_mfcc)


def test_feature_cache_rebuilds_a_damaged_cache(
    corpus: List[Sample], tmp_path: Path
) -> None:
    cfg = FeatureConfig()
    small = corpus[:2]
    cache = feeding.FeatureCache.open(str(tmp_path), small, cfg)
    expected = np.array(cache.features(1))
    index_path = cache.path.replace(".features.npy", ".index.npy")
    np.save(index_path, np.array([0, 5], np.int64))  # wrong length for 2 samples
    rebuilt = feeding.FeatureCache.open(str(tmp_path), small, cfg)
    np.testing.assert_array_equal(rebuilt.features(1), expected)
    empty = feeding.FeatureCache.open(str(tmp_path / "empty"), [], cfg)
    assert empty.n_samples == 0


def test_feature_cache_interrupted_build_leaves_nothing(
    corpus: List[Sample], tmp_path: Path, monkeypatch
) -> None:
    def failing_read(path: str, sample_rate: int):
        if path == corpus[2].wav_filename:
            raise OSError(f"disk vanished under {path}")
        return read_audio(path, sample_rate)

    monkeypatch.setattr(feeding, "read_audio", failing_read)
    with pytest.raises(tf.errors.OpError, match="disk vanished"):
        feeding.FeatureCache.open(str(tmp_path), corpus[:4], FeatureConfig())
    assert os.listdir(tmp_path) == []
