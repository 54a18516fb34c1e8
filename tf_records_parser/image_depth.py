"""Images as they are: the one rule that turns any image file into 8 bits per channel,
stated in the data set's ``dataset.json`` (``conversion``).

* 8-bit grey, RGB and palette images: as they are (palette and CMYK through RGB).
* More than 8 bits per channel (16-bit grey ``I;16``/``I;16B``, 16-bit RGB, 32-bit integer
  ``I``, float ``F`` TIFFs): by default 16-bit values are scaled from the full range
  0..65535 and float values from 0..1; with ``window: [lo, hi]`` in the data set params,
  values from ``lo`` to ``hi`` are stretched to 0..255 (outside: clipped, as chosen).
* Transparency: an alpha channel that is fully opaque is dropped; transparent pixels
  need ``alpha`` (``black`` / ``white``: the background they are composited on;
  ``drop``: the colour under them is kept).

An image the default rule would clip (integers above 65535 or below 0, floats outside
0..1) or flatten (16-bit values all below 4096: fewer than 16 grey levels left) stops the
conversion with one line naming the file, its mode and its value range, unless the
user chose the rule (``window``).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

import cv2
import numpy as np
from PIL import Image

from common.errors import UserError

#: modes whose samples are wider than 8 bits
WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
#: 16-bit values all below this keep fewer than 16 grey levels when scaled from 0..65535
FLAT_BELOW = 4096
ALPHA_CHOICES = ("black", "white", "drop")


class ConversionRefused(UserError):
    """The rule would clip or flatten an image, or it has transparent pixels and no rule
    for them: never skipped as a corrupt file."""


@dataclasses.dataclass(frozen=True)
class DepthRule:
    """How wide samples and transparency become 8 bits (see the module docstring).

    Attributes:
        window: ``(lo, hi)`` stretched to 0..255, or None for the default scaling.
        alpha: ``black``, ``white``, ``drop``, or None to refuse transparent pixels.
    """

    window: Optional[tuple[float, float]] = None
    alpha: Optional[str] = None

    def describe(self) -> str:
        """The rule in one sentence, for ``dataset.json``."""
        wide = (f"samples wider than 8 bits stretched from the window {self.window[0]:g}..{self.window[1]:g} "
                "to 0..255 (clipped outside)" if self.window else
                "16-bit samples scaled from 0..65535 and float samples from 0..1 to 0..255")
        alpha = {None: "transparent images refused", "drop": "alpha dropped",
                 "black": "transparent pixels composited on black",
                 "white": "transparent pixels composited on white"}[self.alpha]
        return f"8-bit images as they are; palette and CMYK through RGB; {wide}; {alpha}; EXIF orientation applied"


def source_mode(img) -> str:
    """The file's sample layout: Pillow's mode, or ``RGB;16`` / ``RGBA;16`` for 16-bit colour
    PNGs (which Pillow opens as 8-bit RGB by keeping the high byte). Call before ``load()``."""
    args = [getattr(t, "args", None) or (t[3] if len(t) > 3 else None) for t in (getattr(img, "tile", None) or [])]
    raw = str(args[0]) if args else ""
    if img.mode in ("RGB", "RGBA") and ";16" in raw:
        return f"{img.mode};16"
    return img.mode


def _stretch(arr: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.clip(np.rint((arr - lo) * (255.0 / (hi - lo))), 0, 255).astype(np.uint8)


def _wide_to_8bit(arr: np.ndarray, path: Path, mode: str, rule: DepthRule) -> np.ndarray:
    if rule.window is not None:
        return _stretch(arr, *rule.window)
    lo, hi = float(arr.min()), float(arr.max())
    what = f"'{path}' is mode {mode} with values {lo:g}..{hi:g}"
    fix = (f"set \"window\": [low, high] in the data set params (e.g. [{lo:g}, {hi:g}]) to choose which values "
           "become black and white")
    if mode == "F":
        if lo < 0 or hi > 1:
            raise ConversionRefused(f"{what}: the default rule (floats from 0..1) would clip it; {fix}")
        return _stretch(arr, 0.0, 1.0)
    if lo < 0 or hi > 65535:
        raise ConversionRefused(f"{what}: the default rule (16-bit from 0..65535) would clip it; {fix}")
    if hi < FLAT_BELOW:
        raise ConversionRefused(f"{what}: scaled from 0..65535 it keeps fewer than 16 grey levels; {fix}")
    return _stretch(arr, 0.0, 65535.0)


def _read_rgb16(path: Path) -> np.ndarray:
    """A 16-bit colour PNG at full depth (Pillow keeps only the high byte): ``[H, W, C]``."""
    arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise UserError(f"cannot read image '{path}' at 16 bits")
    return arr[..., [2, 1, 0] + ([3] if arr.shape[-1] == 4 else [])]


def _flatten_alpha(arr: np.ndarray, path: Path, mode: str, rule: DepthRule) -> np.ndarray:
    """``[H, W, C + 1]`` uint8 with alpha last -> ``[H, W, C]``."""
    colour, alpha = arr[..., :-1].astype(np.float64), arr[..., -1:].astype(np.float64) / 255.0
    if alpha.min() >= 1.0 or rule.alpha == "drop":
        return arr[..., :-1]
    if rule.alpha is None:
        share = float((alpha < 1.0).mean())
        raise ConversionRefused(f"'{path}' is mode {mode} with {share:.0%} transparent pixels: set \"alpha\" in the data "
                        f"set params to {', '.join(map(repr, ALPHA_CHOICES))} (the background they show, or keep the "
                        "colour under them)")
    background = 0.0 if rule.alpha == "black" else 255.0
    return np.rint(colour * alpha + background * (1 - alpha)).astype(np.uint8)


def to_8bit(img, path: Path, rule: DepthRule, mode: str):
    """``img`` (an opened, loaded Pillow image) as an 8-bit ``L`` or ``RGB`` Pillow image
    by ``rule``; ``mode``: its ``source_mode``, read before loading it.

    Returns:
        ``(image, source mode)``.

    Raises:
        UserError: one line naming ``path`` and its mode when the default rule would clip
            or flatten it, or it has transparent pixels and no ``alpha`` rule.
    """
    if mode in ("RGB;16", "RGBA;16") and rule.window is not None:
        arr = _read_rgb16(path).astype(np.float64)
        arr8 = np.concatenate([_stretch(arr[..., :3], *rule.window),
                               _stretch(arr[..., 3:], 0, 65535)], axis=-1) if arr.shape[-1] == 4 else _stretch(
            arr, *rule.window)
        img = Image.fromarray(arr8)
    if img.mode in WIDE_MODES:
        return Image.fromarray(_wide_to_8bit(np.asarray(img, dtype=np.float64), path, mode, rule), mode="L"), mode
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif img.mode == "PA":
        img = img.convert("RGBA")
    elif img.mode in ("1", "CMYK", "YCbCr", "LAB", "HSV"):
        img = img.convert("L" if img.mode == "1" else "RGB")
    if img.mode in ("RGBA", "LA", "RGBa", "La"):
        img = img.convert("RGBA" if img.mode.startswith("RGB") else "LA")
        arr = _flatten_alpha(np.asarray(img), path, mode, rule)
        img = Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr)
    if img.mode not in ("L", "RGB"):
        raise ConversionRefused(f"'{path}' has image mode {mode}, which this tool cannot convert; save it as an 8- or "
                        "16-bit grey or RGB PNG")
    return img, mode
