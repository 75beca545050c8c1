"""DeepSpeech2 (Amodei et al., 2015) as tensorflow/models research/deep_speech has it.

Geometry (doc/TRAINING.rst), for ``features [B, T, F]`` (F = ``n_input``):

1-2. two 2-D convolutions over (time, frequency) of ``DS2_CONV_FILTERS`` (32) filters,
     41x11 stride (2, 2) padding (20, 5), then 21x11 stride (2, 1) padding (10, 5), no
     bias, each followed by a ReLU6 and batch normalisation (the reference's order);
3.   ``rnn_layers`` recurrent layers of ``rnn_hidden_size`` ``rnn_type`` cells (gru,
     lstm, rnn), bidirectional with concatenated outputs unless ``bidirectional`` is
     false, batch normalisation on the input of every layer but the first;
4.   batch normalisation and a dense layer to ``n_classes`` (blank last), with bias.

Lengths: the time axis shrinks to ``cfg.output_frames(T)`` = ceil(T / 4). Every
utterance carries its own length through the strides, and after each convolution the
frames beyond it are set to zero, so an utterance's logits do not depend on the padding
of its batch (a batch of one gives the same as the whole file in the client).

Batch normalisation (:class:`BatchNorm`): statistics over the real frames only
(padding would bias them), synchronised over the replicas of a ``tf.distribute``
strategy (SyncBatchNorm: one all-reduce of sum, sum of squares and count), moving
averages with decay ``cfg.batch_norm_decay`` (reference: 0.997, epsilon 1e-5). At
inference the normalisation is a per-channel affine map; the one before each recurrent
layer and the one before the output layer fold into the following matrix.

Streaming (unidirectional models, inference; util/export.py ``ds2_stream``):
:meth:`DeepSpeech2Model.stream` runs the convolutions without time padding on the
next frames plus the last ``kernel - 1`` inputs of each (carried state), zeroes the
outputs outside the utterance as the padded whole-utterance path has them, and carries
each recurrent layer's state; chunked output equals whole-utterance output. An output
frame looks ``cfg.lookahead_frames`` (40) feature frames ahead.

No dropout (the reference has none). Same call signature as ``DeepSpeechModel``;
``cudnn=True`` (``--train_cudnn``) runs the recurrent layers through cuDNN on the same
variables (util/cudnn_rnn.py: gru, lstm, rnn_tanh buffers), float32 only.
"""

from typing import Dict, List, Optional, Tuple

import tensorflow as tf

from util import cudnn_rnn
from util.config import DS2_CONV_FILTERS, DS2_CONV_LAYERS, ModelConfig, conv_output_len
from util.lstm import N_GATES as LSTM_GATES
from util.lstm import (
    lstm_directions,
    lstm_inference,
    split_directions,
    stack_directions,
)
from util.model import Dense, Initializer, reverse_within_lengths
from util.rnn import (
    GRU_GATES,
    RNN_GATES,
    gru_directions,
    gru_inference,
    rnn_inference,
    rnn_sequence,
)

BATCH_NORM_EPSILON = 1e-5  # the reference's _BATCH_NORM_EPSILON
CONV_CLIP = 6.0  # the reference's tf.nn.relu6
GATES = {"gru": GRU_GATES, "lstm": LSTM_GATES, "rnn": RNN_GATES}


def stream_state_shapes(cfg: ModelConfig, n_input: int) -> Dict[str, List[int]]:
    """Shapes of what :meth:`DeepSpeech2Model.stream` carries (zeros at the start):
    ``context_<i>`` float32 ``[kernel_i - 1, F_i, C_i]``, the last inputs of
    convolution i (``context_1``: feature frames); ``state`` float32 ``[layers, S]``,
    each recurrent layer's state (S = H; LSTM: h then c, 2H)."""
    shapes: Dict[str, List[int]] = {}
    channels, freq = 1, n_input
    for i, (kernel, stride, padding) in enumerate(DS2_CONV_LAYERS, 1):
        shapes[f"context_{i}"] = [kernel[0] - 1, freq, channels]
        freq = conv_output_len(freq, kernel[1], stride[1], padding[1])
        channels = DS2_CONV_FILTERS
    width = cfg.rnn_hidden_size * (2 if cfg.rnn_type == "lstm" else 1)
    shapes["state"] = [cfg.rnn_layers, width]
    return shapes


