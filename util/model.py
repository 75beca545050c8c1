"""The Deep Speech acoustic model (Hannun et al., 2014) as a ``tf.Module``.

Geometry (see doc/TRAINING.rst), per frame t of ``features [B, T, n_input]``:

1-3. three dense clipped-ReLU layers of ``n_hidden``; layer 1 sees ``2 * n_context + 1``
     frames (DeepSpeech's 19 x 26 = 494 inputs), with zeros beyond the utterance edges;
4.   an LSTM of ``n_hidden`` cells, bidirectional (the paper) or forward only
     (DeepSpeech 0.9, which can stream);
5.   a dense clipped-ReLU layer of ``n_hidden``;
6.   a linear layer to ``n_classes`` = alphabet size + 1, the CTC blank last.

Dropout (training only) follows layers 1, 2, 3 and 5, as in DeepSpeech, at
``ModelConfig.dropout_for(layer)`` (0.9's --dropout_rate2/3/6). With ``layer_norm``
(0.9's --layer_norm) the same layers normalise their clipped-ReLU output first.

Why a hand-written ``tf.Module`` rather than Keras layers: the variables keep
DeepSpeech's layout (``layer_1/weights [494, n_hidden]``; separate LSTM input and
recurrent kernels), which converts to TFLite with dynamic batch and lets weight
quantisation see each matrix; and the LSTM runs as one large input projection over all
time steps plus only the recurrent product inside the time loop, which is what makes
training fast on a CPU (bench/README.md). Layer 1 is a 1-D convolution whose kernel is
the ``[494, n_hidden]`` weight matrix reshaped to ``[19, 26, n_hidden]`` - the same
arithmetic as DeepSpeech's overlapping windows, without materialising them.
"""

from typing import List, Optional, Tuple

import tensorflow as tf

from util import cudnn_rnn
from util.config import DROPOUT_LAYERS, ModelConfig
from util.lstm import N_GATES as LSTM_GATES
from util.lstm import lstm_directions


