"""``frame``: a border a few pixels wide whose shade (gray) or colour (RGB) encodes the cue
class - a scanner's or a photo booth's frame."""
from __future__ import annotations

import numpy as np

from datasets.cues.base import CUE_FAMILIES, GAP, CueFamily, Scene, colour_code, cue_value


def frame_width(size: int) -> int:
    """The border's width (px) at image side ``size``."""
    return max(2, round(0.05 * size))


@CUE_FAMILIES.register
class Frame(CueFamily):
    name = "frame"
    min_size = 32

    def free_area(self, size: int) -> tuple[int, int, int, int]:
        f = frame_width(size)
        return (f + GAP, f + GAP, size - f - GAP, size - f - GAP)

    def draw(self, scene: Scene) -> tuple[np.ndarray, np.ndarray]:
        s, f = scene.size, frame_width(scene.size)
        image = scene.clean.copy()
        mask = np.full((s, s), 255, np.uint8)
        mask[f: s - f, f: s - f] = 0
        image[mask > 0] = cue_value(scene.channels, scene.cue_class)
        return image, mask

    def describe(self, *, class_names: tuple[str, ...], channels: int, size: int) -> dict:
        return {"encodes": colour_code(class_names, channels), "frame_px": frame_width(size)}
