"""Writing images: one PNG writer for every figure-free picture the project saves."""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from common.io import atomic_write_bytes


def save_png(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Writes a ``[H, W]``, ``[H, W, 1]`` or ``[H, W, 3]`` array as PNG, atomically
    (values outside uint8 are clipped to [0, 255])."""
    from PIL import Image

    arr = np.asarray(array)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return atomic_write_bytes(path, buf.getvalue())
