"""Drawing the shortcut suite's images: objects (``datasets.suite_objects``) placed among
clutter, and the class-coded cue (a family of ``datasets.cues``), with the exact cue mask (``datasets.shortcut_suite``
writes the sets).

Every random draw comes from a stream keyed by (seed, split, purpose, image), so objects,
layout and test cues do not depend on the correlations (a set and its oracle share test
images byte for byte; ``datasets.suite_params.stream``).
"""
from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np

from datasets.cues import Scene, cue_family
from datasets.suite_photos import photo_backdrop
from datasets.suite_objects import digit_alpha, digit_images, digit_sources, glyph_alpha, shape_alpha
from datasets.suite_params import (CUE_CLASS_STREAM, CUE_LAYOUT_STREAM, DIFFICULTY, LABELS_STREAM, OBJECT_STREAM,
                                   SOURCES_STREAM, SuiteParams, stream)

# ----- appearance (generator version 1) -----------------------------------------------
OBJECT_SCALE = (0.5, 0.8)       # object's long side as a share of the image side
GRAY_BACKGROUND = (0, 50)       # background shade (gray)
RGB_BACKGROUND = (30, 110)      # background shade (RGB), plus a tint of ± RGB_TINT per channel
RGB_TINT = 8
NOISE_STD, NOISE_MAX = 3.0, 8.0  # background noise, clipped to ± NOISE_MAX
GRAY_OBJECT = (170, 255)
#: object colours (RGB); drawn at random, they never encode the class
OBJECT_PALETTE = ((255, 255, 255), (255, 160, 60), (110, 220, 255), (225, 140, 255), (170, 255, 130),
                  (255, 130, 160))


