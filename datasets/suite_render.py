"""Drawing the shortcut suite's images: objects (digits, glyphs, shapes), clutter and the
class-coded cues, with the exact cue mask (``datasets.shortcut_suite`` writes the sets).

Every random draw comes from a stream keyed by (seed, split, purpose, image), so objects,
layout and test cues do not depend on the correlations (a set and its oracle share test
images byte for byte).
"""
from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from datasets.shortcut_suite import SuiteParams

SPLITS = ("train", "val", "test")
CLASSES = {
    "digits": ("0", "1", "4", "7"),
    "glyphs": ("A", "E", "K", "R"),
    "shapes": ("circle", "cross", "square", "triangle"),
}
CUES = ("patch", "text", "background", "frame")
MIN_SIZE, MAX_SIZE = 32, 128
#: smallest image side each cue leaves enough room at (the caption must stay legible)
CUE_MIN_SIZE = {"patch": 32, "text": 48, "background": 32, "frame": 32}
VAL_WORDS = ("same", "independent")

# ----- appearance (generator version 1) -----------------------------------------------
OBJECT_SCALE = (0.5, 0.8)       # object's long side as a share of the image side
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
OBJECT_ANGLE = 15.0             # ± degrees
OBJECT_ASPECT = (0.85, 1.15)
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
GLYPH_FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSerif.ttf",
               "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf",
               "STIXGeneral.ttf", "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf")
CAPTION_FONT = "DejaVuSansMono-Bold.ttf"
DIGIT_SOURCE_SHARES = (0.6, 0.15, 0.25)  # disjoint train/val/test shares of the source digits

# random stream purposes: np.random.SeedSequence([seed, split id, purpose(, image)])
_LABELS, _OBJECT, _CUE_CLASS, _CUE_LAYOUT, _SOURCES = range(5)


# ============================================================================ parameters


def _rng(seed: int, split: str, purpose: int, *more: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, SPLITS.index(split), purpose, *more]))


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
    _rng(params.seed, split, _LABELS).shuffle(labels)
    corr = params.split_correlation(split)
    r = _rng(params.seed, split, _CUE_CLASS)
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


# ============================================================================ content
def _fonts_dir() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


@functools.lru_cache(maxsize=None)
def _font(name: str, size: int):
    from PIL import ImageFont

    return ImageFont.truetype(str(_fonts_dir() / name), size=size)


@functools.lru_cache(maxsize=None)
def _glyph_template(letter: str, font: str) -> np.ndarray:
    """float32 ``[h, w]`` in [0, 1]: ``letter`` in ``font`` at about 120 px, cropped to its ink."""
    from PIL import Image, ImageDraw

    img = Image.new("L", (240, 240), 0)
    ImageDraw.Draw(img).text((60, 30), letter, fill=255, font=_font(font, 120))
    return _crop(np.asarray(img, np.float32) / 255.0)


@functools.lru_cache(maxsize=None)
def _digit_sources() -> tuple[np.ndarray, np.ndarray]:
    """``(images float32 [N, 8, 8] in [0, 1], class ids [N])`` of the digits 0, 1, 4, 7."""
    from sklearn.datasets import load_digits

    d = load_digits()
    keep = np.isin(d.target, [int(c) for c in CLASSES["digits"]])
    ids = np.searchsorted(np.array([int(c) for c in CLASSES["digits"]]), d.target[keep])
    return (d.images[keep] / 16.0).astype(np.float32), ids.astype(np.int64)


def digit_sources(*, seed: int, split: str) -> dict[int, np.ndarray]:
    """Source digit rows per class id for ``split``: disjoint across splits, seeded.

    Returns:
        ``{class id: int64 [M]}`` rows into the kept digits (``DIGIT_SOURCE_SHARES`` of each class).
    """
    _, ids = _digit_sources()
    out = {}
    for c in range(len(CLASSES["digits"])):
        rows = np.flatnonzero(ids == c)
        rows = rows[np.random.default_rng(np.random.SeedSequence([seed, 99, _SOURCES, c])).permutation(len(rows))]
        n_train = int(round(len(rows) * DIGIT_SOURCE_SHARES[0]))
        n_val = int(round(len(rows) * DIGIT_SOURCE_SHARES[1]))
        parts = {"train": rows[:n_train], "val": rows[n_train: n_train + n_val], "test": rows[n_train + n_val:]}
        out[c] = parts[split]
    return out


def _crop(alpha: np.ndarray, thresh: float = 0.02) -> np.ndarray:
    ys, xs = np.nonzero(alpha > thresh)
    if len(ys) == 0:
        return alpha[:1, :1] * 0
    return np.ascontiguousarray(alpha[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1])


def _transform(alpha: np.ndarray, *, long_side: float, aspect: float, angle: float) -> np.ndarray:
    """``alpha`` resized so its long side is ``long_side`` (width × ``aspect``), rotated, cropped."""
    import cv2

    h, w = alpha.shape
    f = long_side / max(h, w)
    nw, nh = max(2, round(w * f * aspect)), max(2, round(h * f))
    interp = cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC
    a = np.clip(cv2.resize(alpha, (nw, nh), interpolation=interp), 0.0, 1.0)
    pad = int(math.ceil(math.hypot(nw, nh))) + 4
    canvas = np.zeros((pad, pad), np.float32)
    y0, x0 = (pad - nh) // 2, (pad - nw) // 2
    canvas[y0: y0 + nh, x0: x0 + nw] = a
    m = cv2.getRotationMatrix2D(((pad - 1) / 2.0, (pad - 1) / 2.0), angle, 1.0)
    rot = cv2.warpAffine(canvas, m, (pad, pad), flags=cv2.INTER_LINEAR, borderValue=0.0)
    return _crop(np.clip(rot, 0.0, 1.0))


