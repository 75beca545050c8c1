"""cuDNN recurrent layers over the model's own variables (``--train_cudnn``).

The weights stay what util/model.py defines, per direction: ``kernel [I, 4H]``,
``recurrent_kernel [H, 4H]``, ``bias [4H]``, gate blocks in TF1's LSTMBlockCell order
i, j, f, o and no forget bias added at run time (DeepSpeech 0.9 built its
``cudnn_compatible_lstm_cell`` with ``forget_bias=0`` for exactly this reason; our
forget-gate bias starts at 1.0 *inside* the variable). On every step the weights are
re-laid out into the flat parameter buffer cuDNN reads, and gradients flow back
through that re-layout (column permutation, transpose, concat) to the same
variables. A checkpoint therefore does not know which path trained it: nothing to
convert in either direction.

cuDNN's LSTM (NVIDIA cuDNN API, ``CUDNN_LSTM``)::

    i = sigma(W_i x + R_i h + bW_i + bR_i)     f = sigma(W_f x + R_f h + bW_f + bR_f)
    c~ = tanh(W_c x + R_c h + bW_c + bR_c)     o = sigma(W_o x + R_o h + bW_o + bR_o)
    c' = f c + i c~                            h' = o tanh(c')

Gate order in the buffer is i, f, c~, o (TF's ``CudnnLSTMSaveable``: "Cudnn LSTM
weights are in ifco order, other tf LSTMs are in icfo order"). Layout of the buffer of
one unidirectional layer: the 8 matrices W_i, W_f, W_c, W_o, R_i, R_f, R_c, R_o, each
row-major ``[H, in]`` (our column block, transposed), then the 8 bias vectors; our
bias becomes bR and bW is zero. Keras packs its cuDNN LSTM the same way
(``keras/src/backend/tensorflow/rnn.py``, ``_cudnn_lstm``), and so does this module.

Variable lengths: ``CudnnRNNV3`` takes ``sequence_lengths`` (time-major, padded
layout): the state stops at each utterance's length and outputs past it are zero. The
backward direction reads each utterance reversed *within its length*
(``tf.reverse_sequence``), so padding never reaches its state - as in the default
path (util/model.py).

On a machine without a GPU the same buffer goes through :func:`reference_rnn`, which
implements the equations above with TensorFlow's CPU kernels (a ``tf.scan`` over time,
autodiff gradient): the flag is testable on a CPU, and the tests compare it with the
default path (tests/test_cudnn.py). It unpacks the buffer from cuDNN's documented
layout, independently of how :func:`lstm_params` packs it.
"""

from typing import List, Sequence, Tuple

import tensorflow as tf

# Gates per cell of each cuDNN mode (rnn_mode of the CudnnRNN ops).
N_GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}
# Our LSTM gate blocks i, j(=c~), f, o -> cuDNN's i, f, c~, o.
LSTM_TO_CUDNN = (0, 2, 1, 3)
# ROCm's MIOpen reads i, f, o, c~ (Keras' _cudnn_lstm applies the same reordering).
LSTM_TO_MIOPEN = (0, 2, 3, 1)
# GRU gate blocks z, r, n (Keras' GRUCell, util/rnn.py) -> cuDNN's r, z, h; MIOpen
# keeps z, r, h (Keras' _cudnn_gru swaps only on CUDA builds).
GRU_TO_CUDNN = (1, 0, 2)
GRU_TO_MIOPEN = (0, 1, 2)

LSTMWeights = Tuple[tf.Tensor, tf.Tensor, tf.Tensor]  # kernel, recurrent_kernel, bias


def gpu_kernel_available() -> bool:
    """Whether TF sees a GPU, so ``CudnnRNNV3`` can run (Keras decides the same way)."""
    return bool(tf.config.list_logical_devices("GPU"))


def lstm_params(
    kernel: tf.Tensor, recurrent_kernel: tf.Tensor, bias: tf.Tensor, rocm: bool = False
) -> tf.Tensor:
    """One direction's variables -> the flat cuDNN parameter buffer.

    kernel : [I, 4H]; recurrent_kernel : [H, 4H]; bias : [4H] (gates i, j, f, o).
    rocm : MIOpen's gate order instead of cuDNN's (ROCm builds of TensorFlow).
    returns : [4H * I + 4H * H + 8H], dtype of ``kernel``.
    """
    order = LSTM_TO_MIOPEN if rocm else LSTM_TO_CUDNN
    blocks = _blocks(kernel, order) + _blocks(recurrent_kernel, order)
    biases = [tf.zeros_like(b) for b in _blocks(bias, order)] + _blocks(bias, order)
    flat = [tf.reshape(tf.transpose(m), [-1]) for m in blocks]
    return tf.concat(flat + biases, axis=0)


