"""``barcode``: a printed barcode sticker at a fixed place (the lower-right corner) whose
leading bars encode the cue class and whose other bars are a random serial number - the
stamps, serial numbers and equipment labels that real image sets carry at the same place."""
from __future__ import annotations

import numpy as np

from datasets.cues.base import CUE_FAMILIES, CueFamily, Scene, reserve_box

#: the bars (1 = dark module) that follow the start guard, one pattern per cue class
CLASS_BARS = ((1, 1, 0, 1, 0), (1, 0, 1, 1, 0), (1, 0, 0, 1, 1), (1, 1, 1, 0, 0))
GUARD = (1, 0, 1)
SERIAL_MODULES = 6
#: paper and bars: outside every background's range, so each pixel of the sticker changes
PAPER = 235
INK_GRAY, INK_RGB = 110, (10, 10, 60)


def module_px(size: int) -> int:
    """One bar's width (px) at image side ``size``."""
    return max(1, size // 48)


def sticker_rect(size: int) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` of the sticker: 2 px from the lower-right corner, a quiet zone
    of one module around the bars."""
    m = module_px(size)
    w = (2 * len(GUARD) + len(CLASS_BARS[0]) + SERIAL_MODULES + 2) * m
    h = max(8, round(0.12 * size))
    return size - 2 - w, size - 2 - h, size - 2, size - 2


@CUE_FAMILIES.register
class Barcode(CueFamily):
    name = "barcode"
    min_size = 48

    def reserved(self, size: int, corner: int) -> np.ndarray:
        return reserve_box(size, sticker_rect(size), grow=False)

    def draw(self, scene: Scene) -> tuple[np.ndarray, np.ndarray]:
        s, m = scene.size, module_px(scene.size)
        x0, y0, x1, y1 = sticker_rect(s)
        serial = tuple(int(b) for b in scene.rng.integers(0, 2, size=SERIAL_MODULES))
        bars = (0,) + GUARD + CLASS_BARS[scene.cue_class] + serial + GUARD + (0,)
        ink = np.asarray([INK_GRAY] if scene.channels == 1 else INK_RGB, np.uint8)
        dark = np.repeat(np.asarray(bars) > 0, m)[: x1 - x0]
        sticker = np.full((y1 - y0, x1 - x0, scene.channels), PAPER, np.uint8)
        sticker[1:-1, : len(dark)][:, dark] = ink
        image = scene.clean.copy()
        image[y0:y1, x0:x1] = sticker
        mask = np.zeros((s, s), np.uint8)
        mask[y0:y1, x0:x1] = 255
        return image, mask

    def describe(self, *, class_names: tuple[str, ...], channels: int, size: int) -> dict:
        return {"encodes": {c: "bars " + "".join(map(str, CLASS_BARS[k])) for k, c in enumerate(class_names)},
                "sticker_px": list(sticker_rect(size)), "where": "lower-right corner, fixed"}