class DeepSpeech2Model(tf.Module):
    """``logits = model(features, features_len, training)``; knows no alphabet."""

    def __init__(self, cfg: ModelConfig, n_input: int, n_classes: int, seed: int = 0):
        super().__init__(name="deepspeech2")
        self.cfg = cfg
        self.n_input = n_input
        self.n_classes = n_classes
        init = Initializer(seed)
        channels, freq = 1, n_input
        self.conv: List[_ConvBN] = []
        for i, (kernel, stride, padding) in enumerate(DS2_CONV_LAYERS, 1):
            conv = _ConvBN(init, channels, kernel, stride, padding, cfg, f"conv_{i}")
            self.conv.append(conv)
            channels = DS2_CONV_FILTERS
            freq = conv_output_len(freq, kernel[1], stride[1], padding[1])
        if freq < 1:
            raise ValueError(f"{n_input} feature bins are too few for the convolutions")
        n_in = freq * DS2_CONV_FILTERS
        n_directions = 2 if cfg.bidirectional else 1
        self.rnn: List[_RecurrentLayer] = []
        for i in range(cfg.rnn_layers):
            norm = (
                BatchNorm(n_in, cfg.batch_norm_decay, f"rnn_{i + 1}_bn") if i else None
            )
            self.rnn.append(
                _RecurrentLayer(init, cfg, n_in, n_directions, norm, f"rnn_{i + 1}")
            )
            n_in = cfg.rnn_hidden_size * n_directions
        self.output_norm = BatchNorm(n_in, cfg.batch_norm_decay, "output_bn")
        self.output = Dense(init, n_in, n_classes, "output")

    def __call__(
        self,
        features: tf.Tensor,
        features_len: tf.Tensor,
        training: bool = False,
        dropout_seed: Optional[tf.Tensor] = None,
        cudnn: bool = False,
    ) -> tf.Tensor:
        """Logits for a padded batch.

        features : float32 [B, T, n_input], zero at t >= features_len[b].
        features_len : int32 [B]. dropout_seed : unused (no dropout in DeepSpeech2).
        cudnn : the recurrent layers through cuDNN (util/cudnn_rnn.py).
        returns : float32 [B, cfg.output_frames(T), n_classes]; row b is valid up to
            ``cfg.output_frames(features_len[b])``.
        """
        del dropout_seed
        if features.dtype != tf.float32:
            raise ValueError(
                "--model deepspeech2 computes in float32 only: drop "
                "--automatic_mixed_precision"
            )
        x, lengths = features[..., tf.newaxis], features_len  # [B, T, F, 1]
        for conv in self.conv:
            x, lengths = conv(x, lengths, training)
        shape = tf.shape(x)
        x = tf.reshape(x, [shape[0], shape[1], x.shape[2] * x.shape[3]])
        x = tf.transpose(x, [1, 0, 2])  # time-major [T', B, F' * C] for the RNNs
        mask = tf.transpose(_mask(lengths, shape[1]))[..., tf.newaxis]  # [T', B, 1]
        for layer in self.rnn:
            x = layer(x, lengths, mask, training, cudnn)
        if training:
            logits = self.output(self.output_norm(x, mask, True))
        else:
            logits = _folded_dense(self.output_norm, self.output, x)
        return tf.transpose(logits, [1, 0, 2])

    # --- streaming (unidirectional, inference only) --------------------------------
    def stream_state_shapes(self) -> Dict[str, List[int]]:
        """See :func:`stream_state_shapes`."""
        return stream_state_shapes(self.cfg, self.n_input)

    def stream(
        self,
        features: tf.Tensor,
        contexts: List[tf.Tensor],
        state: tf.Tensor,
        first_output: tf.Tensor,
        utterance_frames: tf.Tensor,
    ) -> Tuple[tf.Tensor, List[tf.Tensor], tf.Tensor]:
        """One step of a stream: the next ``n`` output frames of a unidirectional model.

        features : float32 [s * n, n_input], the next feature frames (s =
            ``cfg.time_stride``). contexts, state : as :meth:`stream_state_shapes`.
        first_output : int32 [], index in the utterance of the first output frame this
            step computes: (feature frames fed before) / s - lookahead_frames / s;
            negative at the start, where those rows are dropped unseen.
        utterance_frames : int32 [], the utterance's feature frames once its end is
            known (the last step, fed zero frames up to the last output's look-ahead),
            else any larger number.
        returns : logits [n - max(0, -first_output), C], new contexts, new state.
        """
        if self.cfg.bidirectional:
            raise ValueError("a bidirectional model cannot stream")
        firsts = [first_output]  # each convolution's first new output index
        for conv in reversed(self.conv[1:]):
            firsts.insert(0, conv.stride[0] * firsts[0] + conv.padding[0])
        x, lengths = features[:, :, tf.newaxis], utterance_frames
        new_contexts = []
        for conv, context, first in zip(self.conv, contexts, firsts):
            window = tf.concat([context, x], 0)
            new_contexts.append(window[-(conv.kernel_size[0] - 1) :])
            x = conv.unpadded_in_time(window[tf.newaxis])[0]
            (kernel, _), (stride, _), (padding, _) = (
                conv.kernel_size, conv.stride, conv.padding,
            )  # fmt: skip
            lengths = conv_output_len(lengths, kernel, stride, padding)
            index = first + tf.range(tf.shape(x)[0])
            inside = tf.cast((index >= 0) & (index < lengths), tf.float32)
            x = x * inside[:, tf.newaxis, tf.newaxis]  # the padding's zeros
        x = tf.reshape(x, [tf.shape(x)[0], x.shape[1] * x.shape[2]])
        x = x[tf.maximum(0, -first_output) :]
        states = []
        for layer, layer_state in zip(self.rnn, tf.unstack(state)):
            x, layer_state = layer.stream(x, layer_state)
            states.append(layer_state)
        logits = _folded_dense(self.output_norm, self.output, x)
        return logits, new_contexts, tf.stack(states)


