"""Validated samples -> batched tf.data pipeline of MFCC features and CTC labels.

Contract (doc/ARCHITECTURE.rst, Contracts): every batch is a dict

- ``features``: float32 [B, T, n_input], zero beyond each sample's length
- ``features_len``: int32 [B], real frames per sample
- ``labels``: int32 [B, L], alphabet indices, zero beyond each label length
- ``labels_len``: int32 [B]
- ``index``: int32 [B], position of each sample in the ``samples`` sequence given
- ``skipped``: bool [B], true for a sample whose audio failed to decode (below)

A sample whose audio passed the start-up header check (``util.samples``) but fails to
decode here (a FLAC cut mid-stream, a float WAV holding NaN, a file deleted since) is
*skipped*, never fatal: a warning names the file, its CSV row and the reason (once per
process: later epochs log it at DEBUG, their summary lines give the count), and its
row comes with ``skipped`` true and ``features_len == 0``, so it adds no loss and no
gradient (``util.ctc.ctc_loss`` gives 0 to labels longer than their frames); consumers
leave such rows out of their averages and reports. The batch plan
is unchanged, so a resumed epoch lines up with the interrupted one and skips the same
samples again instead of crashing on them.

The batch order is decided up front, in Python, by ``batch_plan``: samples sorted by
length and cut into batches, so each batch pads little; the first epoch keeps the
sorted order (SortaGrad, Amodei et al. 2015, as DeepSpeech did by sorting its CSVs) and
later epochs shuffle whole batches with a seed. The plan is a pure function of its
arguments, so a resumed epoch can skip the batches it already trained on.
``make_dataset`` then reproduces the plan exactly: ``padded_batch`` over the flattened
order cuts the same batches because every planned batch but the last is full.

``FeatureCache`` stores the features of a sample list on disk (``--feature_cache``), so
later epochs and runs skip decoding and MFCC computation.

Training batches may be augmented (``augment``, an ``util.augmentations.AugmentPass``;
doc/TRAINING.rst, "Augmentation"): the trainer passes one for its training epochs
only, so dev, test and metrics sets are never augmented. Sample-domain kinds run in
the decoding ``numpy_function``, the others as TF ops (``util.augment_graph``); from a
feature cache only features-domain kinds can apply (``util.config`` refuses the rest).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import json
import os
import threading
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

import numpy as np
import tensorflow as tf
from absl import logging

from ctcdecode.fileio import atomic_write
from util import augment_graph, sample_collections
from util.audio import AudioError, read_audio
from util.augment_sample import SampleAugmenter
from util.augmentations import AugmentPass, needs_audio
from util.config import FeatureConfig
from util.features import compute_features
from util.progress import Progress
from util.samples import Sample
from util.tfrecords import RecordFeatures, file_of, holds_features, read_record_audio

CACHE_FORMAT_VERSION = 1  # bump when the cache layout or the feature code changes


def batch_plan(
    samples: Sequence[Sample],
    batch_size: int,
    epoch: int,
    seed: int,
    shuffle: bool,
    reverse: bool = False,
) -> List[List[int]]:
    """Indices into ``samples``, grouped into the batches of one epoch, in order.

    Samples are sorted by (``n_frames``, position) ascending, or descending when
    ``reverse``, and cut into batches of ``batch_size``, so each batch holds samples of
    similar length. With ``shuffle`` and ``epoch >= 1`` the full batches are permuted by
    ``np.random.default_rng(seed + epoch)``; epoch 0 stays sorted (SortaGrad). A final
    partial batch always stays last, which ``make_dataset`` relies on. Deterministic in
    its arguments: resuming an epoch skips the first k batches of the same plan.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = sorted(range(len(samples)), key=lambda i: (samples[i].n_frames, i))
    if reverse:
        order.reverse()
    batches = [order[k : k + batch_size] for k in range(0, len(order), batch_size)]
    n_full = len(order) // batch_size
    if shuffle and epoch >= 1 and n_full > 1:
        permutation = np.random.default_rng(seed + epoch).permutation(n_full)
        batches = [batches[j] for j in permutation] + batches[n_full:]
    return batches


