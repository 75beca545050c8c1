"""``train_step`` and ``eval_step``: compiled once, for any batch size and length.

Both are ``tf.function`` s with an input signature whose batch and time dimensions are
``None``, so bucketed batches never retrace. Under a strategy with several replicas each
replica takes an interleaved slice of the global batch (rows r, r+n, ...; the batch is
length-sorted, so every slice is too) and trims it to its own longest utterance. The
loss is ``sum(per-utterance CTC) / global batch size``, so gradients summed over
replicas are the global mean, as DeepSpeech's ``reduce_mean`` over the batch.

GPU options (doc/GPU.rst): ``cudnn`` runs the LSTM through cuDNN (same variables);
``compute_dtype`` bfloat16/float16 casts the features so the model computes in 16 bits
against its float32 variables, and the logits back to float32 for the CTC loss;
float16 adds dynamic loss scaling.
"""

from typing import Dict, List, Sequence, Tuple

import tensorflow as tf

from util.ctc import ctc_loss, logits_length
from util.model import layer_of, trainable_variables
from util.models import AcousticModel
from util.optimizer import Adam, DynamicLossScale

Batch = Dict[str, tf.Tensor]


def batch_signature(n_input: int) -> Dict[str, tf.TensorSpec]:
    """The dict a batch from util/feeding.py carries (see its module docstring)."""
    return {
        "features": tf.TensorSpec([None, None, n_input], tf.float32),
        "features_len": tf.TensorSpec([None], tf.int32),
        "labels": tf.TensorSpec([None, None], tf.int32),
        "labels_len": tf.TensorSpec([None], tf.int32),
        "index": tf.TensorSpec([None], tf.int32),
        "skipped": tf.TensorSpec([None], tf.bool),
    }


