"""One call that makes a run repeatable on the same machine, and the one range of seeds."""
from __future__ import annotations

import os
import random

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

    Same config + same seed + same machine -> same numbers.
    """
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    random.seed(seed)
    import numpy as np

    np.random.seed(seed)
    import tensorflow as tf
    import keras

    keras.utils.set_random_seed(seed)
    tf.random.set_seed(seed)
    if deterministic_ops:
        try:
            tf.config.experimental.enable_op_determinism()
        except (AttributeError, RuntimeError):  # older TF or already configured
            pass
