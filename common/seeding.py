"""One call that makes a run repeatable on the same machine, and the one range of seeds."""
from __future__ import annotations

import os

from common.errors import UserError

#: every seed (train and retrain configs, CLI options) is an integer in [0, SEED_MAX]:
#: NumPy takes < 2**32, TensorFlow's op seeds are int64 and derived seeds add offsets
SEED_MAX = 2**31 - 1
#: ``dataclasses.field(metadata=SEED_FIELD)`` for a config's seed
SEED_FIELD = {"min": 0, "max": SEED_MAX}


def check_seed(value, where: str) -> int:
    """``value`` as a seed, or a UserError naming ``where`` (e.g. ``--seed``) and the value."""
    try:
        seed = int(str(value).strip())
    except ValueError:
        raise UserError(f"{where} must be an integer in [0, {SEED_MAX}], got {value!r}") from None
    if not 0 <= seed <= SEED_MAX:
        raise UserError(f"{where} must be an integer in [0, {SEED_MAX}], got {seed}")
    return seed


def set_seed(seed: int, deterministic_ops: bool = True) -> None:
    """Seeds Python, NumPy, TensorFlow and Keras; optionally enables TF op determinism.

    Same config + same seed + same machine -> bit-identical numbers, provided every run
    of a command enables determinism the same way. ``enable_op_determinism`` selects
    other kernels (fixed reduction order) than the default ones, and it cannot be
    switched off again in a process: a retraining that ran after an in-process base
    training (determinism on) and a rerun that reused the saved model (determinism
    never enabled) differed by up to 1e-5 (relative) in losses and CAM energies. Every
    training and retraining entry calls this function, so all runs use the same kernels;
    the thread pools can stay at their defaults (their sharding is fixed for a given
    machine).

    Its cost on CPU is measured in docs/benchmark_log.md ("Determinism cost").
    """
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    # deferred: every command imports common; TensorFlow loads only where a seed is set for it
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)  # Python's random, NumPy and TensorFlow
    if deterministic_ops:
        try:
            tf.config.experimental.enable_op_determinism()
        except (AttributeError, RuntimeError):  # older TF or already configured
            pass
