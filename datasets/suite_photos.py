"""Real-photograph backdrops for the shortcut suite (``SuiteParams.backdrop: "photo"``):
random crops of the photographs scikit-image bundles (read from the package, no download),
dimmed into the range of the plain backgrounds so that the objects stay as visible as on a
plain backdrop and every cue's colours stay out of the backdrop's range.
"""
from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image

from common.errors import UserError

#: scikit-image's bundled photographs: files of its ``data`` folder, read with Pillow
#: (``skimage.data`` itself needs optional readers for some of its other files)
PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "hubble_deep_field.jpg", "retina.jpg",
          "ihc.png", "camera.png", "coins.png", "moon.png", "grass.png", "gravel.png", "brick.png")
#: the crop's side as a share of the photograph's shorter side
CROP = (0.3, 0.7)
#: what the photograph's 0..255 is mapped to (gray, RGB): the plain backgrounds' ranges
GRAY_RANGE, RGB_RANGE = (0.0, 50.0), (30.0, 110.0)


@functools.lru_cache(maxsize=None)
def photo(name: str) -> np.ndarray:
    """uint8 ``[H, W, 3]``: the bundled photograph file ``name`` (gray ones as RGB)."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("scikit-image is not installed: its bundled photographs are the suite's photo backdrops")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / name
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"), np.uint8)


def photo_backdrop(*, size: int, channels: int, rng: np.random.Generator) -> np.ndarray:
    """float32 ``[S, S, C]``: a random crop of a random bundled photograph, resized to
    ``size`` (bilinear), in the plain backgrounds' range (gray: luminance)."""
    src = photo(PHOTOS[int(rng.integers(len(PHOTOS)))])
    h, w = src.shape[:2]
    side = int(round(rng.uniform(*CROP) * min(h, w)))
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    crop = Image.fromarray(src[y:y + side, x:x + side])
    if rng.random() < 0.5:
        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    crop = crop.resize((size, size), Image.Resampling.BILINEAR)
    if channels == 1:
        crop = crop.convert("L")
    arr = np.asarray(crop, np.float32).reshape(size, size, channels)
    lo, hi = GRAY_RANGE if channels == 1 else RGB_RANGE
    return np.round(lo + arr * (hi - lo) / 255.0).astype(np.float32)
