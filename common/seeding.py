"""One call that makes a run repeatable on the same machine."""
from __future__ import annotations

import os
import random


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