class Steps:
    """The compiled steps of one model/optimizer pair under one strategy."""

    def __init__(
        self,
        model: AcousticModel,
        optimizer: Adam,
        strategy: tf.distribute.Strategy,
        jit: bool = False,
        cudnn: bool = False,
        compute_dtype: str = "float32",
        frozen_layers: Sequence[str] = (),
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.strategy = strategy
        self.variables = trainable_variables(model)
        # --freeze_source_layers: no gradient for these; their Adam moments stay 0, so
        # the update the optimizer applies to them is exactly zero.
        self.trained = [layer_of(v) not in frozen_layers for v in self.variables]
        self.cudnn = cudnn
        self.compute_dtype = tf.as_dtype(compute_dtype)
        self.loss_scale = None
        if self.compute_dtype == tf.float16:
            with strategy.scope():
                self.loss_scale = DynamicLossScale()
        sig = batch_signature(model.n_input)
        seed_spec = tf.TensorSpec([2], tf.int32)
        self.train_step = tf.function(
            self._train_step, input_signature=[sig, seed_spec], jit_compile=jit or None
        )
        self.eval_step = tf.function(self._eval_step, input_signature=[sig])

    def _train_step(self, batch: Batch, seed: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
        """One update -> (per-utterance loss float32 [B], batch order; applied bool)."""
        global_size = tf.cast(tf.shape(batch["features_len"])[0], tf.float32)

        def replica(batch: Batch):
            local = _replica_slice(batch)
            with tf.GradientTape() as tape:
                logits = self._logits(local, training=True, dropout_seed=seed)
                losses = ctc_loss(
                    logits,
                    logits_length(local["features_len"], self.model.cfg),
                    local["labels"],
                    local["labels_len"],
                )
                real = local["index"] >= 0  # False: _replica_slice's placeholder
                weight = tf.cast(real, tf.float32)
                loss = tf.reduce_sum(losses * weight) / global_size
                if self.loss_scale is not None:
                    loss = loss * self.loss_scale.scale
            grads = self._gradients(tape, loss)
            index = local["index"]
            if self.strategy.num_replicas_in_sync > 1:  # drop a placeholder row
                losses = tf.boolean_mask(losses, real)
                index = tf.boolean_mask(index, real)
            if self.loss_scale is None:
                applied = self.optimizer.apply(grads, self.variables)
                return losses, index, applied
            applied = self.optimizer.apply(
                self.loss_scale.unscale(grads), self.variables
            )
            self.loss_scale.update(applied)
            # An overflow with finite losses is the loss scale's business (it halved),
            # not a bad batch: report the step as handled.
            handled = tf.reduce_all(tf.math.is_finite(losses))
            return losses, index, tf.logical_or(applied, handled)

        losses, index, applied = self.strategy.run(replica, args=(batch,))
        return self._gather(losses, index, batch), self._first(applied)

    def _gradients(self, tape: tf.GradientTape, loss: tf.Tensor) -> List[tf.Tensor]:
        """Gradients of every variable; zeros for frozen layers (none computed)."""
        if all(self.trained):
            return tape.gradient(loss, self.variables)
        train = [v for v, t in zip(self.variables, self.trained) if t]
        computed = iter(tape.gradient(loss, train))
        return [
            next(computed) if t else tf.zeros_like(v)
            for v, t in zip(self.variables, self.trained)
        ]

    def _eval_step(self, batch: Batch) -> Tuple[tf.Tensor, tf.Tensor]:
        """returns (loss float32 [B], probs float32 [B, T, C]); single replica."""
        logits = self._logits(batch, training=False)
        losses = ctc_loss(
            logits,
            logits_length(batch["features_len"], self.model.cfg),
            batch["labels"],
            batch["labels_len"],
        )
        return losses, tf.nn.softmax(logits)

    def _logits(self, batch: Batch, training: bool, dropout_seed=None) -> tf.Tensor:
        """float32 logits [B, T, C], computed in ``compute_dtype``."""
        logits = self.model(
            tf.cast(batch["features"], self.compute_dtype),
            batch["features_len"],
            training=training,
            dropout_seed=dropout_seed,
            cudnn=self.cudnn,
        )
        return tf.cast(logits, tf.float32)

    def _gather(self, losses, index, batch: Batch) -> tf.Tensor:
        """Per-replica losses back into the global batch's order."""
        if self.strategy.num_replicas_in_sync == 1:
            return losses
        all_losses = self.strategy.gather(losses, axis=0)
        all_index = self.strategy.gather(index, axis=0)
        order = tf.argsort(all_index)
        positions = tf.argsort(tf.argsort(batch["index"]))
        return tf.gather(tf.gather(all_losses, order), positions)

    def _first(self, value) -> tf.Tensor:
        if self.strategy.num_replicas_in_sync == 1:
            return value
        return self.strategy.experimental_local_results(value)[0]


def _replica_slice(batch: Batch) -> Batch:
    """This replica's rows of the global batch, trimmed to their longest utterance.

    A replica whose slice is empty (a last batch with fewer rows than replicas, or a
    data set smaller than the replica count) gets one placeholder row instead: one
    zero frame, a one-label transcript and index -1. Its loss is finite and weighted 0,
    so it adds nothing to the gradients, yet the replica still takes part in the
    all-reduce. (TF's conv1d mis-shapes an empty batch, so a zero-row step fails.)
    """
    ctx = tf.distribute.get_replica_context()
    n = ctx.num_replicas_in_sync
    if n == 1:
        return batch
    rows = tf.range(ctx.replica_id_in_sync_group, tf.shape(batch["features_len"])[0], n)
    local = {k: tf.gather(v, rows) for k, v in batch.items()}

    def trimmed() -> Batch:
        max_len = tf.reduce_max(local["features_len"])
        return {**local, "features": local["features"][:, :max_len]}

    def placeholder() -> Batch:
        n_input = tf.shape(batch["features"])[2]
        # Zeros (False for flags such as "skipped") for every key, then the row.
        row = {
            k: tf.zeros(tf.concat([[1], tf.shape(v)[1:]], 0), v.dtype)
            for k, v in batch.items()
        }
        return {
            **row,
            "features": tf.zeros(tf.stack([1, 1, n_input]), tf.float32),
            "features_len": tf.ones([1], tf.int32),
            "labels": tf.zeros([1, 1], tf.int32),
            "labels_len": tf.ones([1], tf.int32),
            "index": tf.fill([1], -1),
        }

    return tf.cond(tf.size(rows) > 0, trimmed, placeholder)