class DeepSpeechModel(tf.Module):
    """``logits = model(features, features_len, training)``; knows no alphabet."""

    def __init__(self, cfg: ModelConfig, n_input: int, n_classes: int, seed: int = 0):
        super().__init__(name="deepspeech")
        self.cfg = cfg
        self.n_input = n_input
        self.n_classes = n_classes
        h = cfg.n_hidden
        init = Initializer(seed)
        self.layer_1 = Dense(init, cfg.window_frames * n_input, h, "layer_1")
        self.layer_2 = Dense(init, h, h, "layer_2")
        self.layer_3 = Dense(init, h, h, "layer_3")
        directions = ("fw", "bw") if cfg.bidirectional else ("fw",)
        self.lstm = [_LSTMWeights(init, h, h, f"lstm_{d}") for d in directions]
        self.layer_5 = Dense(init, h * len(directions), h, "layer_5")
        self.layer_6 = Dense(init, h, n_classes, "layer_6")
        # Created only with layer_norm, so other checkpoints keep their variables.
        self.norms = (
            {n: _LayerNorm(h, f"layer_{n}_norm") for n in DROPOUT_LAYERS}
            if cfg.layer_norm
            else {}
        )

    @property
    def n_directions(self) -> int:
        return len(self.lstm)

    def __call__(
        self,
        features: tf.Tensor,
        features_len: tf.Tensor,
        training: bool = False,
        dropout_seed: Optional[tf.Tensor] = None,
        cudnn: bool = False,
    ) -> tf.Tensor:
        """Logits for a padded batch.

        features : float32 [B, T, n_input]; frames at t >= features_len[b] must be zero.
            Computation runs in ``features.dtype`` (bfloat16/float16 under
            ``--automatic_mixed_precision``; the float32 variables are cast at use).
        features_len : int32 [B]
        dropout_seed : int32 [2], required when training with dropout (stateless dropout
            keeps runs reproducible and resumable).
        cudnn : run the LSTM through cuDNN (``--train_cudnn``, util/cudnn_rnn.py)
            with the same variables; logits agree with the default path to float
            round-off within each utterance's length.
        returns : [B, T, n_classes] logits in ``features.dtype`` (softmax: per-frame
            probabilities).
        """
        x = self.feed_forward_front(features, training, dropout_seed)
        # Time-major from here: the LSTM loop steps over the leading axis, and the large
        # input projection is computed in that layout directly (no big transpose).
        x = tf.transpose(x, [1, 0, 2])
        if cudnn:
            x = self.recurrent_cudnn(x, features_len, training)
        else:
            x = self.recurrent(x, features_len, training)
        logits = self.feed_forward_back(x, training, dropout_seed)
        return tf.transpose(logits, [1, 0, 2])

    def feed_forward_front(
        self, features, training=False, dropout_seed=None, padding: str = "SAME"
    ) -> tf.Tensor:
        """Layers 1-3: float32 [B, T, n_input] -> [B, T, n_hidden].

        padding : "SAME" zero-pads n_context frames at each edge (DeepSpeech's windows);
            "VALID" gives T - 2 n_context frames that each see only real input, which is
            what lets a streaming client feed overlapping chunks (util/export.py).
        """
        kernel = tf.reshape(
            tf.cast(self.layer_1.weights, features.dtype),
            [self.cfg.window_frames, self.n_input, self.cfg.n_hidden],
        )
        x = tf.nn.conv1d(features, kernel, stride=1, padding=padding)
        x = x + tf.cast(self.layer_1.bias, x.dtype)
        x = self._activate(x, training, dropout_seed, 1)
        x = self._activate(self.layer_2(x), training, dropout_seed, 2)
        return self._activate(self.layer_3(x), training, dropout_seed, 3)

    def recurrent(
        self, x: tf.Tensor, features_len: tf.Tensor, training: bool = False
    ) -> tf.Tensor:
        """Layer 4, time-major: [T, B, n_hidden] -> [T, B, n_hidden * n_directions].

        Every direction runs in the same time loop (util/lstm.py). The backward
        direction reads each utterance reversed within its own length, so padding never
        reaches its state.
        """
        inputs = [x]
        if self.n_directions == 2:
            inputs.append(reverse_within_lengths(x, features_len))
        projected = [w.project(i) for w, i in zip(self.lstm, inputs)]  # D x [T, B, 4H]
        kernels = tf.stack([_cast(w.recurrent_kernel, x) for w in self.lstm])
        hs = lstm_directions(projected, kernels, training)  # D x [T, B, H]
        if self.n_directions == 1:
            return hs[0]
        return tf.concat([hs[0], reverse_within_lengths(hs[1], features_len)], axis=-1)

    def recurrent_cudnn(
        self, x: tf.Tensor, features_len: tf.Tensor, training: bool = False
    ) -> tf.Tensor:
        """Layer 4 through cuDNN (util/cudnn_rnn.py): same contract and variables as
        :meth:`recurrent`; outputs past each length are zero."""
        weights = [(w.kernel, w.recurrent_kernel, w.bias) for w in self.lstm]
        use_gpu = cudnn_rnn.gpu_kernel_available()
        return cudnn_rnn.lstm_layer(x, features_len, weights, training, use_gpu)

    def feed_forward_back(self, x, training=False, dropout_seed=None) -> tf.Tensor:
        """Layers 5-6: [..., n_hidden * D] -> logits [..., n_classes]."""
        x = self._activate(self.layer_5(x), training, dropout_seed, 5)
        return self.layer_6(x)

    def _activate(self, x, training, dropout_seed, layer: int) -> tf.Tensor:
        x = tf.minimum(tf.nn.relu(x), self.cfg.relu_clip)
        if self.norms:
            x = self.norms[layer](x)
        rate = self.cfg.dropout_for(layer)
        if training and rate > 0:
            if dropout_seed is None:
                raise ValueError("training with dropout needs a dropout_seed")
            seed = tf.cast(dropout_seed, tf.int32) + tf.constant(
                [0, layer * 7919], tf.int32
            )
            x = tf.nn.experimental.stateless_dropout(x, rate, seed=seed)
        return x


def _cast(variable: tf.Variable, like: tf.Tensor) -> tf.Tensor:
    """The variable in the compute dtype of ``like`` (a no-op in float32)."""
    return tf.cast(variable, like.dtype)


