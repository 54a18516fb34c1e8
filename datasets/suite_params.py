"""Parameters of one shortcut set (``datasets.shortcut_suite``): contents, cues, sizes,
correlations and difficulty, validated on construction; and the seeded random streams.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional, Union

import numpy as np

from common.errors import UserError
from datasets.cues import CUE_FAMILIES

SPLITS = ("train", "val", "test")
CLASSES = {
    "digits": ("0", "1", "4", "7"),
    "glyphs": ("A", "E", "K", "R"),
    "shapes": ("circle", "cross", "square", "triangle"),
}
MIN_SIZE, MAX_SIZE = 32, 224
VAL_WORDS = ("same", "independent")
#: random stream purposes: ``np.random.SeedSequence([seed, split id, purpose(, image)])``
LABELS_STREAM, OBJECT_STREAM, CUE_CLASS_STREAM, CUE_LAYOUT_STREAM, SOURCES_STREAM = range(5)

#: ``difficulty``: how hard the object is to see. ``easy``: full-contrast objects on a plain
#: background; ``hard``: smaller objects at a fraction of their contrast, among clutter
#: strokes of the same colour and contrast, so that a small class-coded cue is the easier
#: feature for a CNN (a model trained on the cue-correlated set leans on it).
#: per difficulty: (object scale, object opacity, clutter strokes, clutter opacity); None = easy
DIFFICULTY = {
    "easy": None,
    "medium": ((0.4, 0.6), (0.35, 0.55), (4, 8), (0.25, 0.45)),
    "hard": ((0.35, 0.55), (0.2, 0.4), (6, 10), (0.2, 0.4)),
}
DIFFICULTIES = tuple(DIFFICULTY)
#: ``backdrop``: a plain shade with mild noise, or a crop of a real photograph
#: (``datasets.suite_photos``: scikit-image's bundled images, dimmed to the plain range)
BACKDROPS = ("plain", "photo")


def stream(seed: int, split: str, purpose: int, *more: int) -> np.random.Generator:
    """The random stream of ``purpose`` (one of the ``*_STREAM`` ids) in ``split``, e.g. of one image.

    Streams do not depend on each other, so objects, layout and test cues do not depend on
    the correlations.
    """
    return np.random.default_rng(np.random.SeedSequence([seed, SPLITS.index(split), purpose, *more]))


@dataclasses.dataclass(frozen=True)
class SuiteParams:
    """Parameters of one shortcut set; invalid values raise a one-line UserError on construction.

    ``correlation``: probability that a train image's cue encodes its own class (else a
    uniformly drawn other class); None = cue class uniform over all classes, independent
    of the label (the oracle). ``val_correlation``: ``"same"`` (as train: the usual
    situation), a number in [0, 1], or ``"independent"``. The test cue is always independent.
    """

    content: str = "digits"
    cue: str = "patch"
    correlation: Optional[float] = 0.9
    val_correlation: Union[float, str] = "same"
    channels: int = 1
    image_size: int = 64
    n_train: int = 1600
    n_val: int = 400
    n_test: int = 800
    seed: int = 0
    difficulty: str = "medium"
    backdrop: str = "plain"

    def __post_init__(self):
        if self.backdrop not in BACKDROPS:
            raise UserError(f"backdrop must be one of {', '.join(BACKDROPS)}, got {self.backdrop!r}")
        if self.difficulty not in DIFFICULTIES:
            raise UserError(f"difficulty must be one of {', '.join(DIFFICULTIES)}, got {self.difficulty!r}")
        if self.content not in CLASSES:
            raise UserError(f"content must be one of {', '.join(CLASSES)}, got {self.content!r}")
        if self.cue not in CUE_FAMILIES:
            raise UserError(f"cue must be one of {', '.join(CUE_FAMILIES.names())}, got {self.cue!r}")
        if self.correlation is not None and not _is_rate(self.correlation):
            raise UserError(f"correlation must be a number in [0, 1] or null, got {self.correlation!r}")
        if not (_is_rate(self.val_correlation) or self.val_correlation in VAL_WORDS):
            raise UserError(f"val_correlation must be a number in [0, 1], 'same' or 'independent', "
                            f"got {self.val_correlation!r}")
        if self.channels not in (1, 3) or isinstance(self.channels, bool):
            raise UserError(f"channels must be 1 or 3, got {self.channels!r}")
        if not _is_int(self.image_size) or not MIN_SIZE <= self.image_size <= MAX_SIZE:
            raise UserError(f"image_size must be an integer in [{MIN_SIZE}, {MAX_SIZE}], got {self.image_size!r}")
        min_size = CUE_FAMILIES.get(self.cue).min_size
        if self.image_size < min_size:
            raise UserError(f"image_size {self.image_size} is too small for cue '{self.cue}' "
                            f"(needs at least {min_size})")
        for name in ("n_train", "n_val", "n_test"):
            value = getattr(self, name)
            if not _is_int(value) or value < len(CLASSES[self.content]):
                raise UserError(f"{name} must be an integer >= {len(CLASSES[self.content])} "
                                f"(one image per class), got {value!r}")
        if not _is_int(self.seed) or self.seed < 0:
            raise UserError(f"seed must be an integer >= 0, got {self.seed!r}")

    @classmethod
    def from_dict(cls, values: dict) -> "SuiteParams":
        """Parameters from a plain dict (e.g. ``suite.json``'s ``params``); unknown keys are a UserError."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(f"unknown parameter '{unknown[0]}' (valid: {', '.join(sorted(known))})")
        return cls(**values)

    @property
    def class_names(self) -> tuple[str, ...]:
        return CLASSES[self.content]

    def split_correlation(self, split: str) -> Optional[float]:
        """Probability that the cue encodes the label in ``split``; None = independent of the label."""
        if split == "train":
            return self.correlation
        if split == "val":
            if self.val_correlation == "same":
                return self.correlation
            return None if self.val_correlation == "independent" else float(self.val_correlation)
        return None

    def count(self, split: str) -> int:
        return {"train": self.n_train, "val": self.n_val, "test": self.n_test}[split]


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_rate(value) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and 0.0 <= value <= 1.0)