def make_dataset(
    samples: Sequence[Sample],
    plan: Sequence[Sequence[int]],
    cfg: FeatureConfig,
    cache: Optional["FeatureCache"] = None,
    rows: Optional[Sequence[int]] = None,
    augment: Optional[AugmentPass] = None,
) -> tf.data.Dataset:
    """The batches of ``plan`` (from ``batch_plan``), as the dicts of the module doc.

    Audio is decoded with ``util.audio.read_audio`` (or features come from ``cache``,
    which must have been opened for the same ``samples``), featurized with
    ``util.features.compute_features`` in parallel, and batched in plan order. An empty
    plan gives an empty dataset. ``rows``: positions within each batch to load; the
    others keep their labels and index but get a zero frame of length 0. A worker of
    a cluster loads only the rows its replicas read (``util.distributed.worker_rows``).
    ``augment``: augment every loaded sample (training batches only); ``plan`` is then
    the rest of an epoch whose first ``augment.first_position`` samples are done.
    """
    _check_plan(plan, len(samples))
    if cache is None and holds_features(samples):  # TFRecord feature shards
        cache = RecordFeatures(samples, cfg)
    if augment is not None and not augment.augmentations:
        augment = None
    if augment is not None and cache is not None and needs_audio(augment.augmentations):
        raise ValueError(
            f"--augment {needs_audio(augment.augmentations)[0].spec!r} works on audio, "
            "but these training samples come as features (a --feature_cache or "
            "TFRecord feature shards); only features-domain kinds can apply to them"
        )
    if cache is not None and cache.n_samples != len(samples):
        raise ValueError(
            f"feature cache holds {cache.n_samples} samples, "
            f"the dataset has {len(samples)}"
        )
    batch_size = len(plan[0]) if plan else 1
    order = np.array([i for batch in plan for i in batch], dtype=np.int32)
    position = np.arange(len(order)) % batch_size  # row of each sample in its batch
    wanted = np.isin(position, rows) if rows is not None else np.ones(len(order), bool)
    labels, offsets = _label_table(samples)
    load = (
        _cached_loader(cache, cfg, augment)
        if cache is not None
        else _audio_loader(samples, cfg, augment)
    )
    clocks = np.zeros(len(order), np.float32)
    if augment is not None:
        positions = augment.first_position + np.arange(len(order))
        clocks = augment.clocks(positions, augment.first_position + len(order))

    def blank() -> Tuple[tf.Tensor, tf.Tensor]:
        # One zero frame, so a batch with no loaded row still has a time axis.
        return tf.zeros([1, cfg.n_input], tf.float32), tf.constant(0, tf.int32)

    def load_or_blank(
        index: tf.Tensor, clock: tf.Tensor
    ) -> Tuple[tf.Tensor, tf.Tensor]:
        features, features_len = load(index, clock)
        return tf.cond(features_len > 0, lambda: (features, features_len), blank)

    def load_example(
        index: tf.Tensor, wanted: tf.Tensor, clock: tf.Tensor
    ) -> Dict[str, tf.Tensor]:
        features, features_len = tf.cond(
            wanted, lambda: load_or_blank(index, clock), blank
        )
        start, end = offsets[index], offsets[index + 1]
        return {
            "features": features,
            "features_len": features_len,
            "labels": labels[start:end],
            "labels_len": tf.cast(end - start, tf.int32),
            "index": index,
            # A loaded sample without frames failed to decode: validated samples have
            # at least one frame (util.samples checks CTC feasibility).
            "skipped": tf.logical_and(wanted, tf.equal(features_len, 0)),
        }

    dataset = tf.data.Dataset.from_tensor_slices((order, wanted, clocks))
    dataset = dataset.map(
        load_example, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    return dataset.padded_batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _check_plan(plan: Sequence[Sequence[int]], n_samples: int) -> None:
    """Only the last batch may be short, else ``padded_batch`` breaks the plan."""
    if not plan:
        return
    batch_size = len(plan[0])
    if batch_size < 1 or any(len(b) != batch_size for b in plan[:-1]):
        raise ValueError("all batches of the plan but the last must have the same size")
    if not 1 <= len(plan[-1]) <= batch_size:
        raise ValueError("the last batch of the plan is empty or too large")
    if any(not 0 <= i < n_samples for batch in plan for i in batch):
        raise ValueError(f"plan indexes outside the {n_samples} samples")


def _label_table(samples: Sequence[Sample]) -> Tuple[tf.Tensor, tf.Tensor]:
    """All labels concatenated, int32 [total], and each sample's offsets, int64 [n + 1].

    Flat rather than padded: transcripts vary in length, and a padded table of a large
    corpus would be several times bigger.
    """
    lengths = np.array([len(s.labels) for s in samples], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    flat = np.fromiter(
        (label for s in samples for label in s.labels), np.int32, int(offsets[-1])
    )
    return tf.constant(flat), tf.constant(offsets)


def _audio_loader(
    samples: Sequence[Sample], cfg: FeatureConfig, augment: Optional[AugmentPass] = None
) -> Any:
    """(index int32, clock float32) scalars -> (features float32 [T, n_input],
    features_len int32), augmented when ``augment`` is given."""
    sampler = SampleAugmenter(
        augment.augmentations if augment else (),
        cfg.audio_sample_rate,
        read_sample_audio,
    )
    min_frames = None
    if augment is not None and augment.min_frames is not None:
        min_frames = tf.constant(np.asarray(augment.min_frames, np.int32))

    def read(index: np.ndarray, clock: np.ndarray) -> np.ndarray:
        sample = samples[int(index)]
        try:
            audio = read_sample_audio(sample.wav_filename, cfg.audio_sample_rate)
        except AudioError as err:  # the content; an OSError (I/O trouble) stays fatal
            _warn_undecodable(sample, err)
            return np.zeros([0], np.float32)  # no frames: the row is skipped
        if sampler:
            audio = sampler.apply(
                audio, float(clock), functools.partial(augment.rng, int(index))
            )
        return audio

    def load(index: tf.Tensor, clock: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
        audio = tf.numpy_function(read, [index, clock], tf.float32, stateful=False)
        audio.set_shape([None])
        if augment is None:
            features, features_len = compute_features(audio, cfg)
        else:
            features, features_len = augment_graph.featurize(
                audio,
                cfg,
                augment.augmentations,
                augment_graph.sample_seed(augment.seed, augment.epoch, index),
                clock,
                None if min_frames is None else tf.gather(min_frames, index),
            )
        features = tf.ensure_shape(features, [None, cfg.n_input])
        return features, tf.cast(features_len, tf.int32)

    return load


def read_sample_audio(path: str, sample_rate: int) -> np.ndarray:
    """float32 [n] of a file, a TFRecord reference "<shard>#<offset>" or a
    DeepSpeech 0.9 sample database reference "<db>.sdb:<index>"."""
    if file_of(path) != path:
        return read_record_audio(path, sample_rate)
    if sample_collections.split_ref(path):
        return sample_collections.read_sdb_audio(path, sample_rate)
    audio, _ = read_audio(path, sample_rate)
    return np.asarray(audio, dtype=np.float32)


class _OncePerProcess:
    """Keys seen before in this process (thread-safe: tf.data maps in parallel)."""

    def __init__(self) -> None:
        self._seen: Set[Tuple[Any, ...]] = set()
        self._lock = threading.Lock()

    def first(self, key: Tuple[Any, ...]) -> bool:
        """True the first time ``key`` is seen."""
        with self._lock:
            if key in self._seen:
                return False
            self._seen.add(key)
            return True


_UNDECODABLE_WARNED = _OncePerProcess()  # every epoch re-reads the same bad files


def _warn_undecodable(sample: Sample, err: Exception) -> None:
    """WARNING the first time a sample fails in this process (a run), DEBUG after:
    each epoch's summary line counts the skipped samples."""
    first = _UNDECODABLE_WARNED.first((sample.wav_filename, sample.csv, sample.row))
    log = logging.warning if first else logging.debug
    log(
        "skipping sample %s (%s:%d): %s. It passed the header check but its audio "
        "does not decode; it is left out of every pass of this run (warned once). "
        "Re-encode or remove the file and its CSV row.",
        sample.wav_filename,
        sample.csv,
        sample.row,
        err,
    )


def _cached_loader(
    cache: "FeatureCache", cfg: FeatureConfig, augment: Optional[AugmentPass] = None
) -> Any:
    """(index int32, clock float32) scalars -> (features float32 [T, n_input],
    features_len int32); features-domain augmentation when ``augment`` is given."""

    def read(index: np.ndarray) -> np.ndarray:
        return np.array(cache.features(int(index)), dtype=np.float32)

    def load(index: tf.Tensor, clock: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
        features = tf.numpy_function(read, [index], tf.float32, stateful=False)
        features.set_shape([None, cfg.n_input])
        if augment is not None:
            features = augment_graph.augment_features(
                features,
                cfg,
                augment.augmentations,
                augment_graph.sample_seed(augment.seed, augment.epoch, index),
                clock,
            )
            features.set_shape([None, cfg.n_input])
        return features, tf.shape(features, out_type=tf.int32)[0]

    return load


class FeatureCache:
    """Features of a sample list, stored once on disk and memory-mapped.

    Layout under the cache dir, ``<key>`` being ``cache_key(samples, cfg)``:
    ``<key>.features.npy`` float32 [total_frames, n_input], all samples concatenated in
    order, and ``<key>.index.npy`` int64 [n + 1], the offsets of each sample's frames.
    A changed file (size or mtime) or feature config gives a new key, so a stale cache
    is never read. Both files are written under temporary names and renamed into place,
    the index last, so an interrupted build leaves nothing that a later run trusts.
    """

    def __init__(self, features: np.ndarray, index: np.ndarray, path: str) -> None:
        self._features = features
        self._index = index
        self.path = path  # the features file

    @property
    def n_samples(self) -> int:
        return len(self._index) - 1

    def features(self, i: int) -> np.ndarray:
        """float32 [n_frames, n_input] of sample ``i`` (a read-only memory map view)."""
        return self._features[self._index[i] : self._index[i + 1]]

    def remove(self) -> None:
        """Delete the cache files (index first, so no reader trusts a half cache)."""
        index_path = self.path[: -len(".features.npy")] + ".index.npy"
        for path in (index_path, self.path):
            if os.path.exists(path):
                os.remove(path)

    @classmethod
    def open(
        cls,
        cache_dir: str,
        samples: Sequence[Sample],
        cfg: FeatureConfig,
        show_progress: bool = False,
    ) -> "FeatureCache":
        """Reuse the cache of ``samples`` under ``cache_dir``, or build it first.

        ``show_progress`` draws a progress bar while building (``util.progress``);
        without it the build logs a line now and then.
        """
        os.makedirs(cache_dir, exist_ok=True)
        base = os.path.join(cache_dir, cache_key(samples, cfg))
        features_path, index_path = base + ".features.npy", base + ".index.npy"
        cache = cls._load(features_path, index_path, len(samples), cfg)
        if cache is not None:
            logging.info("feature cache: reused %s", features_path)
            return cache
        _build_cache(features_path, index_path, samples, cfg, show_progress)
        cache = cls._load(features_path, index_path, len(samples), cfg)
        if cache is None:
            raise ValueError(
                f"feature cache {features_path} is invalid right after build"
            )
        size_mb = os.path.getsize(features_path) / 2**20
        logging.info(
            "feature cache: built %s (%d samples, %.1f MB)",
            features_path,
            len(samples),
            size_mb,
        )
        return cache

    @classmethod
    def _load(
        cls, features_path: str, index_path: str, n_samples: int, cfg: FeatureConfig
    ) -> Optional["FeatureCache"]:
        """The cache if both files exist and agree with each other, else None."""
        if not (os.path.isfile(index_path) and os.path.isfile(features_path)):
            return None
        try:
            index = np.load(index_path)
            features = np.load(features_path, mmap_mode="r")
        except (ValueError, OSError) as e:
            logging.warning("feature cache: ignoring unreadable %s: %s", index_path, e)
            return None
        valid = (
            index.shape == (n_samples + 1,)
            and index[0] == 0
            and bool(np.all(np.diff(index) >= 0))
            and features.dtype == np.float32
            and features.shape == (int(index[-1]), cfg.n_input)
        )
        if not valid:
            logging.warning("feature cache: ignoring inconsistent %s", index_path)
            return None
        return cls(features, index, features_path)


def cache_key(samples: Sequence[Sample], cfg: FeatureConfig) -> str:
    """sha256 hex of the files (path, size, mtime) and the feature config."""
    digest = hashlib.sha256()
    header = {"version": CACHE_FORMAT_VERSION, "features": dataclasses.asdict(cfg)}
    digest.update(json.dumps(header, sort_keys=True).encode())
    for s in samples:
        sdb = sample_collections.split_ref(s.wav_filename)
        # the shard of a TFRecord sample, the database of an .sdb one
        stat = os.stat(sdb[0] if sdb else file_of(s.wav_filename))
        entry = [s.wav_filename, s.wav_filesize, stat.st_size, stat.st_mtime_ns]
        digest.update(json.dumps(entry).encode() + b"\n")
    return digest.hexdigest()


def _build_cache(
    features_path: str,
    index_path: str,
    samples: Sequence[Sample],
    cfg: FeatureConfig,
    show_progress: bool,
) -> None:
    """Featurize ``samples`` in order, stream to temp files, rename them into place."""
    offsets = np.zeros([len(samples) + 1], np.int64)
    load = _audio_loader(samples, cfg)
    dataset = tf.data.Dataset.from_tensor_slices(
        np.arange(len(samples), dtype=np.int32)
    )
    dataset = dataset.map(
        lambda i: load(i, 0.0)[0],
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    ).prefetch(tf.data.AUTOTUNE)
    progress = Progress("Feature cache", len(samples), show_progress)
    with atomic_write(features_path, "wb") as out:
        header_len = _write_npy_header(out, (0, cfg.n_input))
        for i, features in enumerate(dataset.as_numpy_iterator()):
            out.write(np.ascontiguousarray(features, dtype="<f4").tobytes())
            offsets[i + 1] = offsets[i] + len(features)
            progress.update(i + 1)
        progress.finish()
        out.seek(0)
        if _write_npy_header(out, (int(offsets[-1]), cfg.n_input)) != header_len:
            raise ValueError("feature cache: .npy header changed size")
    with atomic_write(index_path, "wb") as out:
        np.save(out, offsets)


def _write_npy_header(out: Any, shape: Tuple[int, int]) -> int:
    """Write a float32 C-order .npy header for ``shape``; return its length in bytes.

    numpy pads the header so the first axis can grow in place, so the header of
    (0, n) and of (total, n) have the same length and the data can be streamed first.
    """
    buffer = io.BytesIO()
    header = {"descr": "<f4", "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buffer, header)
    out.write(buffer.getvalue())
    return len(buffer.getvalue())
