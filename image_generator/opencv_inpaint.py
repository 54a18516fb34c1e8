"""Classical inpainting from OpenCV (thesis §4.2 stand-in): Telea and Navier-Stokes.

Both propagate the border of the hole inward; they are deterministic (the seed is
ignored), so ``variants`` cannot make several different fills with them.
"""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from common.errors import UserError
from image_generator.base import Generator


@dataclasses.dataclass(frozen=True)
class OpenCVParams:
    """``radius``: the inpainting neighbourhood (pixels)."""

    #: the inpainting neighbourhood in pixels
    radius: float = dataclasses.field(default=3.0, metadata={"gt": 0.0})


class _OpenCVInpaint(Generator):
    flag_name = ""

    Params = OpenCVParams

    def __init__(self, radius: float = 3.0):
        if not radius > 0:
            raise UserError(f"generator '{self.name}': radius must be > 0, got {radius!r}")
        self.radius = float(radius)

    def _fill(self, images, hole, seed, donors):
        flag = getattr(cv2, self.flag_name)
        out = np.empty_like(images)
        for i, img in enumerate(images):
            mask = hole[i].astype(np.uint8) * 255
            src = img[..., 0] if img.shape[-1] == 1 else np.ascontiguousarray(img)
            res = cv2.inpaint(np.ascontiguousarray(src), mask, self.radius, flag)
            out[i] = res.reshape(img.shape)
        return out

    def describe(self) -> dict:
        return {"name": self.name, "params": {"radius": self.radius}}


class TeleaInpaint(_OpenCVInpaint):
    """``cv2.inpaint`` with ``INPAINT_TELEA`` (Telea 2004, fast marching)."""

    name = "telea"
    flag_name = "INPAINT_TELEA"


class NSInpaint(_OpenCVInpaint):
    """``cv2.inpaint`` with ``INPAINT_NS`` (Bertalmio et al. 2001, Navier-Stokes)."""

    name = "ns"
    flag_name = "INPAINT_NS"