def _blocks(t: tf.Tensor, order: Sequence[int]) -> List[tf.Tensor]:
    """Split the last axis into len(order) gate blocks, reordered."""
    parts = tf.split(t, len(order), axis=-1)
    return [parts[k] for k in order]


def gru_params(
    kernel: tf.Tensor,
    recurrent_kernel: tf.Tensor,
    bias: tf.Tensor,
    recurrent_bias: tf.Tensor,
    rocm: bool = False,
) -> tf.Tensor:
    """One direction of a "reset after" GRU (gates z, r, n) -> the flat cuDNN buffer.

    kernel : [I, 3H]; recurrent_kernel : [H, 3H]; bias (input side, bW) and
    recurrent_bias (bR, inside the reset product) : [3H].
    """
    order = GRU_TO_MIOPEN if rocm else GRU_TO_CUDNN
    blocks = _blocks(kernel, order) + _blocks(recurrent_kernel, order)
    biases = _blocks(bias, order) + _blocks(recurrent_bias, order)
    flat = [tf.reshape(tf.transpose(m), [-1]) for m in blocks]
    return tf.concat(flat + biases, axis=0)


def rnn_params(
    kernel: tf.Tensor, recurrent_kernel: tf.Tensor, bias: tf.Tensor
) -> tf.Tensor:
    """One direction of a plain RNN, ``h' = act(x W + b + h U)`` -> the cuDNN buffer."""
    flat = [tf.reshape(tf.transpose(m), [-1]) for m in (kernel, recurrent_kernel)]
    return tf.concat(flat + [bias, tf.zeros_like(bias)], axis=0)


def lstm_layer(
    x: tf.Tensor,
    lengths: tf.Tensor,
    directions: Sequence[LSTMWeights],
    training: bool,
    use_gpu_kernel: bool,
) -> tf.Tensor:
    """One (bi)LSTM layer through cuDNN, time-major.

    x : [T, B, I]; lengths : int32 [B], real frames per utterance.
    directions : (kernel, recurrent_kernel, bias) of the forward direction, then of
        the backward one if bidirectional; cast to ``x.dtype`` (mixed precision).
    returns : [T, B, H * len(directions)], zero at t >= lengths[b].
    """
    rocm = use_gpu_kernel and bool(tf.sysconfig.get_build_info().get("is_rocm_build"))
    params = [
        lstm_params(*[tf.cast(w, x.dtype) for w in weights], rocm=rocm)
        for weights in directions
    ]
    n_cell = directions[0][1].shape[0]
    return layer(x, lengths, "lstm", params, n_cell, training, use_gpu_kernel)


def layer(
    x: tf.Tensor,
    lengths: tf.Tensor,
    mode: str,
    params: Sequence[tf.Tensor],
    n_cell: int,
    training: bool,
    use_gpu_kernel: bool,
) -> tf.Tensor:
    """One recurrent layer of 1 or 2 directions (forward, then backward), time-major.

    params : each direction's flat buffer (:func:`lstm_params`, :func:`gru_params`,
        :func:`rnn_params`), in ``x.dtype``.
    returns : [T, B, n_cell * len(params)], directions concatenated, zero at
        t >= lengths[b].
    """
    outputs = []
    for d, buffer in enumerate(params):
        inputs = x if d == 0 else _reverse(x, lengths)
        out = rnn(inputs, lengths, buffer, mode, n_cell, training, use_gpu_kernel)
        outputs.append(out if d == 0 else _reverse(out, lengths))
    return outputs[0] if len(outputs) == 1 else tf.concat(outputs, axis=-1)


def _reverse(x: tf.Tensor, lengths: tf.Tensor) -> tf.Tensor:
    return tf.reverse_sequence(x, lengths, seq_axis=0, batch_axis=1)


