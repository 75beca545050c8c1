"""Adam over plain ``tf.Variable`` s, the same on one device and under a strategy.

Why not ``keras.optimizers.Adam``: with TF 2.21 / Keras 3 its ``apply_gradients`` fails
under ``MirroredStrategy`` with several logical devices ("You must feed a value for
placeholder tensor 'cond/...'"), and its variables are Keras objects. This optimizer
keeps its slots as ordinary variables beside the model (checkpointed with it, never
exported) and its learning rate as a variable, so reduce-LR-on-plateau survives a
resume.

Gradients must already be averaged over the global batch: each replica passes the
gradient of ``sum(local losses) / global batch size``; ``apply`` sums them across
replicas (one all-reduce) and updates every replica's copy identically.
"""

import math
from typing import List, Sequence

import tensorflow as tf


class Adam(tf.Module):
    """Adam (Kingma & Ba, 2015) with bias correction, as TF1's AdamOptimizer."""

    def __init__(
        self,
        variables: Sequence[tf.Variable],
        learning_rate: float,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
    ) -> None:
        super().__init__(name="adam")
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.learning_rate = tf.Variable(
            learning_rate, trainable=False, dtype=tf.float32, name="learning_rate"
        )
        self.iterations = tf.Variable(
            0, trainable=False, dtype=tf.int64, name="iterations"
        )
        self.m = [_slot(v, "m") for v in variables]
        self.v = [_slot(v, "v") for v in variables]

    def apply(
        self, grads: Sequence[tf.Tensor], variables: Sequence[tf.Variable]
    ) -> tf.Tensor:
        """Update ``variables`` in place; call in replica context (in ``strategy.run``).

        Returns a bool scalar: whether the update was applied. When any summed gradient
        is Inf/NaN the step is skipped entirely (weights, moments and the step count
        stay as they were), so one bad batch never poisons the model.
        """
        ctx = tf.distribute.get_replica_context()
        grads = list(grads)
        if ctx is not None and ctx.num_replicas_in_sync > 1:
            grads = ctx.all_reduce(tf.distribute.ReduceOp.SUM, grads)
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads])
        grads = [tf.where(finite, g, tf.zeros_like(g)) for g in grads]
        if ctx is None or ctx.num_replicas_in_sync == 1:
            self._update_all(grads, list(variables), self.m, self.v, finite)
        else:
            ctx.merge_call(
                self._apply_cross_replica, args=(grads, list(variables), finite)
            )
        return finite

    def _apply_cross_replica(
        self, strategy: tf.distribute.Strategy, grads: List, variables: List, finite
    ) -> None:
        def update(var: tf.Variable, grad, m: tf.Variable, v: tf.Variable, ok):
            return self._update_one(var, grad, m, v, self._step_size(), ok)

        for var, grad, m, v in zip(variables, grads, self.m, self.v):
            strategy.extended.update(
                var, update, args=(grad, m, v, finite), group=False
            )
        strategy.extended.update(
            self.iterations,
            lambda it, ok: it.assign_add(tf.cast(ok, tf.int64)),
            args=(finite,),
            group=False,
        )

    def _update_all(
        self, grads: List, variables: List, ms: List, vs: List, finite
    ) -> None:
        step_size = self._step_size()
        for var, grad, m, v in zip(variables, grads, ms, vs):
            self._update_one(var, grad, m, v, step_size, finite)
        self.iterations.assign_add(tf.cast(finite, tf.int64))

    def _step_size(self) -> tf.Tensor:
        t = tf.cast(self.iterations + 1, tf.float32)
        return (
            self.learning_rate
            * tf.sqrt(1.0 - tf.pow(self.beta2, t))
            / (1.0 - tf.pow(self.beta1, t))
        )

    def _update_one(self, var, grad, m, v, step_size, ok) -> tf.Operation:
        # ``ok`` False makes the update a no-op: decay and step both become neutral.
        keep = tf.cast(ok, var.dtype)
        b1 = 1.0 - keep * (1.0 - self.beta1)
        b2 = 1.0 - keep * (1.0 - self.beta2)
        m_t = m.assign(b1 * m + (1.0 - b1) * grad)
        v_t = v.assign(b2 * v + (1.0 - b2) * tf.square(grad))
        return var.assign_sub(keep * step_size * m_t / (tf.sqrt(v_t) + self.epsilon))