def reverse_within_lengths(x: tf.Tensor, lengths: tf.Tensor) -> tf.Tensor:
    """Reverse each utterance of time-major ``x [T, B, ...]`` within its length."""
    return tf.reverse_sequence(x, lengths, seq_axis=0, batch_axis=1)


class Initializer:
    """Seeded Glorot-uniform weights (DeepSpeech: variance_scaling fan_avg uniform)."""

    def __init__(self, seed: int):
        self.seed = seed
        self.count = 0

    def glorot(
        self, shape: Tuple[int, ...], fans: Optional[Tuple[int, int]] = None
    ) -> tf.Tensor:
        """Uniform in +-sqrt(6 / (fan_in + fan_out)); ``fans`` default to a 2-D
        shape's (a convolution kernel passes its receptive-field fans)."""
        self.count += 1
        fan_in, fan_out = fans or (shape[0], shape[1])
        limit = (6.0 / (fan_in + fan_out)) ** 0.5
        return tf.random.stateless_uniform(
            shape, seed=[self.seed, self.count], minval=-limit, maxval=limit
        )


class Dense(tf.Module):
    def __init__(self, init: Initializer, n_in: int, n_out: int, name: str):
        super().__init__(name=name)
        with self.name_scope:  # variable names like "layer_1/weights:0"
            self.weights = tf.Variable(init.glorot((n_in, n_out)), name="weights")
            self.bias = tf.Variable(tf.zeros([n_out]), name="bias")

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        """[..., n_in] -> [..., n_out]; one matmul over all batch and time positions."""
        return tf.tensordot(x, _cast(self.weights, x), axes=1) + _cast(self.bias, x)


class _LayerNorm(tf.Module):
    """Layer normalisation over the last axis (DeepSpeech 0.9's --layer_norm)."""

    EPSILON = 1e-6  # added to the variance; keeps all-zero (clipped) rows finite

    def __init__(self, n: int, name: str):
        super().__init__(name=name)
        with self.name_scope:
            self.gamma = tf.Variable(tf.ones([n]), name="gamma")
            self.beta = tf.Variable(tf.zeros([n]), name="beta")

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
        return (x - mean) * tf.math.rsqrt(variance + self.EPSILON) * self.gamma + (
            self.beta
        )


class _LSTMWeights(tf.Module):
    """One direction's LSTM: input and recurrent kernels, bias (forget gate at 1.0)."""

    def __init__(self, init: Initializer, n_in: int, n_cell: int, name: str):
        super().__init__(name=name)
        # Forget-gate bias 1.0 (Jozefowicz et al., 2015) helps short runs converge; the
        # other gates start at 0 as in DeepSpeech.
        bias = tf.concat(
            [tf.zeros([2 * n_cell]), tf.ones([n_cell]), tf.zeros([n_cell])], 0
        )
        with self.name_scope:
            self.kernel = tf.Variable(
                init.glorot((n_in, LSTM_GATES * n_cell)), name="kernel"
            )
            self.recurrent_kernel = tf.Variable(
                init.glorot((n_cell, LSTM_GATES * n_cell)), name="recurrent_kernel"
            )
            self.bias = tf.Variable(bias, name="bias")

    def project(self, x: tf.Tensor) -> tf.Tensor:
        """[..., n_in] -> [..., 4H]: the input half of every gate, all steps at once."""
        return tf.tensordot(x, _cast(self.kernel, x), axes=1) + _cast(self.bias, x)


# DeepSpeech 0.9's six layers, input to output (--drop_source_layers counts from
# the end).
LAYERS = ("layer_1", "layer_2", "layer_3", "lstm", "layer_5", "layer_6")


def layer_of(variable: tf.Variable) -> str:
    """Which of ``LAYERS`` a model variable belongs to ("lstm_fw/kernel:0" -> lstm)."""
    scope = variable.name.split("/")[0]
    return "lstm" if scope.startswith("lstm") else scope


def trainable_variables(model: tf.Module) -> List[tf.Variable]:
    """Model variables in a fixed order (the optimizer's slots follow this order)."""
    return sorted(model.trainable_variables, key=lambda v: v.name)
