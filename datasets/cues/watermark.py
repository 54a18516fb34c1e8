"""``watermark``: a semi-transparent band with a stock-photo word across the middle of the
image, crossing the object's area (never its pixels); the word encodes the cue class - the
watermarks and logos of image sources that differ between classes."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from datasets.cues.base import CUE_FAMILIES, CueFamily, Scene
from datasets.fonts import load_font

WORDS = ("STOCK", "PROOF", "DEMO", "SAMPLE")
FONT = "DejaVuSans-Bold.ttf"
TINT, INK = 0.25, 0.55  # how far the band and the word are blended towards white


def band_height(size: int) -> int:
    return max(10, round(0.22 * size))


def band_alpha(*, size: int, word: str, angle: float, shift: int) -> tuple[np.ndarray, np.ndarray]:
    """float32 ``[S, S]`` masks of the band and of the word inside it, rotated by ``angle``
    degrees about the centre and moved ``shift`` px along the band's normal."""
    big = 2 * size
    h = band_height(size)
    band = Image.new("L", (big, big), 0)
    word_img = Image.new("L", (big, big), 0)
    top = big // 2 - h // 2 + shift
    ImageDraw.Draw(band).rectangle((0, top, big, top + h - 1), fill=255)
    font = load_font(FONT, max(8, h - 4))
    left, t, right, bottom = font.getbbox(word)
    x = (big - (right - left)) // 2 - left
    ImageDraw.Draw(word_img).text((x, top + (h - (bottom - t)) // 2 - t), word, fill=255, font=font)
    crop = (size // 2, size // 2, size // 2 + size, size // 2 + size)
    out = [np.asarray(im.rotate(angle, resample=Image.Resampling.NEAREST).crop(crop), np.float32) / 255.0
           for im in (band, word_img)]
    return out[0], out[1]


@CUE_FAMILIES.register
class Watermark(CueFamily):
    name = "watermark"
    min_size = 48

    def draw(self, scene: Scene) -> tuple[np.ndarray, np.ndarray]:
        s = scene.size
        angle = float(scene.rng.uniform(-30.0, 30.0))
        shift = int(scene.rng.integers(-s // 8, s // 8 + 1))
        band, word = band_alpha(size=s, word=WORDS[scene.cue_class], angle=angle, shift=shift)
        # the class enters only through the word; the band (hence the mask) is the same for every class
        where = (band > 0) & (scene.object_alpha <= 0)
        a = np.where(where, TINT + (INK - TINT) * word, 0.0)[:, :, None]
        image = np.round(scene.clean * (1.0 - a) + 255.0 * a).clip(0, 255).astype(np.uint8)
        # a near-white pixel the blend leaves as it was is darkened by one level: the mask is
        # exactly the changed pixels, and the same for every class
        same = where & (image == scene.clean).all(axis=2)
        image[same] = scene.clean[same] - 1
        mask = np.where(where, 255, 0).astype(np.uint8)
        return image, mask

    def describe(self, *, class_names: tuple[str, ...], channels: int, size: int) -> dict:
        return {"encodes": {c: WORDS[k] for k, c in enumerate(class_names)}, "band_px": band_height(size),
                "where": "across the middle, random angle within ±30°, never on the object's pixels"}
