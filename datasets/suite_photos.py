"""Real-photograph backdrops for the shortcut suite (``SuiteParams.backdrop: "photo"``):
random crops of the photographs scikit-image bundles (read from the package, no download),
dimmed into the range of the plain backgrounds so that the objects stay as visible as on a
plain backdrop and every cue's colours stay out of the backdrop's range.
"""
from __future__ import annotations

import functools

import numpy as np
from PIL import Image

#: scikit-image's bundled photographs (``skimage.data.<name>()`` reads them from the package)
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "retina", "immunohistochemistry",
          "camera", "coins", "moon", "grass", "gravel", "brick")
#: the crop's side as a share of the photograph's shorter side
CROP = (0.3, 0.7)
#: what the photograph's 0..255 is mapped to (gray, RGB): the plain backgrounds' ranges
GRAY_RANGE, RGB_RANGE = (0.0, 50.0), (30.0, 110.0)


@functools.lru_cache(maxsize=None)
def photo(name: str) -> np.ndarray:
    """uint8 ``[H, W, 3]``: the bundled photograph ``name`` (gray ones repeated to RGB)."""
    from skimage import data

    arr = np.asarray(getattr(data, name)())
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    return np.ascontiguousarray(arr[:, :, :3]).astype(np.uint8)


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
