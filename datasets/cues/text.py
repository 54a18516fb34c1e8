"""``text``: a caption band at the bottom with a serial number whose prefix (``SN-``,
``ID-``, ``QC-``, ``LOT-``) encodes the cue class - the X-ray baggage's serial numbers."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from datasets.cues.base import CUE_FAMILIES, GAP, CueFamily, Scene
from datasets.fonts import load_font

CAPTION_TAGS = ("SN", "ID", "QC", "LOT")
BAND_GRAY, TEXT_GRAY = 225, 80
BAND_RGB, TEXT_RGB = (235, 230, 205), (20, 30, 140)
CAPTION_FONT = "DejaVuSansMono-Bold.ttf"


def band_height(size: int) -> int:
    """The caption band's height (px) at image side ``size``."""
    return max(10, round(0.17 * size))


def caption(*, size: int, channels: int, cue_class: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 ``[band, S, C]``: the caption band with the class-coded serial number at a random x."""
    band = band_height(size)
    text = f"{CAPTION_TAGS[cue_class]}-{int(rng.integers(0, 10000)):04d}"
    mode, band_colour, ink = ("L", BAND_GRAY, TEXT_GRAY) if channels == 1 else ("RGB", BAND_RGB, TEXT_RGB)
    img = Image.new(mode, (size, band), band_colour)
    font = load_font(CAPTION_FONT, max(8, band - 3))
    left, top, right, bottom = font.getbbox(text)
    x = int(rng.integers(1, max(2, size - (right - left) - 1))) if size - (right - left) > 3 else 1
    y = (band - (bottom - top)) // 2 - top
    ImageDraw.Draw(img).text((x - left, y), text, fill=ink, font=font)
    arr = np.asarray(img, np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


@CUE_FAMILIES.register
class Text(CueFamily):
    name = "text"
    min_size = 48  # the caption must stay legible

    def free_area(self, size: int) -> tuple[int, int, int, int]:
        return (1, 1, size - 1, size - band_height(size) - GAP)

    def draw(self, scene: Scene) -> tuple[np.ndarray, np.ndarray]:
        s, band = scene.size, band_height(scene.size)
        image = scene.clean.copy()
        mask = np.zeros((s, s), np.uint8)
        image[s - band:] = caption(size=s, channels=scene.channels, cue_class=scene.cue_class, rng=scene.rng)
        mask[s - band:] = 255
        return image, mask

    def describe(self, *, class_names: tuple[str, ...], channels: int, size: int) -> dict:
        return {"encodes": {c: f"{CAPTION_TAGS[k]}-####" for k, c in enumerate(class_names)},
                "band_px": band_height(size), "where": "bottom"}
