"""The compiled training step of :class:`classification_models.classifier.Classifier`.

One ``tf.function`` per (loss, optimizer, strategy): the loss function's value plus
the model's own regularisation losses, differentiated with respect to the trainable
variables (scaled by Keras's ``LossScaleOptimizer`` for a mixed-precision model); under
a ``tf.distribute.Strategy`` each replica's loss is divided by the number of replicas
and the returned values are replica means.
"""
from __future__ import annotations

from typing import Callable

import keras
import tensorflow as tf

from classification_models.distributed import guard_peers
from classification_models.precision import is_mixed


def build_train_step(clf, *, loss_fn: Callable, optimizer, strategy=None) -> Callable:
    """A compiled ``step(batch: dict) -> (loss, logs)`` training ``clf.model`` in place.

    Args:
        clf: the classifier (``loss_fn`` receives it; its ``model`` is trained).
        loss_fn: ``loss_fn(clf, batch) -> (scalar loss, logs dict of scalars)``; the loss
            is a mean over the (per-replica) batch.
        optimizer: a Keras optimizer (built on the model's variables first if needed).
        strategy: optional ``tf.distribute.Strategy``; then ``step(batch, share=None)`` takes a
            distributed batch, and with ``share`` (per-replica scalars summing to 1, e.g. from
            ``classification_models.distributed.distribute_batch``) weights each replica's
            loss, gradient and logs by it instead of averaging; a lost peer worker raises
            ``classification_models.distributed.WorkerLost``.

    Returns:
        The step function (see ``Classifier.make_train_step``).
    """

    model = clf.model
    variables = model.trainable_variables
    replicas = 1 if strategy is None else int(strategy.num_replicas_in_sync)
    # a float16 model's small gradients underflow: scale the loss up, the gradients down
    scale = is_mixed(model)
    if scale and not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    if strategy is None and not getattr(optimizer, "built", True):
        # slot variables made before tracing: creating them inside the step traces it twice
        # (minutes for a 150-layer backbone on a CPU)
        optimizer.build(variables)

    def replica_step(batch, share=None):
        with tf.GradientTape() as tape:
            loss, logs = loss_fn(clf, batch)
            total = loss + tf.add_n(model.losses) if model.losses else loss
            if share is not None:  # this replica's share of the batch's rows: summed gradients = the batch's
                scaled = total * share
            else:
                scaled = total / replicas if replicas > 1 else total
            if scale:
                scaled = optimizer.scale_loss(scaled)
        grads = tape.gradient(scaled, variables)
        optimizer.apply_gradients(zip(grads, variables))
        return total, logs

    if strategy is None:
        return tf.function(replica_step, reduce_retracing=True)
    mean, add = tf.distribute.ReduceOp.MEAN, tf.distribute.ReduceOp.SUM

    @tf.function(reduce_retracing=True)
    def step(batch):
        total, logs = strategy.run(replica_step, args=(batch,))
        return (strategy.reduce(mean, total, axis=None),
                {k: strategy.reduce(mean, v, axis=None) for k, v in logs.items()})

    @tf.function(reduce_retracing=True)
    def weighted_step(batch, share):
        # replicas with unequal parts of the batch: their values weighted by share, then summed
        def replica(part, w):
            total, logs = replica_step(part, w)
            return total * w, {k: v * w for k, v in logs.items()}

        total, logs = strategy.run(replica, args=(batch, share))
        return (strategy.reduce(add, total, axis=None),
                {k: strategy.reduce(add, v, axis=None) for k, v in logs.items()})

    return guard_peers(lambda batch, share=None: step(batch) if share is None else weighted_step(batch, share))
