"""GRU and plain-RNN time loops with hand-written gradients (DeepSpeech2's cells).

The same scheme as util/lstm.py: the caller projects the inputs of every step at once
(one large matmul), the loop does only the recurrent product, and the gradient is a
reverse loop that carries ``d_gates W_h^T`` while the recurrent-kernel gradient is ONE
``[H, T*B] x [T*B, G*H]`` matmul per direction after it (``util.lstm.kernel_gradient``).
Autodiff through a ``tf.while_loop`` would accumulate a skinny per-step kernel gradient
instead (bench/README.md).

Layout: time-major ``[T, D, B, ...]``, D independent directions stepped together; the
GRU's training loop takes them as separate tensors (:func:`gru_directions`), as
``util.lstm.lstm_directions`` does.

GRU: the "reset after" form of Keras' ``GRUCell`` (TF2 default), cuDNN and
``torch.nn.GRU``, gate order z, r, n (update, reset, candidate)::

    z = sigmoid(xz + h Uz + bz)      r = sigmoid(xr + h Ur + br)
    n = tanh(xn + r * (h Un + bn))   h' = z * h + (1 - z) * n

where ``x* = x W* + b*`` is the caller's projection and ``b*`` (``recurrent_bias``) the
recurrent bias. RNN: ``h' = tanh(x W + b + h U)`` (TF1's ``BasicRNNCell``).
"""

from typing import List, Optional, Tuple

import tensorflow as tf

from util.lstm import (
    kernel_gradient,
    loop_buffers,
    recurrent_product,
    split_directions,
    stack_directions,
)

GRU_GATES = 3
RNN_GATES = 1


def gru_sequence(
    projected: tf.Tensor,
    kernel: tf.Tensor,
    recurrent_bias: tf.Tensor,
    training: bool = True,
) -> tf.Tensor:
    """Hidden states of D GRUs from their input projections.

    projected : float32 [T, D, B, 3H]; kernel : float32 [D, H, 3H];
    recurrent_bias : float32 [D, 3H]. training : keep what the gradient needs; False
    runs :func:`gru_inference` (one TensorArray: the form TFLite converts).
    returns : float32 [T, D, B, H], zero initial state.
    """
    if training:
        n_dir = kernel.shape[0]
        return stack_directions(
            gru_directions(split_directions(projected, n_dir), kernel, recurrent_bias)
        )
    return gru_inference(projected, kernel, recurrent_bias)[0]


def gru_inference(
    projected: tf.Tensor,
    kernel: tf.Tensor,
    recurrent_bias: tf.Tensor,
    h: Optional[tf.Tensor] = None,
) -> Tuple[tf.Tensor, tf.Tensor]:
    """The forward loop only: returns hs [T, D, B, H] and the final h [D, B, H]."""
    n_steps = tf.shape(projected)[0]
    kernels = tf.unstack(kernel)
    zeros = tf.zeros_like(projected[0, :, :, : kernel.shape[1]])  # [D, B, H]
    h = zeros if h is None else h
    bias = recurrent_bias[:, tf.newaxis]  # [D, 1, 3H]
    outputs = tf.TensorArray(projected.dtype, size=n_steps, element_shape=zeros.shape)

    def step(t, h, outputs):
        h, _, _ = _gru_cell(projected[t], recurrent_product(h, kernels) + bias, h)
        return t + 1, h, outputs.write(t, h)

    _, h, outputs = tf.while_loop(lambda t, *_: t < n_steps, step, (0, h, outputs))
    return outputs.stack(), h


def _gru_cell(x, hh, h):
    """One step from the projected input x [..., 3H], the recurrent pre-activations
    hh = h U + b [..., 3H] and the state h [..., H] -> (h', acts [z, r, n], hn)."""
    xz_r, xn = x[..., : 2 * _width(h)], x[..., 2 * _width(h) :]
    hz_r, hn = hh[..., : 2 * _width(h)], hh[..., 2 * _width(h) :]
    zr = tf.sigmoid(xz_r + hz_r)
    z, r = tf.split(zr, 2, axis=-1)
    n = tf.tanh(xn + r * hn)
    return n + z * (h - n), tf.concat([zr, n], -1), hn


def _width(h: tf.Tensor) -> int:
    return h.shape[-1] if h.shape[-1] is not None else tf.shape(h)[-1]


def gru_directions(
    projected: List[tf.Tensor],
    kernel: tf.Tensor,
    recurrent_bias: tf.Tensor,
    training: bool = True,
) -> List[tf.Tensor]:
    """:func:`gru_sequence` with the directions as separate tensors: D x [T, B, 3H]
    -> D x [T, B, H] (no [T, D, B, ...] copies, as ``util.lstm.lstm_directions``)."""
    if not training:
        hs = gru_inference(stack_directions(projected), kernel, recurrent_bias)[0]
        return split_directions(hs, len(projected))
    return list(_gru_directions(kernel, recurrent_bias, *projected))


@tf.custom_gradient
def _gru_directions(kernel, recurrent_bias, *projected):
    hs, acts, hns = _gru_forward(list(projected), kernel, recurrent_bias)

    def grad(*d_hs):
        d_hs = [tf.zeros_like(h) if d is None else d for h, d in zip(hs, d_hs)]
        h_prev = [tf.concat([tf.zeros_like(h[:1]), h[:-1]], axis=0) for h in hs]
        d_x, d_hh = _gru_backward(d_hs, h_prev, acts, hns, kernel)
        d_bias = tf.stack([tf.reduce_sum(d, axis=[0, 1]) for d in d_hh])
        return (kernel_gradient(hs, d_hh), d_bias, *d_x)

    return hs, grad


