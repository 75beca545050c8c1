"""Tests for util/ctc.py: loss against TF's dense CTC, the blank, logit lengths."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from ctcdecode import Alphabet, ctc_greedy_decoder
from util.config import ModelConfig
from util.ctc import ctc_loss, logits_length
from util.model import DeepSpeechModel, trainable_variables
from util.optimizer import Adam

N_CLASSES = 6  # 5 labels + blank


def random_problem(seed: int = 0):
    """Random logits [3, 12, 6] with lengths, and padded labels [3, 4] with lengths."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=[3, 12, N_CLASSES]).astype(np.float32)
    logits_len = np.array([12, 9, 5], np.int32)
    labels = np.array([[1, 2, 2, 3], [0, 4, 0, 0], [3, 0, 0, 0]], np.int32)
    labels_len = np.array([4, 2, 1], np.int32)
    # Padding beyond the lengths must not matter: fill it with garbage.
    logits[1, 9:] = 100.0
    labels[1, 2:] = 3
    return [tf.constant(x) for x in (logits, logits_len, labels, labels_len)]


def peaked_logits(path, n_classes: int = N_CLASSES) -> tf.Tensor:
    """Logits [1, T, C] that put (nearly) all probability on ``path[t]`` per frame."""
    return tf.constant(30.0 * np.eye(n_classes, dtype=np.float32)[path][np.newaxis])


def test_the_loss_takes_the_last_class_as_the_blank():
    """Only the last class separates repeated labels: the blank the decoder uses."""
    labels, labels_len = tf.constant([[1, 1]]), tf.constant([2])
    blank = N_CLASSES - 1
    for separator, fits in ((blank, True), (0, False), (2, False)):
        logits = peaked_logits([1, separator, 1])
        loss = float(ctc_loss(logits, tf.constant([3]), labels, labels_len)[0])
        assert (loss < 1e-3) == fits, (separator, loss)
    # ... and ctcdecode's greedy decoder agrees: the same path reads as [1, 1].
    alphabet = Alphabet.from_symbols(["a", "b", "c", "d", " "])
    assert alphabet.n_classes == N_CLASSES and alphabet.blank_index == blank
    probs = tf.nn.softmax(peaked_logits([1, blank, 1]))[0].numpy()
    assert list(ctc_greedy_decoder(probs, alphabet).tokens) == [1, 1]


def test_loss_finite_and_positive():
    loss = ctc_loss(*random_problem()).numpy()
    assert loss.shape == (3,)
    assert np.all(np.isfinite(loss))
    assert np.all(loss > 0)


@pytest.mark.parametrize("seed", [0, 1])
def test_loss_matches_tf_dense_ctc_with_blank_last(seed):
    logits, logits_len, labels, labels_len = random_problem(seed)
    expected = tf.nn.ctc_loss(
        labels=labels,
        logits=logits,
        label_length=labels_len,
        logit_length=logits_len,
        logits_time_major=False,
        blank_index=-1,
    )
    actual = ctc_loss(logits, logits_len, labels, labels_len)
    np.testing.assert_allclose(actual.numpy(), expected.numpy(), rtol=1e-4, atol=1e-4)


def test_loss_of_labels_that_cannot_fit_is_inf():
    """2 frames cannot emit 'aa' (a blank must separate them): +inf, to be dropped."""
    logits = tf.zeros([1, 2, N_CLASSES])
    loss = ctc_loss(logits, tf.constant([2]), tf.constant([[1, 1]]), tf.constant([2]))
    assert np.isinf(loss.numpy()[0])


def test_logits_length_is_what_the_model_emits():
    """The model's time axis has exactly logits_length(features_len) valid frames."""
    model = DeepSpeechModel(ModelConfig(n_hidden=8, dropout_rate=0.0), 26, N_CLASSES)
    for n_frames in (1, 7, 30):
        features = tf.zeros([1, n_frames, 26])
        logits = model(features, tf.constant([n_frames]))
        expected = int(logits_length(tf.constant([n_frames]), model.cfg)[0])
        assert logits.shape[1] == expected, n_frames


def test_logits_length_is_identity_for_deepspeech_and_a_quarter_for_ds2():
    lengths = tf.constant([0, 7, 123], tf.int32)
    np.testing.assert_array_equal(
        logits_length(lengths, ModelConfig()).numpy(), lengths.numpy()
    )
    ds2 = ModelConfig(model="deepspeech2")
    np.testing.assert_array_equal(logits_length(lengths, ds2).numpy(), [0, 2, 31])


def test_greedy_decoding_respects_lengths_and_merges_repeats():
    """The evaluation's greedy path (ctcdecode.ctc_greedy_decoder) on model-shaped
    output: repeats merge unless a blank separates them; frames past length ignored."""
    alphabet = Alphabet.from_symbols(["a", "b", "c", "d", " "])
    blank = alphabet.blank_index
    path = [blank, 1, 1, blank, 1, 2, 2, 2, blank, blank, 3, 0, 0]
    probs = tf.nn.softmax(peaked_logits(path))[0].numpy()
    assert list(ctc_greedy_decoder(probs, alphabet).tokens) == [1, 1, 2, 3, 0]
    assert ctc_greedy_decoder(probs, alphabet, 3).text == "b"
    assert ctc_greedy_decoder(probs, alphabet, 0).text == ""


def test_loss_decreases_with_adam_on_one_batch():
    """The model, the loss and the optimizer together can fit one batch."""
    tf.random.set_seed(0)
    model = DeepSpeechModel(ModelConfig(n_hidden=16, dropout_rate=0.0), 26, N_CLASSES)
    variables = trainable_variables(model)
    optimizer = Adam(variables, learning_rate=0.01)
    rng = np.random.default_rng(0)
    features = tf.constant(rng.normal(size=[2, 20, 26]).astype(np.float32))
    features_len = tf.constant([20, 20])
    labels, labels_len = tf.constant([[1, 2, 3], [4, 0, 0]]), tf.constant([3, 1])

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            logits = model(features, features_len)
            losses = ctc_loss(
                logits, logits_length(features_len, model.cfg), labels, labels_len
            )
            loss = tf.reduce_mean(losses)
        grads = tape.gradient(loss, variables)
        optimizer.apply(grads, variables)
        return loss

    history = [float(step()) for _ in range(30)]
    assert all(np.isfinite(history))
    assert history[-1] < 0.5 * history[0]
    assert np.mean(history[-5:]) < np.mean(history[:5])