def _digit_alpha(source: np.ndarray, rng: np.random.Generator, long_side: float) -> np.ndarray:
    """A smooth stroke image of an 8×8 digit: cubic upscaling, soft threshold (stroke width)."""
    import cv2

    src = np.pad(source, 2)
    up = cv2.resize(src, (12 * 12, 12 * 12), interpolation=cv2.INTER_CUBIC)
    up = cv2.GaussianBlur(up, (0, 0), 4.0)
    lo = float(rng.uniform(0.22, 0.42))  # lower -> thicker strokes
    alpha = np.clip((up - lo) / 0.2, 0.0, 1.0)
    return _transform(_crop(alpha), long_side=long_side, aspect=float(rng.uniform(*OBJECT_ASPECT)),
                      angle=float(rng.uniform(-OBJECT_ANGLE, OBJECT_ANGLE)))


def _glyph_alpha(letter: str, rng: np.random.Generator, long_side: float) -> np.ndarray:
    font = GLYPH_FONTS[int(rng.integers(len(GLYPH_FONTS)))]
    return _transform(_glyph_template(letter, font), long_side=long_side,
                      aspect=float(rng.uniform(*OBJECT_ASPECT)), angle=float(rng.uniform(-OBJECT_ANGLE, OBJECT_ANGLE)))


def _shape_alpha(shape: str, rng: np.random.Generator, long_side: float) -> np.ndarray:
    """circle / cross / square / triangle, filled or outlined, drawn 4× supersampled."""
    import cv2

    k = 4
    n = int(round(long_side)) * k
    pad = n // 4
    canvas = np.zeros((n + 2 * pad, n + 2 * pad), np.uint8)
    c = (n + 2 * pad) / 2.0
    filled = bool(rng.random() < 0.5)
    thick = max(2 * k, int(round(n * rng.uniform(0.09, 0.14))))
    angle = math.radians(float(rng.uniform(-25.0, 25.0)))
    r = n / 2.0
    if shape == "circle":
        rx, ry = r, r * float(rng.uniform(*OBJECT_ASPECT))
        rx, ry = rx / max(rx, ry) * r, ry / max(rx, ry) * r
        axes = (int(round(rx - (0 if filled else thick / 2))), int(round(ry - (0 if filled else thick / 2))))
        cv2.ellipse(canvas, (int(c), int(c)), axes, math.degrees(angle), 0, 360, 255,
                    -1 if filled else thick, cv2.LINE_AA)
    else:
        if shape == "square":
            h = r * 0.8
            pts = [(-h, -h), (h, -h), (h, h), (-h, h)]
        elif shape == "triangle":
            half = r * math.sin(math.radians(60)) * 1.1
            pts = [(0.0, -r), (half, r * 0.6), (-half, r * 0.6)]
        else:  # cross: a plus sign with arms a third of its width
            a, b = r, r / 3.0
            pts = [(-b, -a), (b, -a), (b, -b), (a, -b), (a, b), (b, b), (b, a), (-b, a), (-b, b), (-a, b), (-a, -b),
                   (-b, -b)]
        ca, sa = math.cos(angle), math.sin(angle)
        poly = np.array([[c + x * ca - y * sa, c + x * sa + y * ca] for x, y in pts], np.float64)
        poly = np.round(poly * 16).astype(np.int32)[None]  # 4 fractional bits
        if filled:
            cv2.fillPoly(canvas, poly, 255, cv2.LINE_AA, shift=4)
        else:
            cv2.polylines(canvas, poly, True, 255, thick, cv2.LINE_AA, shift=4)
    small = cv2.resize(canvas, (canvas.shape[1] // k, canvas.shape[0] // k), interpolation=cv2.INTER_AREA)
    return _crop(small.astype(np.float32) / 255.0)


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
    font = _font(CAPTION_FONT, max(8, lay.band - 3))
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
    orng = _rng(params.seed, split, _OBJECT, i)
    crng = _rng(params.seed, split, _CUE_LAYOUT, i)
    corner = int(crng.integers(4))
    reserved = None
    if params.cue == "patch":
        x0, y0, x1, y1 = _patch_rect(lay, corner)
        reserved = np.zeros((s, s), bool)
        reserved[max(0, y0 - GAP): y1 + GAP, max(0, x0 - GAP): x1 + GAP] = True

    long_side = _object_long_side(lay, orng, params.difficulty)
    name = params.class_names[label]
    if params.content == "digits":
        alpha = _digit_alpha(source, orng, long_side)
    elif params.content == "glyphs":
        alpha = _glyph_alpha(name, orng, long_side)
    else:
        alpha = _shape_alpha(name, orng, long_side)
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
        images, _ = _digit_sources()
        per_class = digit_sources(seed=params.seed, split=split)
        srng = _rng(params.seed, split, _SOURCES)
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
