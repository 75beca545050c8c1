"""CTC for training: the loss with real lengths and the logit-length arithmetic.

The blank is the LAST class, as in DeepSpeech; ``ctcdecode.Alphabet.blank_index``
(``== alphabet.size() == n_classes - 1``) is the one place that says so, and decoding
(greedy and beam search) lives in ``ctcdecode`` too, shared with the client. TF's
native CTC kernel used here takes the last class as the blank, the same rule. Logits
are batch-major ``[B, T, n_classes]`` everywhere; the conversion to the time-major
layout that kernel wants happens here, once.
"""

import tensorflow as tf

from util.config import ModelConfig


@tf.autograph.experimental.do_not_convert  # plain arithmetic; nothing to convert
def logits_length(features_len: tf.Tensor, cfg: ModelConfig) -> tf.Tensor:
    """Logit frames per utterance from its real feature frames, int32 [B] -> [B].

    DeepSpeech: one per feature frame (layer 1's context window uses 'SAME' zero
    padding). DeepSpeech2: each utterance's own length through both convolutions'
    time strides (``ModelConfig.output_frames``, ceil(n / 4)), not the padded batch's:
    the reference's ``compute_length_after_conv`` scales the batch's conv output by
    ``input_length / max_time_steps`` instead. The sample validation
    (util/samples.py) uses the same formula, so no sample CTC cannot fit gets through.
    """
    return cfg.output_frames(features_len)


def ctc_loss(
    logits: tf.Tensor, logits_len: tf.Tensor, labels: tf.Tensor, labels_len: tf.Tensor
) -> tf.Tensor:
    """Per-utterance CTC negative log-likelihood.

    logits : float32 [B, T, C]; logits_len : int32 [B]; labels : int32 [B, L] (padding
    ignored); labels_len : int32 [B]. returns float32 [B]. An utterance whose labels
    cannot fit its frames gets +inf (the caller drops it and names the file); the sample
    validation in util/samples.py normally removes those first.

    Uses TF's native CTCLoss kernel through sparse labels: with the blank last it needs
    no class rotation, and it is several times faster on CPU than the dense
    implementation ``tf.nn.ctc_loss`` picks for dense labels.
    """
    sparse = tf.RaggedTensor.from_tensor(labels, lengths=labels_len).to_sparse()
    return tf.compat.v1.nn.ctc_loss(
        labels=tf.cast(sparse, tf.int32),
        inputs=tf.transpose(logits, [1, 0, 2]),
        sequence_length=logits_len,
        preprocess_collapse_repeated=False,
        ctc_merge_repeated=True,
        ignore_longer_outputs_than_inputs=True,
        time_major=True,
    )