# ============================================================================ labels and cue classes
def split_plan(params: SuiteParams, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Labels and cue classes of one split.

    The labels depend only on ``(n, seed)``; the cue classes of test only on
    ``(n_test, seed)`` (always independent of the label).

    Returns:
        ``(labels int64 [N], cue_classes int64 [N])``, labels balanced over the classes
        (up to the remainder) and shuffled.
    """
    k = len(params.class_names)
    n = params.count(split)
    labels = np.resize(np.arange(k, dtype=np.int64), n)
    stream(params.seed, split, LABELS_STREAM).shuffle(labels)
    corr = params.split_correlation(split)
    r = stream(params.seed, split, CUE_CLASS_STREAM)
    if corr is None:
        cues = r.integers(0, k, size=n)
    else:
        own = r.random(n) < corr
        cues = np.where(own, labels, (labels + r.integers(1, k, size=n)) % k)
    return labels, cues.astype(np.int64)


# ============================================================================ layout
@dataclasses.dataclass(frozen=True)
class Layout:
    """Where the object may go for one cue family and image size (px): ``free`` is the
    rectangle ``(x0, y0, x1, y1)`` the object's pixels stay inside."""

    size: int
    free: tuple[int, int, int, int]


def layout(*, cue: str, image_size: int) -> Layout:
    """The object's area at ``image_size`` with cue family ``cue``."""
    return Layout(size=image_size, free=cue_family(cue).free_area(image_size))


# ============================================================================ one image
@dataclasses.dataclass(frozen=True)
class Example:
    """One rendered image with and without its cue.

    Attributes:
        image: uint8 ``[H, W, C]``, with the cue.
        clean: uint8 ``[H, W, C]``, the same image without the cue.
        mask: uint8 ``[H, W]``, 255 = the pixels the cue changes, else 0.
        label: the class id of the object.
        cue_class: the class id the cue encodes.
    """

    image: np.ndarray
    clean: np.ndarray
    mask: np.ndarray
    label: int
    cue_class: int


def _object_long_side(lay: Layout, rng: np.random.Generator, difficulty: str = "easy") -> float:
    x0, y0, x1, y1 = lay.free
    scale = DIFFICULTY[difficulty][0] if DIFFICULTY.get(difficulty) else OBJECT_SCALE
    return min(float(rng.uniform(*scale)) * lay.size, x1 - x0, y1 - y0)


def _clutter(lay: Layout, reserved: np.ndarray | None, rng: np.random.Generator,
             count: tuple[int, int], opacity: tuple[float, float]) -> np.ndarray:
    """float32 ``[S, S]`` alpha of a few faint strokes (lines and arcs) inside ``lay.free``,
    clear of ``reserved``: distractions with the object's colour and contrast."""
    s = lay.size
    x0, y0, x1, y1 = lay.free
    canvas = np.zeros((s, s), np.float32)
    for _ in range(int(rng.integers(count[0], count[1] + 1))):
        stroke = np.zeros((s, s), np.float32)
        p = (int(rng.integers(x0, x1)), int(rng.integers(y0, y1)))
        thick = int(rng.integers(1, max(2, s // 24) + 1))
        if rng.random() < 0.5:
            length = rng.uniform(0.1, 0.3) * s
            ang = rng.uniform(0, 2 * math.pi)
            q = (int(p[0] + length * math.cos(ang)), int(p[1] + length * math.sin(ang)))
            cv2.line(stroke, p, q, 1.0, thick, cv2.LINE_AA)
        else:
            r = int(rng.uniform(0.05, 0.15) * s) + 1
            a0 = float(rng.uniform(0, 360))
            cv2.ellipse(stroke, p, (r, r), 0.0, a0, a0 + float(rng.uniform(90, 240)), 1.0, thick, cv2.LINE_AA)
        canvas = np.maximum(canvas, stroke * float(rng.uniform(*opacity)))
    inside = np.zeros((s, s), bool)
    inside[y0:y1, x0:x1] = True
    if reserved is not None:
        inside &= ~reserved
    return np.where(inside, canvas, 0.0).astype(np.float32)


def _place(alpha: np.ndarray, lay: Layout, reserved: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    """``alpha`` pasted on an ``[S, S]`` canvas inside ``lay.free``, its ink clear of ``reserved``."""
    s = lay.size
    x0, y0, x1, y1 = lay.free
    for attempt in range(60):
        h, w = alpha.shape
        if h > y1 - y0 or w > x1 - x0 or (attempt and attempt % 15 == 0):
            f = min((y1 - y0) / h, (x1 - x0) / w, 1.0) * (0.9 if attempt else 1.0)
            alpha = np.clip(cv2.resize(alpha, (max(2, int(w * f)), max(2, int(h * f))),
                                       interpolation=cv2.INTER_AREA), 0.0, 1.0)
            h, w = alpha.shape
        px = int(rng.integers(x0, x1 - w + 1))
        py = int(rng.integers(y0, y1 - h + 1))
        out = np.zeros((s, s), np.float32)
        out[py: py + h, px: px + w] = alpha
        if reserved is None or not (reserved & (out > 0)).any():
            return out
    raise AssertionError("object placement failed")  # pragma: no cover - the free area always fits


def _background(params: SuiteParams, rng: np.random.Generator) -> np.ndarray:
    """float32 ``[S, S, C]``: a neutral shade with mild noise."""
    s, c = params.image_size, params.channels
    if c == 1:
        base = np.full(1, rng.uniform(*GRAY_BACKGROUND))
    else:
        base = rng.uniform(*RGB_BACKGROUND) + rng.uniform(-RGB_TINT, RGB_TINT, size=3)
    noise = np.clip(rng.normal(0.0, NOISE_STD, size=(s, s, 1)), -NOISE_MAX, NOISE_MAX)
    return np.round(np.clip(base[None, None, :] + noise, 0, 255)).astype(np.float32)


def _object_colour(params: SuiteParams, rng: np.random.Generator) -> np.ndarray:
    if params.channels == 1:
        return np.array([rng.uniform(*GRAY_OBJECT)], np.float32)
    colour = np.array(OBJECT_PALETTE[int(rng.integers(len(OBJECT_PALETTE)))], np.float32)
    return colour * float(rng.uniform(0.85, 1.0))


def render_example(params: SuiteParams, split: str, i: int, *, label: int, cue_class: int,
                   source: np.ndarray | None = None) -> Example:
    """Renders image ``i`` of ``split`` with and without its cue.

    The object (and everything but the cue's class-coded part) comes from streams
    seeded by ``(seed, split, i)`` only, so it does not depend on ``cue_class``.

    Args:
        params: the set's parameters.
        split: ``train``, ``val`` or ``test``.
        i: the image's number within the split.
        label: the object's class id.
        cue_class: the class id the cue encodes.
        source: for ``digits``, the 8×8 source digit (float32 in [0, 1]).

    Returns:
        An :class:`Example`.
    """
    family = cue_family(params.cue)
    lay = layout(cue=params.cue, image_size=params.image_size)
    orng = stream(params.seed, split, OBJECT_STREAM, i)
    crng = stream(params.seed, split, CUE_LAYOUT_STREAM, i)
    corner = int(crng.integers(4))
    reserved = family.reserved(lay.size, corner)

    long_side = _object_long_side(lay, orng, params.difficulty)
    name = params.class_names[label]
    if params.content == "digits":
        alpha = digit_alpha(source, orng, long_side)
    elif params.content == "glyphs":
        alpha = glyph_alpha(name, orng, long_side)
    else:
        alpha = shape_alpha(name, orng, long_side)
    alpha = _place(alpha, lay, reserved, orng)
    bg = (photo_backdrop(size=params.image_size, channels=params.channels, rng=orng) if params.backdrop == "photo"
          else _background(params, orng))
    fg = _object_colour(params, orng)
    ink = alpha
    preset = DIFFICULTY[params.difficulty]
    if preset:
        _, opacity, count, clutter_opacity = preset
        ink = np.maximum(alpha * float(orng.uniform(*opacity)), _clutter(lay, reserved, orng, count, clutter_opacity))
    a = ink[:, :, None]
    clean = np.round(bg * (1.0 - a) + fg[None, None, :] * a).clip(0, 255).astype(np.uint8)

    image, mask = family.draw(Scene(size=lay.size, channels=params.channels, clean=clean, background=bg,
                                    object_alpha=alpha, cue_class=int(cue_class), corner=corner, rng=crng))
    return Example(image=image, clean=clean, mask=mask, label=int(label), cue_class=int(cue_class))


def iter_split(params: SuiteParams, split: str):
    """Yields ``(i, Example)`` for every image of ``split`` in order."""
    labels, cues = split_plan(params, split)
    sources = None
    if params.content == "digits":
        images, _ = digit_images()
        per_class = digit_sources(seed=params.seed, split=split)
        srng = stream(params.seed, split, SOURCES_STREAM)
        order = {c: rows[srng.permutation(len(rows))] for c, rows in per_class.items()}
        seen = {c: 0 for c in order}
        sources = []
        for y in labels:  # each source digit used about equally often, with fresh jitter each time
            rows = order[int(y)]
            sources.append(images[rows[seen[int(y)] % len(rows)]])
            seen[int(y)] += 1
    for i in range(len(labels)):
        yield i, render_example(params, split, i, label=int(labels[i]), cue_class=int(cues[i]),
                                source=None if sources is None else sources[i])


# ============================================================================ writing


def cue_description(params: SuiteParams) -> dict:
    """The ``cue`` entry of ``suite.json``: the family, what each class's cue looks like and where it is."""
    described = cue_family(params.cue).describe(class_names=params.class_names, channels=params.channels,
                                                size=params.image_size)
    return {"kind": params.cue, **described}
