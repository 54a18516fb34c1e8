"""Uniform-noise fill: the masked region becomes random pixels (CAIPI-style counterexamples)."""
from __future__ import annotations

import dataclasses

import numpy as np

from common.errors import UserError
from image_generator.base import Generator


@dataclasses.dataclass(frozen=True)
class NoiseParams:
    """Uniform grey levels in ``[low, high]``."""

    #: the lowest grey level drawn
    low: int = dataclasses.field(default=0, metadata={"min": 0, "max": 255})
    #: the highest grey level drawn
    high: int = dataclasses.field(default=255, metadata={"min": 0, "max": 255})


class NoiseFill(Generator):
    """Masked pixels <- independent uniform integers in ``[low, high]`` per channel."""

    name = "noise"
    stochastic = True

    Params = NoiseParams

    def __init__(self, low: int = 0, high: int = 255):
        if not (0 <= int(low) <= int(high) <= 255):
            raise UserError(f"generator 'noise': need 0 <= low <= high <= 255, got low={low!r}, high={high!r}")
        self.low, self.high = int(low), int(high)

    def _fill(self, images, hole, seed, donors):
        rng = np.random.default_rng(seed)
        return rng.integers(self.low, self.high + 1, size=images.shape, dtype=np.uint8)

    def describe(self) -> dict:
        return {"name": self.name, "params": {"low": self.low, "high": self.high}}
