"""The cue families of the shortcut suite, one module each, registered by name in
``CUE_FAMILIES`` (``datasets.cues.base`` documents the contract). A new family is one new
module here plus its name in the import line below."""
from __future__ import annotations

from datasets.cues import background, barcode, frame, patch, ruler, text, watermark
from datasets.cues.base import CUE_FAMILIES, CueFamily, Scene, cue_family

#: the modules whose import registers the families
MODULES = (background, barcode, frame, patch, ruler, text, watermark)

__all__ = ["CUE_FAMILIES", "CueFamily", "Scene", "cue_family"]