def rnn(
    x: tf.Tensor,
    lengths: tf.Tensor,
    params: tf.Tensor,
    mode: str,
    n_cell: int,
    training: bool,
    use_gpu_kernel: bool,
) -> tf.Tensor:
    """One unidirectional cuDNN RNN layer with zero initial state, time-major.

    x : [T, B, I]; lengths : int32 [B]; params : the flat buffer of ``mode``.
    use_gpu_kernel : ``CudnnRNNV3`` (GPU only); else :func:`reference_rnn`.
    returns : [T, B, n_cell], zero at t >= lengths[b].
    """
    if not use_gpu_kernel:
        return reference_rnn(x, lengths, params, mode, n_cell)
    batch = tf.shape(x)[1]
    zeros = tf.zeros(tf.stack([1, batch, n_cell]), x.dtype)

    def cudnn() -> tf.Tensor:
        # cuDNN rejects a zero length; such a row's output is ignored by the CTC
        # loss (its logit length is zero), so one frame of padding is harmless.
        outputs, _, _, _, _ = tf.raw_ops.CudnnRNNV3(
            input=x,
            input_h=zeros,
            input_c=zeros if mode == "lstm" else tf.zeros([], x.dtype),
            params=params,
            sequence_lengths=tf.maximum(lengths, 1),
            rnn_mode=mode,
            input_mode="linear_input",
            direction="unidirectional",
            is_training=training,
            time_major=True,
        )
        return outputs

    # A replica whose slice of the last batch is empty (util/steps.py) runs with B=0,
    # which cuDNN does not accept.
    empty = tf.zeros(tf.stack([tf.shape(x)[0], batch, n_cell]), x.dtype)
    return tf.cond(batch > 0, cudnn, lambda: empty)


def reference_rnn(
    x: tf.Tensor, lengths: tf.Tensor, params: tf.Tensor, mode: str, n_cell: int
) -> tf.Tensor:
    """cuDNN's recurrence on TensorFlow's own kernels (any device), same contract as
    :func:`rnn`: unpacks ``params`` from cuDNN's layout and steps over time."""
    w, r, bw, br = _unpack(params, mode, x.shape[-1], n_cell)
    x_part = tf.tensordot(x, tf.transpose(tf.concat(w, 0)), axes=1) + tf.concat(bw, 0)
    r_all = tf.transpose(tf.concat(r, 0))  # [H, G*H]
    b_r = tf.concat(br, 0)
    valid = tf.sequence_mask(lengths, tf.shape(x)[0], dtype=tf.bool)  # [B, T]
    valid = tf.transpose(valid)[:, :, tf.newaxis]  # [T, B, 1]
    zeros = tf.zeros(tf.stack([tf.shape(x)[1], n_cell]), x.dtype)
    cell = _CELLS[mode]

    def step(carry, inputs):
        h, c, _ = carry
        xt, keep = inputs
        h_new, c_new = cell(xt, h, tf.matmul(h, r_all) + b_r, c)
        return (
            tf.where(keep, h_new, h),
            tf.where(keep, c_new, c),
            tf.where(keep, h_new, tf.zeros_like(h_new)),
        )

    _, _, outputs = tf.scan(step, (x_part, valid), initializer=(zeros, zeros, zeros))
    return outputs


def _unpack(params: tf.Tensor, mode: str, n_input: int, n_cell: int):
    """The per-gate W [H, I], R [H, H], bW [H], bR [H] lists of a cuDNN buffer."""
    g = N_GATES[mode]
    sizes = [n_cell * n_input] * g + [n_cell * n_cell] * g + [n_cell] * (2 * g)
    parts = tf.split(params, sizes)
    w = [tf.reshape(p, [n_cell, n_input]) for p in parts[:g]]
    r = [tf.reshape(p, [n_cell, n_cell]) for p in parts[g : 2 * g]]
    return w, r, parts[2 * g : 3 * g], parts[3 * g :]


# One step of each mode: (x W^T + bW, h, h R^T + bR, c) -> (h', c'); the equations of
# cuDNN's cudnnRNNMode_t documentation. c is unused except by the LSTM.


def _lstm_cell(x_part, h, r_part, c):
    """Gates i, f, c~, o."""
    i, f, g, o = tf.split(x_part + r_part, 4, axis=-1)
    c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
    return tf.sigmoid(o) * tf.tanh(c), c


def _gru_cell(x_part, h, r_part, c):
    """Gates r, z (cuDNN calls it i), h~; the reset gate scales R_h h + bR_h
    (Keras' ``reset_after=True``, the variant cuDNN runs)."""
    xr, xz, xh = tf.split(x_part, 3, axis=-1)
    rr, rz, rh = tf.split(r_part, 3, axis=-1)
    reset, update = tf.sigmoid(xr + rr), tf.sigmoid(xz + rz)
    candidate = tf.tanh(xh + reset * rh)
    return (1.0 - update) * candidate + update * h, c


def _tanh_cell(x_part, h, r_part, c):
    return tf.tanh(x_part + r_part), c


def _relu_cell(x_part, h, r_part, c):
    return tf.nn.relu(x_part + r_part), c


_CELLS = {
    "lstm": _lstm_cell,
    "gru": _gru_cell,
    "rnn_tanh": _tanh_cell,
    "rnn_relu": _relu_cell,
}