def _gru_forward(inputs, kernel, recurrent_bias):
    """inputs : per direction its projection [T, B, 3H].

    returns per direction hs [T, B, H], acts [T, B, 3H] (z, r, n) and hns [T, B, H].
    Each direction's ops are its own, as in ``util.lstm._forward`` (the directions run
    side by side on the inter-op threads).
    """
    n_steps, zeros, arrays = loop_buffers(inputs, kernel, 3)
    kernels = tf.unstack(kernel)
    biases = tf.unstack(recurrent_bias)

    def step(t, states, arrays):
        new_states, new_arrays = [], []
        for x, k, b, h, (hs, acts, hns) in zip(inputs, kernels, biases, states, arrays):
            h, a, hn = _gru_cell(x[t], tf.matmul(h, k) + b, h)
            new_states.append(h)
            new_arrays.append((hs.write(t, h), acts.write(t, a), hns.write(t, hn)))
        return t + 1, new_states, new_arrays

    _, _, arrays = tf.while_loop(
        lambda t, *_: t < n_steps, step, (0, [zeros for _ in inputs], arrays)
    )
    hs, acts, hns = ([a.stack() for a in direction] for direction in zip(*arrays))
    return hs, acts, hns


def _gru_backward(d_hs, h_prev, acts, hns, kernel):
    """Per direction, the gradients w.r.t. the projected input and the recurrent
    pre-activations, d_x and d_hh [T, B, 3H]; they differ only in the candidate part
    (d_hh's is multiplied by the reset gate r)."""
    n_steps = tf.shape(d_hs[0])[0]
    kernels_t = tf.unstack(tf.transpose(kernel, [0, 2, 1]))  # D x [3H, H]
    arrays = [
        tuple(tf.TensorArray(d_hs[0].dtype, size=n_steps) for _ in range(2))
        for _ in d_hs
    ]

    def step(t, states, arrays):
        new_states, new_arrays = [], []
        for d_h, hp, a, hn, k, dh_next, (d_xs, d_hhs) in zip(
            d_hs, h_prev, acts, hns, kernels_t, states, arrays
        ):
            z, r, n = tf.split(a[t], GRU_GATES, axis=-1)
            dh = d_h[t] + dh_next
            dn_pre = dh * (1.0 - z) * (1.0 - n * n)
            dz_pre = dh * (hp[t] - n) * z * (1.0 - z)
            dr_pre = dn_pre * hn[t] * r * (1.0 - r)
            d_x = tf.concat([dz_pre, dr_pre, dn_pre], axis=-1)
            d_hh = tf.concat([dz_pre, dr_pre, dn_pre * r], axis=-1)
            new_states.append(dh * z + tf.matmul(d_hh, k))
            new_arrays.append((d_xs.write(t, d_x), d_hhs.write(t, d_hh)))
        return t - 1, new_states, new_arrays

    _, _, arrays = tf.while_loop(
        lambda t, *_: t >= 0,
        step,
        (n_steps - 1, [tf.zeros_like(d[0]) for d in d_hs], arrays),
    )
    d_x, d_hh = ([a.stack() for a in direction] for direction in zip(*arrays))
    return d_x, d_hh


def rnn_sequence(
    projected: tf.Tensor, kernel: tf.Tensor, training: bool = True
) -> tf.Tensor:
    """tanh RNN: projected [T, D, B, H], kernel [D, H, H] -> hs [T, D, B, H]."""
    if training:
        return _rnn_sequence(projected, kernel)
    return rnn_inference(projected, kernel)[0]


def rnn_inference(
    projected: tf.Tensor, kernel: tf.Tensor, h: Optional[tf.Tensor] = None
) -> Tuple[tf.Tensor, tf.Tensor]:
    """The forward loop: returns hs [T, D, B, H] and the final h [D, B, H]."""
    n_steps = tf.shape(projected)[0]
    kernels = tf.unstack(kernel)
    zeros = tf.zeros_like(projected[0])
    h = zeros if h is None else h
    outputs = tf.TensorArray(projected.dtype, size=n_steps, element_shape=zeros.shape)

    def step(t, h, outputs):
        h = tf.tanh(projected[t] + recurrent_product(h, kernels))
        return t + 1, h, outputs.write(t, h)

    _, h, outputs = tf.while_loop(lambda t, *_: t < n_steps, step, (0, h, outputs))
    return outputs.stack(), h


@tf.custom_gradient
def _rnn_sequence(projected, kernel):
    hs, _ = rnn_inference(projected, kernel)

    def grad(d_hs):
        n_steps = tf.shape(d_hs)[0]
        kernels_t = tf.unstack(tf.transpose(kernel, [0, 2, 1]))
        d_pres = tf.TensorArray(d_hs.dtype, size=n_steps)

        def step(t, dh_next, d_pres):
            h = hs[t]
            d_pre = (d_hs[t] + dh_next) * (1.0 - h * h)
            return t - 1, recurrent_product(d_pre, kernels_t), d_pres.write(t, d_pre)

        _, _, d_pres = tf.while_loop(
            lambda t, *_: t >= 0, step, (n_steps - 1, tf.zeros_like(d_hs[0]), d_pres)
        )
        d_pre = d_pres.stack()
        n_dir = kernel.shape[0]
        return d_pre, kernel_gradient(
            split_directions(hs, n_dir), split_directions(d_pre, n_dir)
        )

    return hs, grad
