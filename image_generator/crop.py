"""Random-crop replacement (thesis §4.3, method E).

The masked region of each image is replaced by the same region of a random other
training image (a *donor*), so the classifier sees the object with the irrelevant
region swapped for irrelevant content taken from the data set itself.
"""
from __future__ import annotations

import numpy as np

from image_generator.base import Generator


class CropReplace(Generator):
    """Masked region <- the same region of a random donor image (method E).

    A donor identical to the image being filled (the image itself, when it is among
    the donors) is never used while another donor exists.
    """

    name = "crop_replace"
    stochastic = True
    needs_donors = True

    def _fill(self, images, hole, seed, donors):
        rng = np.random.default_rng(seed)
        m = len(donors)
        picks = rng.integers(0, m, size=len(images))
        out = np.empty_like(images)
        for i, img in enumerate(images):
            k = int(picks[i])
            if m > 1 and np.array_equal(donors[k], img):
                k = int((k + 1 + rng.integers(0, m - 1)) % m)
            out[i] = donors[k]
        return out
