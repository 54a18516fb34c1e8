"""Drawing the shortcut suite's images: objects (``datasets.suite_objects``) placed among
clutter, and the class-coded cues, with the exact cue mask (``datasets.shortcut_suite``
writes the sets).

Every random draw comes from a stream keyed by (seed, split, purpose, image), so objects,
layout and test cues do not depend on the correlations (a set and its oracle share test
images byte for byte; ``datasets.suite_params.stream``).
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from datasets.suite_objects import digit_alpha, digit_images, digit_sources, glyph_alpha, load_font, shape_alpha
from datasets.suite_params import (CUE_CLASS_STREAM, CUE_LAYOUT_STREAM, DIFFICULTY, LABELS_STREAM, OBJECT_STREAM,
                                   SOURCES_STREAM, SuiteParams, stream)

# ----- appearance (generator version 1) -----------------------------------------------
OBJECT_SCALE = (0.5, 0.8)       # object's long side as a share of the image side
GAP = 2                         # px between the object and the cue
GRAY_BACKGROUND = (0, 50)       # background shade (gray)
RGB_BACKGROUND = (30, 110)      # background shade (RGB), plus a tint of ± RGB_TINT per channel
RGB_TINT = 8
NOISE_STD, NOISE_MAX = 3.0, 8.0  # background noise, clipped to ± NOISE_MAX
GRAY_OBJECT = (170, 255)
#: object colours (RGB); drawn at random, they never encode the class
OBJECT_PALETTE = ((255, 255, 255), (255, 160, 60), (110, 220, 255), (225, 140, 255), (170, 255, 130),
                  (255, 130, 160))
#: the cue class's shade (gray) and colour (RGB) for ``patch`` and ``frame``
CUE_SHADES = (100, 145, 190, 235)
CUE_COLOURS = ((230, 30, 30), (30, 200, 40), (40, 90, 255), (250, 220, 0))
CAPTION_TAGS = ("SN", "ID", "QC", "LOT")
BAND_GRAY, TEXT_GRAY = 225, 80
BAND_RGB, TEXT_RGB = (235, 230, 205), (20, 30, 140)
STRIPE_ANGLES = (0.0, 45.0, 90.0, 135.0)
STRIPE_OFFSETS = (45, 15)       # added to the background on / between the stripes (both > 0)
CAPTION_FONT = "DejaVuSansMono-Bold.ttf"


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
    """Where the cue goes and where the object may go, for one cue and image size (px).

    ``free`` is the rectangle ``(x0, y0, x1, y1)`` the object's pixels stay inside.
    """

    size: int
    patch: int
    frame: int
    band: int
    free: tuple[int, int, int, int]


def layout(*, cue: str, image_size: int) -> Layout:
    """The cue geometry of ``cue`` at ``image_size`` (patch side, frame width, caption band height)."""
    s = image_size
    patch = max(5, round(0.10 * s))
    frame = max(2, round(0.05 * s))
    band = max(10, round(0.17 * s))
    if cue == "frame":
        free = (frame + GAP, frame + GAP, s - frame - GAP, s - frame - GAP)
    elif cue == "text":
        free = (1, 1, s - 1, s - band - GAP)
    else:  # patch: the corner is avoided at placement time; background: anywhere
        free = (1, 1, s - 1, s - 1)
    return Layout(size=s, patch=patch, frame=frame, band=band, free=free)


def _patch_rect(lay: Layout, corner: int) -> tuple[int, int, int, int]:
    s, p = lay.size, lay.patch
    x0 = 1 if corner in (0, 2) else s - 1 - p
    y0 = 1 if corner in (0, 1) else s - 1 - p
    return x0, y0, x0 + p, y0 + p


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
    import cv2

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
    import cv2

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


def _cue_value(params: SuiteParams, cls: int) -> np.ndarray:
    if params.channels == 1:
        return np.array([CUE_SHADES[cls]], np.uint8)
    return np.array(CUE_COLOURS[cls], np.uint8)


def _caption(params: SuiteParams, lay: Layout, cls: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 ``[band, S, C]``: the caption band with the class-coded serial number."""
    from PIL import Image, ImageDraw

    s, c = lay.size, params.channels
    text = f"{CAPTION_TAGS[cls]}-{int(rng.integers(0, 10000)):04d}"
    mode, band_colour, ink = ("L", BAND_GRAY, TEXT_GRAY) if c == 1 else ("RGB", BAND_RGB, TEXT_RGB)
    img = Image.new(mode, (s, lay.band), band_colour)
    font = load_font(CAPTION_FONT, max(8, lay.band - 3))
    left, top, right, bottom = font.getbbox(text)
    x = int(rng.integers(1, max(2, s - (right - left) - 1))) if s - (right - left) > 3 else 1
    y = (lay.band - (bottom - top)) // 2 - top
    ImageDraw.Draw(img).text((x - left, y), text, fill=ink, font=font)
    arr = np.asarray(img, np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


def _stripes(size: int, cls: int, rng: np.random.Generator) -> np.ndarray:
    """float32 ``[S, S]`` offsets > 0: stripes at the cue class's orientation, random phase."""
    period = max(6.0, size / 8.0)
    theta = math.radians(STRIPE_ANGLES[cls])
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    u = xx * math.sin(theta) + yy * math.cos(theta)  # 0° = horizontal stripes
    phase = float(rng.uniform(0.0, period))
    on = np.mod(u + phase, period) < period / 2.0
    return np.where(on, STRIPE_OFFSETS[0], STRIPE_OFFSETS[1]).astype(np.float32)


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
    lay = layout(cue=params.cue, image_size=params.image_size)
    s = lay.size
    orng = stream(params.seed, split, OBJECT_STREAM, i)
    crng = stream(params.seed, split, CUE_LAYOUT_STREAM, i)
    corner = int(crng.integers(4))
    reserved = None
    if params.cue == "patch":
        x0, y0, x1, y1 = _patch_rect(lay, corner)
        reserved = np.zeros((s, s), bool)
        reserved[max(0, y0 - GAP): y1 + GAP, max(0, x0 - GAP): x1 + GAP] = True

    long_side = _object_long_side(lay, orng, params.difficulty)
    name = params.class_names[label]
    if params.content == "digits":
        alpha = digit_alpha(source, orng, long_side)
    elif params.content == "glyphs":
        alpha = glyph_alpha(name, orng, long_side)
    else:
        alpha = shape_alpha(name, orng, long_side)
    alpha = _place(alpha, lay, reserved, orng)
    bg = _background(params, orng)
    fg = _object_colour(params, orng)
    ink = alpha
    preset = DIFFICULTY[params.difficulty]
    if preset:
        _, opacity, count, clutter_opacity = preset
        ink = np.maximum(alpha * float(orng.uniform(*opacity)), _clutter(lay, reserved, orng, count, clutter_opacity))
    a = ink[:, :, None]
    clean = np.round(bg * (1.0 - a) + fg[None, None, :] * a).clip(0, 255).astype(np.uint8)

    image = clean.copy()
    mask = np.zeros((s, s), np.uint8)
    if params.cue == "patch":
        x0, y0, x1, y1 = _patch_rect(lay, corner)
        image[y0:y1, x0:x1] = _cue_value(params, cue_class)
        mask[y0:y1, x0:x1] = 255
    elif params.cue == "frame":
        f = lay.frame
        mask[:] = 255
        mask[f: s - f, f: s - f] = 0
        image[mask > 0] = _cue_value(params, cue_class)
    elif params.cue == "text":
        image[s - lay.band:] = _caption(params, lay, cue_class, crng)
        mask[s - lay.band:] = 255
    else:  # background
        obj = alpha > 0
        cued = np.clip(bg + _stripes(s, cue_class, crng)[:, :, None], 0, 255).astype(np.uint8)
        image = np.where(obj[:, :, None], clean, cued)
        mask[~obj] = 255
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


def cue_description(params: SuiteParams, lay: Layout) -> dict:
    """The ``cue`` entry of ``suite.json``: what each class's cue looks like and where it is."""
    names = params.class_names
    if params.cue in ("patch", "frame"):
        code = {c: (CUE_SHADES[k] if params.channels == 1 else list(CUE_COLOURS[k])) for k, c in enumerate(names)}
        geometry = ({"patch_px": lay.patch, "corners": "random, 1 px from the border"} if params.cue == "patch"
                    else {"frame_px": lay.frame})
    elif params.cue == "text":
        code = {c: f"{CAPTION_TAGS[k]}-####" for k, c in enumerate(names)}
        geometry = {"band_px": lay.band, "where": "bottom"}
    else:
        code = {c: f"stripes at {STRIPE_ANGLES[k]:g} degrees" for k, c in enumerate(names)}
        geometry = {"where": "everything but the pixels the object touches"}
    return {"kind": params.cue, "encodes": code, **geometry}
