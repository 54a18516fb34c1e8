"""``ruler``: a measuring ruler along one edge of the image whose tick spacing encodes the
cue class - the scale bars and rulers photographed next to lesions, specimens and parts,
whose graduation differs between the places the images come from."""
from __future__ import annotations

import numpy as np

from datasets.cues.base import CUE_FAMILIES, CueFamily, Scene, reserve_box

#: tick spacing (px at a 64 px image) per cue class
SPACINGS = (3, 4, 6, 8)
#: body and ticks: outside every background's range, so each pixel of the ruler changes
BODY_GRAY, TICK_GRAY = 205, 95
BODY_RGB, TICK_RGB = (232, 205, 120), (60, 40, 5)


def ruler_width(size: int) -> int:
    """The ruler's width (px) across its edge."""
    return max(6, round(0.09 * size))


def ruler_box(size: int, edge: int) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` of the ruler along ``edge`` (0 top, 1 right, 2 bottom, 3 left)."""
    w = ruler_width(size)
    return {0: (0, 0, size, w), 1: (size - w, 0, size, size), 2: (0, size - w, size, size),
            3: (0, 0, w, size)}[edge]


def ruler_strip(*, length: int, width: int, spacing: int, offset: int, channels: int) -> np.ndarray:
    """uint8 ``[width, length, C]``: the ruler lying along x, ticks from its top side, every
    fifth tick longer."""
    body, tick = (BODY_GRAY, TICK_GRAY) if channels == 1 else (BODY_RGB, TICK_RGB)
    out = np.empty((width, length, channels), np.uint8)
    out[:] = body
    for k, x in enumerate(range(offset, length, spacing)):
        out[: width // 2 + (width // 3 if k % 5 == 0 else 0), x] = tick
    return out


@CUE_FAMILIES.register
class Ruler(CueFamily):
    name = "ruler"
    min_size = 48

    def reserved(self, size: int, corner: int) -> np.ndarray:
        return reserve_box(size, ruler_box(size, corner))

    def draw(self, scene: Scene) -> tuple[np.ndarray, np.ndarray]:
        s, edge = scene.size, scene.corner
        spacing = max(2, round(SPACINGS[scene.cue_class] * s / 64))
        strip = ruler_strip(length=s, width=ruler_width(s), spacing=spacing, offset=int(scene.rng.integers(0, 8)),
                            channels=scene.channels)
        if edge in (1, 3):  # vertical: ticks point into the image from the ruler's outer side
            strip = np.rot90(strip, k=1 if edge == 3 else -1)
        elif edge == 2:
            strip = strip[::-1]
        x0, y0, x1, y1 = ruler_box(s, edge)
        image = scene.clean.copy()
        image[y0:y1, x0:x1] = strip
        mask = np.zeros((s, s), np.uint8)
        mask[y0:y1, x0:x1] = 255
        return image, mask

    def describe(self, *, class_names: tuple[str, ...], channels: int, size: int) -> dict:
        return {"encodes": {c: f"ticks every {max(2, round(SPACINGS[k] * size / 64))} px" for k, c in
                            enumerate(class_names)}, "width_px": ruler_width(size), "where": "along a random edge"}
