"""Tests for util/export.py: the SavedModel computes what training does; metadata."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pytest
import soundfile
import tensorflow as tf

from util import export
from util.distributed import make_strategy
from util.evaluate import decode, transcribe_file
from util.features import compute_mfcc
from util.training import build_session, train


@pytest.fixture
def trained(tiny_config, alphabet, sample_csv, tmp_path):
    """(cfg, session restored from a tiny trained checkpoint, as DeepSpeech.py does)."""
    cfg = tiny_config(
        data={"train_files": (sample_csv(),)},
        export={"export_dir": str(tmp_path / "export")},
    )
    train(build_session(cfg, alphabet, make_strategy([])))
    session = build_session(cfg, alphabet, make_strategy([]))
    session.checkpoints.restore_for_evaluation()
    return cfg, session


def test_export_matches_training_side_probabilities(trained, alphabet, ldc93s1_wav):
    cfg, session = trained
    target = export.export_saved_model(session.model, cfg, alphabet)
    assert target == os.path.join(cfg.export.export_dir, cfg.export.export_file_name)
    assert not [f for f in os.listdir(cfg.export.export_dir) if ".tmp-" in f]

    pcm, rate = soundfile.read(ldc93s1_wav, dtype="int16")
    assert rate == cfg.features.audio_sample_rate
    served = tf.saved_model.load(target).signatures["serving_default"]
    out = served(samples=tf.constant(pcm))
    probs, probs_len = out["probs"].numpy(), int(out["probs_len"])

    features, features_len = compute_mfcc(
        tf.constant(pcm.astype(np.float32) / 32768.0), cfg.features
    )
    logits = session.model(features[tf.newaxis], features_len[tf.newaxis])
    expected = tf.nn.softmax(logits)[0].numpy()
    assert probs_len == int(features_len) == cfg.features.n_frames(len(pcm))
    assert probs.shape == (probs_len, alphabet.n_classes)
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-5)
    # The one-shot path (file -> transcript) agrees with decoding the export's output.
    assert transcribe_file(session.steps, ldc93s1_wav, cfg, alphabet) == decode(
        probs, probs_len, alphabet
    )


def test_metadata_describes_the_model(trained, alphabet):
    cfg, session = trained
    export.export_saved_model(session.model, cfg, alphabet)
    with open(os.path.join(cfg.export.export_dir, export.METADATA_FILE)) as f:
        meta = json.load(f)
    assert meta["format_version"] == export.EXPORT_FORMAT_VERSION
    assert meta["sample_rate"] == 16000
    assert meta["alphabet"] == list(alphabet.symbols)
    assert meta["alphabet_sha256"] == alphabet.sha256()
    assert meta["n_classes"] == alphabet.n_classes == 29
    assert meta["blank_index"] == alphabet.blank_index == 28
    assert meta["features"] == dataclasses.asdict(cfg.features)
    assert meta["model"] == dataclasses.asdict(cfg.model)
    assert meta["model"]["n_hidden"] == 16
    assert meta["model"]["n_context"] == 9
    assert meta["input"]["dtype"] == "int16"
    assert meta["output"]["shape"] == [None, 29]


def test_export_replaces_an_older_export(trained, alphabet):
    cfg, session = trained
    target = export.export_saved_model(session.model, cfg, alphabet)
    stale = os.path.join(target, "stale.txt")
    with open(stale, "w") as f:
        f.write("from an older export")
    assert export.export_saved_model(session.model, cfg, alphabet) == target
    assert not os.path.exists(stale)


def test_export_without_dir_is_an_error(trained, alphabet):
    cfg, session = trained
    no_dir = dataclasses.replace(
        cfg, export=dataclasses.replace(cfg.export, export_dir=None)
    )
    with pytest.raises(ValueError, match="--export_dir"):
        export.export_saved_model(session.model, no_dir, alphabet)
