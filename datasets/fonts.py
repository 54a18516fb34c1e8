"""TrueType fonts bundled with matplotlib, for drawing glyphs and captions without a
system font (found through the package's location: matplotlib itself is not imported)."""
from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

from PIL import ImageFont


@functools.lru_cache(maxsize=None)
def fonts_dir() -> Path:
    """The folder of matplotlib's bundled TrueType fonts (``.../matplotlib/mpl-data/fonts/ttf``)."""
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("matplotlib is not installed: its bundled fonts draw the glyphs and captions")
    return Path(next(iter(spec.submodule_search_locations))) / "mpl-data" / "fonts" / "ttf"


@functools.lru_cache(maxsize=None)
def load_font(name: str, size: int) -> ImageFont.FreeTypeFont:
    """A TrueType font bundled with matplotlib (``name`` like ``DejaVuSans.ttf``), cached."""
    return ImageFont.truetype(str(fonts_dir() / name), size=size)
