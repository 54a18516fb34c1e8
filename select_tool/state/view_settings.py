"""How the mask tool shows an image and paints: layers, opacities, CAM threshold, tool, brush (no Tk).

``ViewSettings`` is plain data with clamping setters; it is saved in the session's
``session.json`` (``to_dict``) and restored from it (``restore``, which clamps and
ignores what it does not know).
"""
from __future__ import annotations

import dataclasses

from common.errors import UserError
from select_tool.state.masks import MAX_BRUSH, MIN_BRUSH, MODES

FLAGS = ("show_cam", "show_mask", "side_by_side", "common_scale", "fit_on_open", "show_thumbs")


def _clamp(value, lo: float, hi: float) -> float:
    return float(min(max(float(value), lo), hi))


@dataclasses.dataclass
class ViewSettings:
    """Layers (``show_cam``, ``show_mask``, ``side_by_side``, ``common_scale``), opacities, the
    threshold of "mask from CAM", the painting tool and the brush diameter in image pixels.
    ``fit_on_open``: fit every image to the window when it opens (zoom does not carry over);
    ``show_thumbs``: the thumbnail strip under the canvas."""

    opacity: float = 0.5
    mask_opacity: float = 0.45
    show_cam: bool = True
    show_mask: bool = True
    side_by_side: bool = True
    common_scale: bool = False
    fit_on_open: bool = True
    show_thumbs: bool = True
    cam_threshold: float = 0.5
    mode: str = "brush"
    brush_size: int = 5

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise UserError(f"unknown mode '{mode}' (valid: {', '.join(MODES)})")
        self.mode = mode

    def set_brush_size(self, size: int) -> int:
        self.brush_size = int(min(max(int(size), MIN_BRUSH), MAX_BRUSH))
        return self.brush_size

    def set_opacity(self, value: float) -> None:
        self.opacity = _clamp(value, 0.0, 1.0)

    def set_mask_opacity(self, value: float) -> None:
        self.mask_opacity = _clamp(value, 0.05, 1.0)

    def set_cam_threshold(self, value: float) -> None:
        self.cam_threshold = _clamp(value, 0.01, 1.0)

    def toggle(self, flag: str) -> bool:
        if flag not in FLAGS:
            raise ValueError(f"unknown view flag '{flag}'")
        setattr(self, flag, not getattr(self, flag))
        return getattr(self, flag)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def restore(self, data: dict) -> None:
        """Takes the known keys of a saved ``to_dict``, clamped; the mask is always shown on start."""
        self.set_brush_size(data.get("brush_size", self.brush_size))
        if data.get("mode") in MODES:
            self.mode = data["mode"]
        self.set_opacity(data.get("opacity", self.opacity))
        self.set_mask_opacity(data.get("mask_opacity", self.mask_opacity))
        self.set_cam_threshold(data.get("cam_threshold", self.cam_threshold))
        for flag in ("show_cam", "side_by_side", "common_scale", "fit_on_open", "show_thumbs"):
            setattr(self, flag, bool(data.get(flag, getattr(self, flag))))
        self.show_mask = True  # never start with painting off
