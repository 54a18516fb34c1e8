"""Image files: one PNG writer for every figure-free picture the project saves, and the
mask files (single-channel PNG, 0 = keep, 255 = irrelevant) read and written everywhere."""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from common.errors import UserError
from common.io import atomic_write_bytes


def to_rgb(image: np.ndarray) -> np.ndarray:
    """``[H, W]``, ``[..., 1]`` or ``[..., C >= 3]`` -> ``[..., 3]`` (grey repeated, extra
    channels dropped; the dtype is kept)."""
    img = np.asarray(image)
    if img.ndim == 2:
        img = img[..., None]
    return np.repeat(img, 3, axis=-1) if img.shape[-1] == 1 else img[..., :3]


def save_png(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Writes a ``[H, W]``, ``[H, W, 1]`` or ``[H, W, 3]`` array as PNG, atomically
    (values outside uint8 are clipped to [0, 255])."""
    arr = np.asarray(array)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return atomic_write_bytes(path, buf.getvalue())


def read_mask(path: str | os.PathLike, expected_hw: tuple[int, int] | None = None, what: str = "mask") -> np.ndarray:
    """Reads a mask PNG as ``uint8 [H, W]`` in {0, 255}.

    Raises:
        UserError: missing/corrupt file, more than one channel, values other than
            0/255, or a size other than ``expected_hw``.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"{what}: file '{path}' does not exist")
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            arr = np.asarray(img)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise UserError(f"{what}: '{path}' is not a readable image ({exc})") from exc
    if mode not in ("L", "1", "P") or arr.ndim != 2:
        raise UserError(f"{what}: '{path}' must be a single-channel PNG, got mode {mode} with shape {arr.shape}")
    arr = arr.astype(np.uint8)
    if mode == "1":
        arr = arr * 255
    values = np.unique(arr)
    if not set(values.tolist()) <= {0, 255}:
        raise UserError(f"{what}: '{path}' is not binary (values {values[:6].tolist()}...; expected 0 and 255)")
    if expected_hw is not None and tuple(arr.shape) != tuple(expected_hw):
        raise UserError(
            f"{what}: '{path}' is {arr.shape[0]}×{arr.shape[1]} but the image is {expected_hw[0]}×{expected_hw[1]}"
        )
    return arr


def write_mask(path: str | os.PathLike, mask: np.ndarray, *, sync: bool = True) -> Path:
    """Writes ``mask`` (bool or uint8 [H, W]; nonzero = irrelevant) as a 0/255 PNG, atomically
    (``sync``: see ``common.io.atomic_write_bytes``)."""
    m = np.asarray(mask)
    if m.ndim != 2:
        raise UserError(f"mask for '{path}' must be 2-D, got shape {m.shape}")
    buf = io.BytesIO()
    Image.fromarray(np.where(m > 0, 255, 0).astype(np.uint8), mode="L").save(buf, format="PNG")
    return atomic_write_bytes(path, buf.getvalue(), sync=sync)
