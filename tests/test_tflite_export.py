"""Tests for util/export.py's TFLite export: ops, signatures, features, metadata.

Fast tests use tiny random models (n_hidden 16): the export must compute what the
training side computes, whatever the weights. Parity of transcripts with a trained
model is in tests/test_client.py (slow).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os

import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from util import export
from util.features import compute_mfcc
from util.model import DeepSpeechModel

EXPORT_META = {
    "export_beam_width": 77,
    "export_language": "en-US",
    "export_author_id": "tester",
    "export_model_name": "tiny",
    "export_model_version": "1.2.3",
    "export_license": "CC0-1.0",
    "export_description": "random weights",
}


def _export(tiny_config, alphabet, tmp_path, bidirectional, **export_cfg):
    cfg = tiny_config(
        model={"bidirectional": bidirectional},
        export={"export_dir": str(tmp_path / "export"), "export_tflite": True,
                **EXPORT_META, **export_cfg},
    )  # fmt: skip
    model = DeepSpeechModel(cfg.model, cfg.features.n_mfcc, alphabet.n_classes, seed=3)
    level = logging.getLogger("absl").level  # the converter changes it
    try:
        return cfg, model, export.export_tflite(model, cfg, alphabet)
    finally:
        logging.getLogger("absl").setLevel(level)


@pytest.fixture(scope="module", params=[False, True], ids=["uni", "bi"])
def exported(request, tmp_path_factory, alphabet):
    """(cfg, model, .tflite path) of a random tiny model, per direction."""
    import dataclasses as dc

    from util.config import Config

    tmp = tmp_path_factory.mktemp("tflite")
    base = Config()

    def tiny(**sections):
        return dc.replace(
            base,
            model=dc.replace(base.model, n_hidden=16, **sections["model"]),
            export=dc.replace(base.export, **sections["export"]),
        )

    return _export(tiny, alphabet, tmp, request.param)


def _training_side_probs(model, cfg, pcm):
    features, features_len = compute_mfcc(
        tf.constant(pcm.astype(np.float32) / export.INT16_SCALE), cfg.features
    )
    logits = model(features[tf.newaxis], features_len[tf.newaxis], training=False)
    return features.numpy(), tf.nn.softmax(logits)[0].numpy()


def test_file_name_and_signatures(exported):
    cfg, _, path = exported
    assert path == os.path.join(cfg.export.export_dir, "output_graph.tflite")
    assert not [f for f in os.listdir(cfg.export.export_dir) if ".tmp-" in f]
    signatures = Interpreter(model_path=path).get_signature_list()
    expected = {"probabilities", "features", "metadata"}
    if cfg.model.bidirectional:
        expected |= {"chunk_backward", "chunk_forward"}
    else:
        expected.add("stream")
    assert set(signatures) == expected
    assert signatures["probabilities"]["inputs"] == ["samples"]


def test_features_and_probabilities_match_training_side(exported, pcm):
    cfg, model, path = exported
    interpreter = Interpreter(model_path=path)
    features = interpreter.get_signature_runner("features")(samples=pcm)["features"]
    out = interpreter.get_signature_runner("probabilities")(samples=pcm)
    expected_features, expected_probs = _training_side_probs(model, cfg, pcm)
    diff = float(np.abs(features - expected_features).max())
    print(f"max abs diff, exported vs training features: {diff:.3g}")
    np.testing.assert_allclose(features, expected_features, atol=1e-4, rtol=1e-5)
    assert int(out["probs_len"]) == cfg.features.n_frames(len(pcm))
    np.testing.assert_allclose(out["probs"], expected_probs, atol=1e-5)


def test_metadata_is_embedded(exported, alphabet):
    cfg, _, path = exported
    runner = Interpreter(model_path=path).get_signature_runner("metadata")
    meta = json.loads(bytes(runner()["metadata"].item()))
    with open(os.path.join(cfg.export.export_dir, export.METADATA_FILE)) as f:
        beside = json.load(f)
    assert meta["format_version"] == export.EXPORT_FORMAT_VERSION == 2
    assert meta["alphabet"] == list(alphabet.symbols)
    assert meta["sample_rate"] == 16000
    assert meta["features"] == dataclasses.asdict(cfg.features)
    assert meta["model"] == dataclasses.asdict(cfg.model)
    assert meta["streaming"] is (not cfg.model.bidirectional)
    assert meta["stream_lag_frames"] == 9
    assert meta["beam_width"] == 77
    for flag, value in EXPORT_META.items():
        key = flag.replace("export_", "")
        if key == "beam_width":
            continue
        assert meta[key] == value
    beside.pop("created"), meta.pop("created")
    assert beside == meta


def test_stream_signature_continues_the_state(exported, pcm):
    cfg, _, path = exported
    interpreter = Interpreter(model_path=path)
    if cfg.model.bidirectional:  # needs the whole utterance: no stream signature
        assert "stream" not in interpreter.get_signature_list()
        return
    full = interpreter.get_signature_runner("probabilities")(samples=pcm)["probs"]
    features = interpreter.get_signature_runner("features")(samples=pcm)["features"]
    stream = interpreter.get_signature_runner("stream")
    pad = np.zeros((9, features.shape[1]), np.float32)
    frames = np.concatenate([pad, features, pad])
    h = c = np.zeros(16, np.float32)
    parts, step = [], 7
    for start in range(0, len(features), step):
        out = stream(features=frames[start : start + step + 18], state_h=h, state_c=c)
        parts.append(out["probs"])
        h, c = out["state_h"], out["state_c"]
    np.testing.assert_allclose(np.concatenate(parts), full, atol=1e-6)


def test_quantized_export_is_smaller_and_close(tiny_config, alphabet, tmp_path, pcm):
    """Dynamic-range int8 weights: ~4x smaller weights, probabilities stay close."""
    sizes, probs = {}, {}
    for quantize in (False, True):
        cfg, _, path = _export(
            tiny_config, alphabet, tmp_path / str(quantize), False,
            export_quantize=quantize, export_file_name="q" if quantize else "f",
        )  # fmt: skip
        sizes[quantize] = os.path.getsize(path)
        runner = Interpreter(model_path=path).get_signature_runner("probabilities")
        probs[quantize] = runner(samples=pcm)["probs"]
    print(f"quantized/float file size: {sizes[True] / sizes[False]:.2f}")
    assert sizes[True] < sizes[False]
    assert np.abs(probs[True] - probs[False]).max() < 0.1


def test_remove_export_removes_the_old_export_only(tmp_path):
    """Not the whole directory, as DeepSpeech 0.9 did (it held the checkpoints once)."""
    from util.config import ExportConfig

    stale = tmp_path / "export" / "stale.txt"
    stale.parent.mkdir()
    stale.write_text("old")
    old_model = stale.parent / "output_graph.tflite"
    old_model.write_text("old model")
    export.prepare_export_dir(ExportConfig(export_dir=str(stale.parent)))
    assert stale.exists() and old_model.exists()
    export.prepare_export_dir(
        ExportConfig(export_dir=str(stale.parent), remove_export=True)
    )
    assert stale.exists() and not old_model.exists()


def test_chunk_signatures_give_the_whole_file_probabilities(exported, pcm):
    """Bidirectional models: backward chunks last to first, then forward chunks."""
    cfg, _, path = exported
    if not cfg.model.bidirectional:
        return
    interpreter = Interpreter(model_path=path)
    full = interpreter.get_signature_runner("probabilities")(samples=pcm)["probs"]
    features = interpreter.get_signature_runner("features")(samples=pcm)["features"]
    backward = interpreter.get_signature_runner("chunk_backward")
    forward = interpreter.get_signature_runner("chunk_forward")
    pad = np.zeros((9, features.shape[1]), np.float32)
    frames = np.concatenate([pad, features, pad])
    step = 7
    starts = list(range(0, len(features), step))
    hs_bw = np.zeros((len(features), 16), np.float32)
    h = c = np.zeros(16, np.float32)
    for start in reversed(starts):
        out = backward(features=frames[start : start + step + 18], state_h=h, state_c=c)
        hs_bw[start : start + len(out["hs"])] = out["hs"]
        h, c = out["state_h"], out["state_c"]
    parts = []
    h = c = np.zeros(16, np.float32)
    for start in starts:
        window = frames[start : start + step + 18]
        hs = hs_bw[start : start + len(window) - 18]
        out = forward(features=window, hs_bw=hs, state_h=h, state_c=c)
        parts.append(out["probs"])
        h, c = out["state_h"], out["state_c"]
    np.testing.assert_allclose(np.concatenate(parts), full, atol=1e-6)
