"""The LSTM time loop, with a hand-written gradient that keeps the time loop lean.

Only the recurrent product ``h_{t-1} W_h`` is sequential; the input half of every gate
is precomputed for all steps by the caller as one large matmul. Autodiff through a
``tf.while_loop`` would, per step, compute the recurrent-kernel gradient as a skinny
``[H, B] x [B, 4H]`` product and accumulate it; here the backward loop carries only
``dgates_t W_h^T`` and the kernel gradient is ONE ``[H, T*B] x [T*B, 4H]`` matmul per
direction after the loop, which runs near the machine's matmul peak (bench/README.md).

Layout: time-major. The training loops take and return the D directions as separate
``[T, B, ...]`` tensors and step each with its own ops (:func:`lstm_directions`); the
inference loop, which the TFLite export converts, steps ``[T, D, B, ...]``. Gate order
i, j, f, o (input, candidate, forget, output) as TF1's LSTMBlockCell, which DeepSpeech
used.
"""

from typing import List, Optional, Tuple

import tensorflow as tf

N_GATES = 4
# Column blocks per direction of the recurrent products in the training loops when
# several directions step together (_kernel_blocks).
DIRECTION_BLOCKS = 2


def lstm_directions(
    projected: List[tf.Tensor], recurrent_kernel: tf.Tensor, training: bool = True
) -> List[tf.Tensor]:
    """Hidden states of D LSTMs over time from their precomputed input projections.

    projected : per direction float32 [T, B, 4H] = x_t W_x + b for every step.
    recurrent_kernel : float32 [D, H, 4H]
    training : keep what the hand-written gradient needs (cell states, activations);
        False runs the inference loop, which keeps only the outputs - the form the
        TFLite export converts (three TensorArrays of different widths in one loop
        failed to prepare in the TFLite interpreter).
    returns : per direction float32 [T, B, H]. Zero initial state.

    The training loops step each direction with its own ops (:func:`_forward`), so
    taking and returning them separately spares a [T, D, B, ...] copy each way, in the
    forward pass and in the gradient.
    """
    if not training:
        hs = lstm_inference(stack_directions(projected), recurrent_kernel)[0]
        return split_directions(hs, len(projected))
    return list(_lstm_directions(recurrent_kernel, *projected))


def lstm_inference(
    projected: tf.Tensor,
    kernel: tf.Tensor,
    h: Optional[tf.Tensor] = None,
    c: Optional[tf.Tensor] = None,
) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """The forward loop without saved activations; same arithmetic as ``_forward``.

    projected : float32 [T, D, B, 4H]; kernel : float32 [D, H, 4H].
    h, c : float32 [D, B, H] initial state (zeros when None) - the streaming export
        carries it across chunks.
    returns : hs [T, D, B, H], final h and c [D, B, H].
    """
    n_steps = tf.shape(projected)[0]
    scale = _gate_scale(kernel)
    kernels = tf.unstack(kernel)
    zeros = tf.zeros_like(projected[0, :, :, : kernel.shape[1]])  # [D, B, H]
    h = zeros if h is None else h
    c = zeros if c is None else c
    outputs = tf.TensorArray(projected.dtype, size=n_steps, element_shape=zeros.shape)

    def step(t, h, c, outputs):
        gates = projected[t] + recurrent_product(h, kernels)
        a = tf.sigmoid(gates * scale) * scale - (scale - 1.0)
        i, j, f, o = tf.split(a, N_GATES, axis=-1)
        c = f * c + i * j
        h = o * tf.tanh(c)
        return t + 1, h, c, outputs.write(t, h)

    _, h, c, outputs = tf.while_loop(
        lambda t, *_: t < n_steps, step, (0, h, c, outputs)
    )
    return outputs.stack(), h, c


@tf.custom_gradient
def _lstm_directions(recurrent_kernel, *projected):
    hs, cs, acts = _forward(list(projected), recurrent_kernel)

    def grad(*d_hs):
        d_hs = [tf.zeros_like(h) if d is None else d for h, d in zip(hs, d_hs)]
        d_gates = _backward(d_hs, cs, acts, recurrent_kernel)
        return (kernel_gradient(hs, d_gates), *d_gates)

    return hs, grad


def split_directions(x: tf.Tensor, n_dir: int) -> List[tf.Tensor]:
    """[T, D, B, ...] -> D x [T, B, ...]; D static (one direction: a reshape)."""
    if n_dir == 1:
        return [tf.squeeze(x, 1)]
    return tf.unstack(x, n_dir, axis=1)


