"""Training on several workers: ``tf.distribute.MultiWorkerMirroredStrategy`` from ``$TF_CONFIG``.

When ``TF_CONFIG`` names more than one worker (``common.cluster``), every worker runs the
same command; :func:`cluster_strategy` makes the one strategy of the process (it must
exist before TensorFlow runs any op). Each worker holds one replica of the model; every
worker draws the batch a single process would (the config's batch size, the same seed)
and :func:`distribute_batch` gives each replica its rows (row ``i`` to replica
``i mod replicas``), in base training and retraining alike. Gradients are summed across
replicas by the Keras optimiser after each replica's loss was weighted by its share of
the batch, so a loss that is a mean over the batch's images gives the single-process
update. Passes over many images (propagation) are split in blocks and gathered
(:func:`sharded_rows`). Without such a cluster :func:`cluster_strategy` is None and
nothing here runs.
"""
from __future__ import annotations

import contextlib
import functools

import numpy as np
import tensorflow as tf

from common import cluster as cluster_env
from common.errors import UserError

#: what a collective operation raises when a peer is gone or unreachable
PEER_ERRORS = (tf.errors.UnavailableError, tf.errors.AbortedError, tf.errors.DeadlineExceededError,
               tf.errors.CancelledError)


class WorkerLost(UserError):
    """A multi-worker run stopped because another worker died or became unreachable."""


@functools.cache
def cluster_strategy():
    """The process's ``MultiWorkerMirroredStrategy`` when ``$TF_CONFIG`` names more than
    one worker, else None. Call it before TensorFlow runs any op (the first call makes it;
    later calls return the same one).

    Raises:
        UserError: ``$TF_CONFIG`` is malformed (see ``common.cluster.parse_tf_config``), or
            TensorFlow already ran an op in this process.
    """
    cluster = cluster_env.current()
    if cluster is None:
        return None
    try:
        return tf.distribute.MultiWorkerMirroredStrategy()
    except (RuntimeError, ValueError) as exc:
        raise UserError(f"cannot start multi-worker training as {cluster.describe()}: "
                        f"{str(exc).splitlines()[0]} (the strategy must be made before TensorFlow runs)") from exc


def replica_rows(n: int, replica: int, replicas: int) -> np.ndarray:
    """The rows of an ``n``-row batch that ``replica`` of ``replicas`` trains on: every
    ``replicas``-th row from ``replica`` (interleaved, so the selected images at the end
    of a retraining batch are spread over the replicas)."""
    return np.arange(replica, n, replicas)


def distribute_batch(strategy, batch: dict) -> tuple:
    """A NumPy batch as per-replica values ``(batch part, share)`` for ``strategy.run``:
    each replica's rows (:func:`replica_rows`) and its share of the batch's rows (the
    weight of its loss in the summed gradient).

    Raises:
        UserError: the batch has fewer rows than there are replicas.
    """
    n = len(next(iter(batch.values())))
    replicas = int(strategy.num_replicas_in_sync)
    if n < replicas:
        raise UserError(f"a batch of {n} images cannot be split over {replicas} replicas (workers)")

    def part(ctx):
        rows = replica_rows(n, ctx.replica_id_in_sync_group, replicas)
        return ({k: tf.constant(v[rows]) for k, v in batch.items()},
                tf.constant(len(rows) / n, tf.float32))

    return strategy.experimental_distribute_values_from_function(part)


def peer_failure(exc: BaseException) -> WorkerLost | None:
    """The ``WorkerLost`` error a collective operation's ``exc`` means, or None when
    ``exc`` is not about another worker (or this process is alone)."""
    cluster = cluster_env.current()
    if cluster is None or not isinstance(exc, PEER_ERRORS):
        return None
    who = cluster_env.lost_worker(str(exc), cluster) or "another worker"
    return WorkerLost(f"multi-worker training stopped: {who} died or became unreachable "
                      f"({type(exc).__name__} on {cluster.describe()}); restart every worker to run again")


def guard_peers(step):
    """``step`` that turns a lost peer's error into a one-line :class:`WorkerLost`."""

    @functools.wraps(step)
    def guarded(*args, **kwargs):
        try:
            return step(*args, **kwargs)
        except PEER_ERRORS as exc:
            lost = peer_failure(exc)
            if lost is None:
                raise
            raise lost from None

    return guarded


def replicas_of(strategy):
    """``strategy.scope()``, or a no-op without a strategy: what is made inside (models,
    optimisers) is mirrored on every worker."""
    return strategy.scope() if strategy is not None else contextlib.nullcontext()


def rows_of_worker(n: int, replica: int, replicas: int) -> tuple[int, int]:
    """``(start, stop)``: the contiguous block of ``n`` rows that ``replica`` of ``replicas``
    computes in a sharded pass (the first ``n mod replicas`` blocks one row longer)."""
    size, extra = divmod(n, replicas)
    start = replica * size + min(replica, extra)
    return start, start + size + (1 if replica < extra else 0)


def sharded_rows(compute, n: int) -> np.ndarray:
    """``compute(start, stop) -> array [stop - start, ...]`` over rows ``0..n``, split across
    the workers of the multi-worker strategy (each computes its block of rows,
    :func:`rows_of_worker`) and gathered in order on every worker; without a cluster,
    ``compute(0, n)`` in this process. The blocks' arrays must share dtype and trailing shape."""
    strategy = cluster_strategy()
    if strategy is None:
        return compute(0, n)
    replicas = int(strategy.num_replicas_in_sync)

    def block(ctx):
        start, stop = rows_of_worker(n, ctx.replica_id_in_sync_group, replicas)
        part = np.asarray(compute(start, stop))
        dtype.append(part.dtype)
        # collectives carry 32/64-bit types only: narrower integers travel as int32
        return tf.constant(part.astype(np.int32) if part.dtype.kind in "ub" and part.itemsize < 4 else part)

    dtype = []
    values = strategy.experimental_distribute_values_from_function(block)
    try:
        return strategy.gather(values, axis=0).numpy().astype(dtype[0])
    except PEER_ERRORS as exc:
        raise (peer_failure(exc) or exc) from None