def _slot(var: tf.Variable, kind: str) -> tf.Variable:
    name = var.name.split(":")[0].replace("/", "_")
    return tf.Variable(tf.zeros_like(var), trainable=False, name=f"{name}_{kind}")


class DynamicLossScale(tf.Module):
    """Dynamic loss scaling for float16 compute (Micikevicius et al., 2018).

    The loss is multiplied by ``scale`` before differentiation so small float16
    gradients do not flush to zero, and the float32 gradients are divided by it
    before the update. Inf/NaN gradients (an overflow) skip the update (``Adam.apply``
    does that already) and halve the scale; 2000 finite steps in a row double it.
    Same defaults as Keras' ``LossScaleOptimizer``. Not checkpointed: a resumed run
    re-finds the scale within a few skipped steps.
    """

    def __init__(self, initial: float = 2.0**15, growth_steps: int = 2000) -> None:
        super().__init__(name="loss_scale")
        self.growth_steps = growth_steps
        # Every replica computes the same update from the all-reduced gradients.
        agg = tf.VariableAggregation.ONLY_FIRST_REPLICA
        self.scale = tf.Variable(
            initial, trainable=False, dtype=tf.float32, aggregation=agg, name="scale"
        )
        self.good_steps = tf.Variable(
            0, trainable=False, dtype=tf.int64, aggregation=agg, name="good_steps"
        )

    def unscale(self, grads: Sequence[tf.Tensor]) -> List[tf.Tensor]:
        return [g / self.scale for g in grads]

    def update(self, finite: tf.Tensor) -> None:
        """After a step: ``finite`` whether its gradients were finite."""
        grow = tf.logical_and(finite, self.good_steps + 1 >= self.growth_steps)
        scale = tf.where(
            finite,
            tf.where(grow, self.scale * 2.0, self.scale),
            tf.maximum(self.scale / 2.0, 1.0),
        )
        good = tf.where(tf.logical_and(finite, tf.logical_not(grow)), 1, 0)
        self.good_steps.assign(tf.cast(good, tf.int64) * (self.good_steps + 1))
        self.scale.assign(scale)


LR_DECAYS = ("none", "cosine", "exponential")


def scheduled_learning_rate(
    step: int,
    base: float,
    total_steps: int,
    warmup_steps: int = 0,
    decay: str = "none",
    floor: float = 0.0,
) -> float:
    """The learning rate of update ``step`` (0-based) under a warm-up and a decay.

    Warm-up: linear from ``base / warmup_steps`` to ``base`` over the first
    ``warmup_steps`` updates (Goyal et al., 2017). Then, over the remaining updates
    up to ``total_steps``: ``none`` keeps ``base``; ``cosine`` follows half a cosine
    from ``base`` down to ``floor * base`` (Loshchilov & Hutter, 2017); ``exponential``
    decays geometrically from ``base`` to ``floor * base`` (``floor`` > 0). Past
    ``total_steps`` the rate stays at its final value.
    """
    if decay not in LR_DECAYS:
        raise ValueError(f"unknown learning-rate decay {decay!r} (one of {LR_DECAYS})")
    if warmup_steps > 0 and step < warmup_steps:
        return base * (step + 1) / warmup_steps
    span = max(total_steps - warmup_steps, 1)
    progress = min(max(step - warmup_steps, 0) / span, 1.0)
    low = floor * base
    if decay == "cosine":
        return low + (base - low) * 0.5 * (1.0 + math.cos(math.pi * progress))
    if decay == "exponential":
        if floor <= 0:
            raise ValueError(
                "an exponential decay needs a floor > 0 (--lr_decay_floor)"
            )
        return base * floor**progress
    return base