def stack_directions(xs: List[tf.Tensor]) -> tf.Tensor:
    """D x [T, B, ...] -> [T, D, B, ...], the inverse of :func:`split_directions`."""
    if len(xs) == 1:
        return tf.expand_dims(xs[0], 1)
    return tf.stack(xs, axis=1)


def recurrent_product(h: tf.Tensor, kernels) -> tf.Tensor:
    """[D, B, K] x D kernels -> [D, B, N] as D plain 2-D matmuls.

    D is static (one kernel per direction). On CPU a 2-D MatMul of [16, 2048] x
    [2048, 8192] ran 2.2x faster than the same product as a batched matmul
    ([1, 16, 2048] x [1, 2048, 8192]), and this product is the sequential bottleneck.
    """
    if len(kernels) == 1:
        return tf.matmul(h[0], kernels[0])[tf.newaxis]
    return tf.stack([tf.matmul(x, k) for x, k in zip(tf.unstack(h), kernels)])


def _kernel_blocks(kernel: tf.Tensor) -> List[List[tf.Tensor]]:
    """[D, K, N] -> per direction, its kernel in column blocks for the training loops.

    Several directions step together and their products run concurrently on
    TensorFlow's inter-op threads. At bi-256 one direction's ``[16, 256] x [256,
    1024]`` product (and the backward loop's ``[16, 1024] x [1024, 256]``) is just
    above the operand size under which TensorFlow's oneDNN matmul runs on the calling
    thread (about the L2 cache: ``ExecuteSingleThreadedGemm`` in
    ``mkl_matmul_ops_common.h``), so both directions' products spread over both cores
    at once and wait on each other; in two column blocks each runs on one thread, next
    to the other direction's, and the training loops took 13-15 % less time on 2 cores
    (bench/README.md). One direction, or a dynamic width, keeps one block.
    """
    n = kernel.shape[-1]
    if kernel.shape[0] == 1 or n is None or n < DIRECTION_BLOCKS:
        return [[k] for k in tf.unstack(kernel)]
    sizes = [n // DIRECTION_BLOCKS] * (DIRECTION_BLOCKS - 1)
    sizes.append(n - sum(sizes))
    return [tf.split(k, sizes, axis=-1) for k in tf.unstack(kernel)]


def _blocked_matmul(x: tf.Tensor, blocks: List[tf.Tensor]) -> tf.Tensor:
    """[B, K] x [K, N_i] column blocks -> [B, sum N_i]."""
    if len(blocks) == 1:
        return tf.matmul(x, blocks[0])
    return tf.concat([tf.matmul(x, k) for k in blocks], axis=-1)


def kernel_gradient(hs: List[tf.Tensor], d_gates: List[tf.Tensor]) -> tf.Tensor:
    """Recurrent-kernel gradient sum_t h_{t-1}^T d_gates_t, with h_{-1} = 0: per
    direction hs [T, B, H] and d_gates [T, B, G] -> [D, H, G].

    One 2-D ``[H, (T-1) B] x [(T-1) B, G]`` MatMul per direction. The same product as
    ``tf.einsum("tdbh,tdbg->dhg", ...)`` ran as one ``_MklEinsum`` at about half the
    rate (bench/README.md), and h_{-1} = 0 needs no shifted copy of ``hs``.
    """
    return tf.stack(
        [
            tf.matmul(
                tf.reshape(h[:-1], [-1, tf.shape(h)[-1]]),
                tf.reshape(g[1:], [-1, tf.shape(g)[-1]]),
                transpose_a=True,
            )
            for h, g in zip(hs, d_gates)
        ]
    )


def _gate_scale(kernel: tf.Tensor) -> tf.Tensor:
    """[4H]: 2 on the candidate gate j, 1 elsewhere; tanh(x) = 2 sigmoid(2x) - 1.

    In ``kernel.dtype``: the loop runs in the compute dtype (mixed precision too).

    A constant when the cell size is static (always, for our model): TFLite then folds
    it, where a dynamically built concat failed to prepare inside the WHILE body.
    """
    n_cell = kernel.shape[1]
    if n_cell is None:
        ones = tf.ones([tf.shape(kernel)[1]], kernel.dtype)
        return tf.concat([ones, 2.0 * ones, ones, ones], axis=0)
    scale = [1.0] * n_cell + [2.0] * n_cell + [1.0] * (2 * n_cell)
    return tf.constant(scale, kernel.dtype)


def loop_buffers(
    inputs: List[tf.Tensor], kernel: tf.Tensor, n_arrays: int
) -> Tuple[tf.Tensor, tf.Tensor, List[Tuple]]:
    """What a per-direction forward loop starts from: its number of steps, a zero state
    [B, H] and, per direction, ``n_arrays`` TensorArrays of one entry per step.

    inputs : per direction [T, B, G * H]; kernel : [D, H, G * H].
    """
    n_steps = tf.shape(inputs[0])[0]
    zeros = tf.zeros(
        tf.stack([tf.shape(inputs[0])[1], tf.shape(kernel)[1]]), inputs[0].dtype
    )
    arrays = [
        tuple(tf.TensorArray(zeros.dtype, size=n_steps) for _ in range(n_arrays))
        for _ in inputs
    ]
    return n_steps, zeros, arrays


def _forward(inputs: List[tf.Tensor], kernel: tf.Tensor) -> Tuple[List, List, List]:
    """inputs : per direction its projection [T, B, 4H]; kernel : [D, H, 4H].

    returns per direction hs, cs [T, B, H] and gate activations acts [T, B, 4H].

    Each direction's ops in the loop are its own ([B, ...], not one [D, B, ...] op for
    all): TensorFlow's inter-op threads run the directions side by side, and each op is
    small enough for one thread, where a [D, B, ...] op was split over the cores and
    waited on them every step (bench/README.md).
    """
    n_steps, zeros, arrays = loop_buffers(inputs, kernel, 3)
    scale = _gate_scale(kernel)
    blocks = _kernel_blocks(kernel)

    def step(t, states, arrays):
        new_states, new_arrays = [], []
        for x, k, (h, c), (hs, cs, acts) in zip(inputs, blocks, states, arrays):
            # x[t] slices the captured tensor; TensorArray.unstack would first copy
            # the whole [T, B, 4H] projection.
            gates = x[t] + _blocked_matmul(h, k)
            # One sigmoid for all four gates; the candidate gate becomes tanh via the
            # scale.
            a = tf.sigmoid(gates * scale) * scale - (scale - 1.0)
            i, j, f, o = tf.split(a, N_GATES, axis=-1)
            c = f * c + i * j
            h = o * tf.tanh(c)
            new_states.append((h, c))
            new_arrays.append((hs.write(t, h), cs.write(t, c), acts.write(t, a)))
        return t + 1, new_states, new_arrays

    _, _, arrays = tf.while_loop(
        lambda t, *_: t < n_steps,
        step,
        (0, [(zeros, zeros) for _ in inputs], arrays),
    )
    hs, cs, acts = ([a.stack() for a in direction] for direction in zip(*arrays))
    return hs, cs, acts


def _backward(d_hs: List, cs: List, acts: List, kernel: tf.Tensor) -> List[tf.Tensor]:
    """Per direction, the gradient w.r.t. the pre-activation gates [T, B, 4H]: a
    reverse time loop, each direction's ops its own as in :func:`_forward`."""
    n_steps = tf.shape(d_hs[0])[0]
    scale = _gate_scale(kernel)
    # d activation / d pre-activation: sigmoid' = a(1-a); for j, tanh' = (1-a)(1+a).
    offset = scale - 1.0
    # Transposed once here: a per-step MatMul with transpose_b ran several times slower.
    blocks = _kernel_blocks(tf.transpose(kernel, [0, 2, 1]))  # D x [4H, H]
    zeros = tf.zeros_like(d_hs[0][0])
    d_gates = [tf.TensorArray(zeros.dtype, size=n_steps) for _ in d_hs]

    def step(t, states, d_gates):
        new_states, new_d_gates = [], []
        for d_h, c_d, a_d, k, (dh_next, dc_next), out in zip(
            d_hs, cs, acts, blocks, states, d_gates
        ):
            a = a_d[t]
            i, j, f, o = tf.split(a, N_GATES, axis=-1)
            c = c_d[t]
            c_prev = tf.where(t > 0, c_d[tf.maximum(t - 1, 0)], zeros)
            tanh_c = tf.tanh(c)
            dh = d_h[t] + dh_next
            dc = dc_next + dh * o * (1.0 - tanh_c * tanh_c)
            d_act = tf.concat([dc * j, dc * i, dc * c_prev, dh * tanh_c], axis=-1)
            d_pre = d_act * (1.0 - a) * (a + offset)
            new_states.append((_blocked_matmul(d_pre, k), dc * f))
            new_d_gates.append(out.write(t, d_pre))
        return t - 1, new_states, new_d_gates

    _, _, d_gates = tf.while_loop(
        lambda t, *_: t >= 0,
        step,
        (n_steps - 1, [(zeros, zeros) for _ in d_hs], d_gates),
    )
    return [g.stack() for g in d_gates]
