"""A unidirectional DeepSpeech2 streams in the TensorFlow-free client.

The exported ``ds2_stream`` signature carries both convolutions' edges and every
recurrent layer's state (util/model_ds2.py ``stream``); the client (deepspeech
_ds2_stream.py) feeds it 4 x n feature frames at a time and flushes the end with the
whole-utterance padding. Claim: chunked output equals the whole-utterance
``probabilities`` signature for any chunking, within MAX_PROB_DIFF (float32; the
measured difference is ~1e-7). Models: a narrow GRU DS2 trained a few steps on
LDC93S1 (non-trivial batch-norm statistics), and a random-weight LSTM DS2 with its
moving averages set at random (its state carries h and c).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest

from helpers import train_ldc93s1_steps
from util import export
from util.config import Config, FeatureConfig, ModelConfig
from util.models import build_model

MAX_PROB_DIFF = 1e-5  # streamed vs whole-utterance TFLite probabilities, float32
UNI = dict(model="deepspeech2", bidirectional=False, rnn_hidden_size=16)
STREAMABLE = FeatureConfig.of_type("spectrogram", feature_normalization="none")
# audio chunks (samples): under one 10 ms step, odd sizes, under the 400 ms look-ahead
AUDIO_CHUNKS = (37, 1234, 6399)
MODEL_STEPS = (1, 3, 16)  # output frames per ds2_stream call (4 feature frames each)


def _export(model, cfg, alphabet) -> str:
    level = logging.getLogger("absl").level  # the converter changes it
    try:
        return export.export_tflite(model, cfg, alphabet)
    finally:
        logging.getLogger("absl").setLevel(level)


def _random_lstm(tmp, alphabet):
    base = Config()
    cfg = dataclasses.replace(
        base,
        model=ModelConfig(**UNI, rnn_type="lstm", rnn_layers=2),
        features=STREAMABLE,
        export=dataclasses.replace(base.export, export_dir=str(tmp)),
    )
    model = build_model(cfg.model, cfg.features.n_input, alphabet.n_classes, seed=3)
    rng = np.random.default_rng(0)
    norms = [c.norm for c in model.conv] + [r.norm for r in model.rnn if r.norm]
    for norm in norms + [model.output_norm]:
        shape = norm.moving_mean.shape
        norm.moving_mean.assign(rng.normal(0, 0.3, shape).astype(np.float32))
        norm.moving_variance.assign(rng.uniform(0.5, 2.0, shape).astype(np.float32))
    return _export(model, cfg, alphabet)


@pytest.fixture(scope="module")
def models(tmp_path_factory, alphabet):
    """{"gru": trained GRU DS2 (2 layers), "lstm": random LSTM DS2} .tflite paths.

    The GRU's blank output bias is lowered before export so that it emits letters
    all along the clip (3 steps of training alone give blanks): intermediate
    transcripts then have something to show.
    """
    tmp = tmp_path_factory.mktemp("ds2_stream")
    cfg, model = train_ldc93s1_steps(
        tmp / "gru", alphabet, ModelConfig(**UNI, rnn_layers=2), STREAMABLE
    )
    model.output.bias.assign(model.output.bias - 4.0 * np.eye(alphabet.n_classes)[-1])
    return {
        "gru": _export(model, cfg, alphabet),
        "lstm": _random_lstm(tmp / "lstm", alphabet),
    }


def _stream(client, pcm, chunk, steps):
    stream = client.createStream()
    stream._ds2._steps = steps
    for start in range(0, len(pcm), chunk):
        stream.feedAudioContent(pcm[start : start + chunk])
    return stream


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_streamed_probabilities_equal_the_whole_utterance(models, kind, pcm):
    from deepspeech import Model

    client = Model(models[kind])
    meta = client.metadata
    assert client.streams_natively and meta["streaming"]
    assert meta["stream_lag_frames"] == 40  # 400 ms at the 10 ms spectrogram step
    assert meta["stream_state"]["context_1"] == [40, 161, 1]
    assert meta["stream_state"]["context_2"] == [20, 81, 32]
    width = 32 if kind == "lstm" else 16
    assert meta["stream_state"]["state"] == [2, width]
    whole = client._tflite.run("probabilities", samples=pcm)["probs"]
    assert whole.shape == (73, 29)  # ceil(291 frames / 4)
    diffs = [np.abs(client.probabilities(pcm) - whole).max()]  # linear whole-file path
    for chunk in AUDIO_CHUNKS:
        for steps in MODEL_STEPS:
            streamed = _stream(client, pcm, chunk, steps)._all_probs(flush=True)
            assert streamed.shape == whole.shape, (chunk, steps)
            diffs.append(np.abs(streamed - whole).max())
    logging.info("%s: max abs probability difference %.2g", kind, max(diffs))
    assert max(diffs) < MAX_PROB_DIFF, diffs


@pytest.mark.parametrize("n_samples", [320, 800, 1000, 5000, 6399, 6400, 6401])
def test_utterances_shorter_than_the_look_ahead(models, pcm, n_samples):
    """Every length, down to one feature frame: nothing streamed before the flush."""
    from deepspeech import Model

    client = Model(models["gru"])
    audio = pcm[8000 : 8000 + n_samples]
    whole = client._tflite.run("probabilities", samples=audio)["probs"]
    streamed = _stream(client, audio, 160, 1)._all_probs(flush=True)
    assert streamed.shape == whole.shape
    assert np.abs(streamed - whole).max() < MAX_PROB_DIFF


def test_intermediate_decode_gives_text_before_the_end(models, pcm):
    from deepspeech import Model

    client = Model(models["gru"])
    stream = client.createStream()
    half = len(pcm) // 2
    for start in range(0, half, 320):
        stream.feedAudioContent(pcm[start : min(start + 320, half)])
    partial = stream.intermediateDecode()
    assert partial  # text while the utterance goes on
    # the running search's best over the frames so far, no re-search of the buffer
    so_far = np.concatenate(stream._probs)
    assert 0 < len(so_far) < 73
    assert partial == client._metadata(so_far, 1).transcripts[0].text
    stream.feedAudioContent(pcm[half:])
    assert stream.finishStream() == client.stt(pcm)


def test_unidirectional_ds2_on_utterance_statistics_refuses_to_stream(
    tmp_path, alphabet, pcm
):
    from deepspeech import Model
    from deepspeech.errors import DeepSpeechError

    base = Config()
    cfg = dataclasses.replace(
        base,
        model=ModelConfig(**UNI, rnn_layers=1),
        features=FeatureConfig.of_type(
            "spectrogram", feature_normalization="utterance"
        ),
        export=dataclasses.replace(base.export, export_dir=str(tmp_path)),
    )
    model = build_model(cfg.model, cfg.features.n_input, alphabet.n_classes)
    client = Model(_export(model, cfg, alphabet))
    assert not client.streams_natively and not client.metadata["streaming"]
    with pytest.raises(DeepSpeechError, match="--feature_normalization none"):
        client.createStream()
    assert isinstance(client.stt(pcm), str)  # whole utterances still work
