"""The cue families of the shortcut suite, one module each, registered by name in
``CUE_FAMILIES`` (``datasets.cues.base`` documents the contract). A new family is one new
module here plus its name in the import line below."""
from __future__ import annotations

# importing a family's module registers it: one name here per family
from datasets.cues import background, frame, patch, text  # noqa: F401
from datasets.cues.base import CUE_FAMILIES, CueFamily, Scene, cue_family

__all__ = ["CUE_FAMILIES", "CueFamily", "Scene", "cue_family"]
