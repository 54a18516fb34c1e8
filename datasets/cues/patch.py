"""``patch``: a small square in a random corner whose shade (gray) or colour (RGB) encodes
the cue class - a watermark or a corner symbol."""
from __future__ import annotations

import numpy as np

from datasets.cues.base import CUE_FAMILIES, CueFamily, Scene, colour_code, cue_value, reserve_box


def patch_side(size: int) -> int:
    """The square's side (px) at image side ``size``."""
    return max(5, round(0.10 * size))


def patch_rect(size: int, corner: int) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` of the square in ``corner``, 1 px from the border."""
    p = patch_side(size)
    x0 = 1 if corner in (0, 2) else size - 1 - p
    y0 = 1 if corner in (0, 1) else size - 1 - p
    return x0, y0, x0 + p, y0 + p


@CUE_FAMILIES.register
class Patch(CueFamily):
    name = "patch"
    min_size = 32

    def reserved(self, size: int, corner: int) -> np.ndarray:
        return reserve_box(size, patch_rect(size, corner))

    def draw(self, scene: Scene) -> tuple[np.ndarray, np.ndarray]:
        x0, y0, x1, y1 = patch_rect(scene.size, scene.corner)
        image = scene.clean.copy()
        mask = np.zeros((scene.size, scene.size), np.uint8)
        image[y0:y1, x0:x1] = cue_value(scene.channels, scene.cue_class)
        mask[y0:y1, x0:x1] = 255
        return image, mask

    def describe(self, *, class_names: tuple[str, ...], channels: int, size: int) -> dict:
        return {"encodes": colour_code(class_names, channels), "patch_px": patch_side(size),
                "corners": "random, 1 px from the border"}
