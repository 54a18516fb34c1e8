"""``background``: stripes over everything but the object, at an angle that encodes the
cue class - the wolves' snow, a scene's texture."""
from __future__ import annotations

import math

import numpy as np

from datasets.cues.base import CUE_FAMILIES, CueFamily, Scene

STRIPE_ANGLES = (0.0, 45.0, 90.0, 135.0)
STRIPE_OFFSETS = (45, 15)       # added to the background on / between the stripes (both > 0)


def stripes(size: int, cls: int, rng: np.random.Generator) -> np.ndarray:
    """float32 ``[S, S]`` offsets > 0: stripes at the cue class's orientation, random phase."""
    period = max(6.0, size / 8.0)
    theta = math.radians(STRIPE_ANGLES[cls])
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    u = xx * math.sin(theta) + yy * math.cos(theta)  # 0° = horizontal stripes
    phase = float(rng.uniform(0.0, period))
    on = np.mod(u + phase, period) < period / 2.0
    return np.where(on, STRIPE_OFFSETS[0], STRIPE_OFFSETS[1]).astype(np.float32)


@CUE_FAMILIES.register
class Background(CueFamily):
    name = "background"
    min_size = 32

    def draw(self, scene: Scene) -> tuple[np.ndarray, np.ndarray]:
        obj = scene.object_alpha > 0
        cued = np.clip(scene.background + stripes(scene.size, scene.cue_class, scene.rng)[:, :, None], 0, 255)
        image = np.where(obj[:, :, None], scene.clean, cued.astype(np.uint8))
        mask = np.where(obj, 0, 255).astype(np.uint8)
        return image, mask

    def describe(self, *, class_names: tuple[str, ...], channels: int, size: int) -> dict:
        return {"encodes": {c: f"stripes at {STRIPE_ANGLES[k]:g} degrees" for k, c in enumerate(class_names)},
                "where": "everything but the pixels the object touches"}