def _mask(lengths: tf.Tensor, n_steps: tf.Tensor) -> tf.Tensor:
    """float32 [B, n_steps]: 1 where t < lengths[b]."""
    return tf.sequence_mask(lengths, n_steps, dtype=tf.float32)


def _folded_dense(norm: "BatchNorm", dense: Dense, x: tf.Tensor) -> tf.Tensor:
    """dense(norm(x)) at inference, one matmul: (x s + t) W + b = x (sW) + (tW + b)."""
    scale, shift = norm.affine()
    weights = scale[:, tf.newaxis] * dense.weights
    bias = tf.linalg.matvec(dense.weights, shift, transpose_a=True) + dense.bias
    return tf.tensordot(x, weights, axes=1) + bias


class BatchNorm(tf.Module):
    """Batch normalisation over the real frames, synchronised across replicas.

    ``__call__(x [..., C], mask, training)``: ``mask`` float32 has x's rank with a last
    dimension of 1 and broadcasts to it (1 on real frames). Training normalises with
    the batch's statistics and updates the moving averages; inference uses
    :meth:`affine`.
    """

    def __init__(self, n_channels: int, decay: float, name: str) -> None:
        super().__init__(name=name)
        self.decay = decay
        mean = tf.VariableAggregation.MEAN  # replicas assign the same all-reduced value
        with self.name_scope:
            self.gamma = tf.Variable(tf.ones([n_channels]), name="gamma")
            self.beta = tf.Variable(tf.zeros([n_channels]), name="beta")
            self.moving_mean = tf.Variable(
                tf.zeros([n_channels]), trainable=False, name="moving_mean",
                aggregation=mean,
            )  # fmt: skip
            self.moving_variance = tf.Variable(
                tf.ones([n_channels]), trainable=False, name="moving_variance",
                aggregation=mean,
            )  # fmt: skip

    def affine(self) -> Tuple[tf.Tensor, tf.Tensor]:
        """Inference: norm(x) = x * scale + shift, float32 [C] each."""
        scale = self.gamma * tf.math.rsqrt(self.moving_variance + BATCH_NORM_EPSILON)
        return scale, self.beta - self.moving_mean * scale

    def __call__(self, x: tf.Tensor, mask: tf.Tensor, training: bool) -> tf.Tensor:
        if not training:
            scale, shift = self.affine()
            return x * scale + shift
        mean, variance = self._moments(x, mask)
        decay = self.decay
        self.moving_mean.assign(decay * self.moving_mean + (1.0 - decay) * mean)
        self.moving_variance.assign(
            decay * self.moving_variance + (1.0 - decay) * variance
        )
        scale = self.gamma * tf.math.rsqrt(variance + BATCH_NORM_EPSILON)
        return (x - mean) * scale + self.beta

    @staticmethod
    def _moments(x: tf.Tensor, mask: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
        """Mean and (biased) variance [C] over the masked positions of all replicas."""
        axes = list(range(x.shape.rank - 1))
        mask_shape = tf.concat([tf.shape(x)[:-1], [1]], 0)
        count = tf.reduce_sum(tf.broadcast_to(mask, mask_shape))
        stats = tf.concat(
            [
                tf.reduce_sum(x * mask, axes),
                tf.reduce_sum(tf.square(x) * mask, axes),
                [count],
            ],
            0,
        )
        ctx = tf.distribute.get_replica_context()
        if ctx is not None and ctx.num_replicas_in_sync > 1:
            stats = ctx.all_reduce(tf.distribute.ReduceOp.SUM, stats)
        n = x.shape[-1]
        count = tf.maximum(stats[-1], 1.0)
        mean = stats[:n] / count
        variance = tf.maximum(stats[n : 2 * n] / count - tf.square(mean), 0.0)
        return mean, variance


class _ConvBN(tf.Module):
    """Pad, 'valid' 2-D convolution, ReLU6, batch norm; zero beyond each length."""

    def __init__(self, init, n_in: int, kernel, stride, padding, cfg, name: str):
        super().__init__(name=name)
        self.kernel_size, self.stride, self.padding = kernel, stride, padding
        fan_in = kernel[0] * kernel[1] * n_in
        fan_out = kernel[0] * kernel[1] * DS2_CONV_FILTERS
        with self.name_scope:
            shape = (kernel[0], kernel[1], n_in, DS2_CONV_FILTERS)
            self.weights = tf.Variable(
                init.glorot(shape, (fan_in, fan_out)), name="weights"
            )
        self.norm = BatchNorm(DS2_CONV_FILTERS, cfg.batch_norm_decay, f"{name}_bn")

    def __call__(
        self, x: tf.Tensor, lengths: tf.Tensor, training: bool
    ) -> Tuple[tf.Tensor, tf.Tensor]:
        """x float32 [B, T, F, C_in], lengths int32 [B] -> [B, T', F', 32], lengths."""
        pt, st = self.padding[0], self.stride[0]
        x = tf.nn.relu6(self._conv(x, pt))
        lengths = conv_output_len(lengths, self.kernel_size[0], st, pt)
        mask = _mask(lengths, tf.shape(x)[1])[:, :, tf.newaxis, tf.newaxis]
        return self.norm(x, mask, training) * mask, lengths

    def unpadded_in_time(self, x: tf.Tensor) -> tf.Tensor:
        """Inference without time padding: [B, t, F, C_in] -> [B, (t - k) // s + 1,
        F', 32] (a stream's step; the caller zeroes frames outside the utterance)."""
        return self.norm(tf.nn.relu6(self._conv(x, 0)), None, False)

    def _conv(self, x: tf.Tensor, time_padding: int) -> tf.Tensor:
        pf, (st, sf) = self.padding[1], self.stride
        x = tf.pad(x, [[0, 0], [time_padding, time_padding], [pf, pf], [0, 0]])
        return tf.nn.conv2d(x, self.weights, strides=[1, st, sf, 1], padding="VALID")


class _RecurrentLayer(tf.Module):
    """[batch norm,] one recurrent layer of 1 or 2 directions, time-major."""

    def __init__(self, init, cfg, n_in: int, n_directions: int, norm, name: str):
        super().__init__(name=name)
        self.rnn_type = cfg.rnn_type
        self.norm = norm
        gates, h = GATES[cfg.rnn_type], cfg.rnn_hidden_size
        bias = tf.zeros([gates * h])
        if cfg.rnn_type == "lstm":  # forget-gate bias 1.0, as DeepSpeech's LSTM here
            bias = tf.concat([tf.zeros([2 * h]), tf.ones([h]), tf.zeros([h])], 0)
        self.kernel, self.recurrent_kernel, self.bias, self.recurrent_bias = (
            [],
            [],
            [],
            [],
        )
        with self.name_scope:
            for d in ("fw", "bw")[:n_directions]:
                self.kernel.append(
                    tf.Variable(init.glorot((n_in, gates * h)), name=f"{d}_kernel")
                )
                self.recurrent_kernel.append(
                    tf.Variable(init.glorot((h, gates * h)), name=f"{d}_recurrent")
                )
                self.bias.append(tf.Variable(bias, name=f"{d}_bias"))
                if cfg.rnn_type == "gru":
                    self.recurrent_bias.append(
                        tf.Variable(tf.zeros([gates * h]), name=f"{d}_recurrent_bias")
                    )

    def __call__(
        self, x, lengths, mask, training: bool, cudnn: bool = False
    ) -> tf.Tensor:
        """x float32 [T, B, n_in] -> [T, B, H * D]; mask float32 [T, B, 1]."""
        kernels, biases = self._input_weights(training)
        if training and self.norm is not None:
            x = self.norm(x, mask, True)
        if cudnn:
            return self._cudnn(x, lengths, kernels, biases, training)
        inputs = [x, reverse_within_lengths(x, lengths)][: len(kernels)]
        projected = [
            tf.tensordot(i, k, axes=1) + b for i, k, b in zip(inputs, kernels, biases)
        ]  # D x [T, B, G * H]
        recurrent = tf.stack(self.recurrent_kernel)  # [D, H, G * H]
        # GRU and LSTM take the directions separately (util/lstm.py: no [T, D, B, ...]
        # copies, no strided-slice gradients).
        if self.rnn_type == "gru":
            hs = gru_directions(
                projected, recurrent, tf.stack(self.recurrent_bias), training
            )
        elif self.rnn_type == "lstm":
            hs = lstm_directions(projected, recurrent, training)
        else:
            hs = rnn_sequence(stack_directions(projected), recurrent, training)
            hs = split_directions(hs, len(kernels))
        if len(kernels) == 1:
            return hs[0]
        return tf.concat([hs[0], reverse_within_lengths(hs[1], lengths)], axis=-1)

    def stream(self, x: tf.Tensor, state: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
        """Inference, one direction, carried state: x float32 [t, n_in], state [S]
        (S = H; LSTM: h then c) -> hs [t, H], the new state."""
        kernels, biases = self._input_weights(False)
        projected = tf.tensordot(x, kernels[0], axes=1) + biases[0]
        projected = projected[:, tf.newaxis, tf.newaxis]  # [t, D=1, B=1, G * H]
        recurrent = self.recurrent_kernel[0][tf.newaxis]
        n_cell = self.recurrent_kernel[0].shape[0]
        h = state[:n_cell][tf.newaxis, tf.newaxis]
        if self.rnn_type == "gru":
            bias = self.recurrent_bias[0][tf.newaxis]
            hs, h = gru_inference(projected, recurrent, bias, h)
            new_state = h[0, 0]
        elif self.rnn_type == "lstm":
            c = state[n_cell:][tf.newaxis, tf.newaxis]
            hs, h, c = lstm_inference(projected, recurrent, h, c)
            new_state = tf.concat([h[0, 0], c[0, 0]], 0)
        else:
            hs, h = rnn_inference(projected, recurrent, h)
            new_state = h[0, 0]
        return hs[:, 0, 0], new_state

    def _cudnn(self, x, lengths, kernels, biases, training: bool) -> tf.Tensor:
        """The layer through util/cudnn_rnn.py (CudnnRNNV3 on a GPU, its reference
        implementation on a CPU); outputs past each length are zero."""
        use_gpu = cudnn_rnn.gpu_kernel_available()
        rocm = use_gpu and bool(tf.sysconfig.get_build_info().get("is_rocm_build"))
        params = []
        for d, (kernel, bias) in enumerate(zip(kernels, biases)):
            recurrent = self.recurrent_kernel[d]
            if self.rnn_type == "gru":
                rbias = self.recurrent_bias[d]
                params.append(
                    cudnn_rnn.gru_params(kernel, recurrent, bias, rbias, rocm=rocm)
                )
            elif self.rnn_type == "lstm":
                params.append(cudnn_rnn.lstm_params(kernel, recurrent, bias, rocm=rocm))
            else:
                params.append(cudnn_rnn.rnn_params(kernel, recurrent, bias))
        mode = {"gru": "gru", "lstm": "lstm", "rnn": "rnn_tanh"}[self.rnn_type]
        n_cell = self.recurrent_kernel[0].shape[0]
        return cudnn_rnn.layer(x, lengths, mode, params, n_cell, training, use_gpu)

    def _input_weights(self, training: bool):
        """Input kernels and biases; at inference with the batch norm folded in."""
        if training or self.norm is None:
            return list(self.kernel), list(self.bias)
        scale, shift = self.norm.affine()
        kernels = [scale[:, tf.newaxis] * k for k in self.kernel]
        biases = [
            tf.linalg.matvec(k, shift, transpose_a=True) + b
            for k, b in zip(self.kernel, self.bias)
        ]
        return kernels, biases
