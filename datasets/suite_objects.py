"""Drawing the shortcut suite's objects as alpha maps in [0, 1]: scikit-learn digits,
font glyphs and geometric shapes, each with random size, aspect and rotation
(``datasets.suite_render`` places and colours them).
"""
from __future__ import annotations

import functools
import math

import cv2
import numpy as np
from PIL import Image, ImageDraw
from sklearn.datasets import load_digits

from datasets.fonts import load_font
from datasets.suite_params import CLASSES, SOURCES_STREAM

OBJECT_ANGLE = 15.0             # ± degrees
OBJECT_ASPECT = (0.85, 1.15)
GLYPH_FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSerif.ttf",
               "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf",
               "STIXGeneral.ttf", "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf")
DIGIT_SOURCE_SHARES = (0.6, 0.15, 0.25)  # disjoint train/val/test shares of the source digits


@functools.lru_cache(maxsize=None)
def _glyph_template(letter: str, font: str) -> np.ndarray:
    """float32 ``[h, w]`` in [0, 1]: ``letter`` in ``font`` at about 120 px, cropped to its ink."""
    img = Image.new("L", (240, 240), 0)
    ImageDraw.Draw(img).text((60, 30), letter, fill=255, font=load_font(font, 120))
    return _crop(np.asarray(img, np.float32) / 255.0)


@functools.lru_cache(maxsize=None)
def digit_images() -> tuple[np.ndarray, np.ndarray]:
    """``(images float32 [N, 8, 8] in [0, 1], class ids [N])`` of the digits 0, 1, 4, 7."""
    d = load_digits()
    keep = np.isin(d.target, [int(c) for c in CLASSES["digits"]])
    ids = np.searchsorted(np.array([int(c) for c in CLASSES["digits"]]), d.target[keep])
    return (d.images[keep] / 16.0).astype(np.float32), ids.astype(np.int64)


def digit_sources(*, seed: int, split: str) -> dict[int, np.ndarray]:
    """Source digit rows per class id for ``split``: disjoint across splits, seeded.

    Returns:
        ``{class id: int64 [M]}`` rows into the kept digits (``DIGIT_SOURCE_SHARES`` of each class).
    """
    _, ids = digit_images()
    out = {}
    for c in range(len(CLASSES["digits"])):
        rows = np.flatnonzero(ids == c)
        rows = rows[np.random.default_rng(np.random.SeedSequence([seed, 99, SOURCES_STREAM, c])).permutation(len(rows))]
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


def digit_alpha(source: np.ndarray, rng: np.random.Generator, long_side: float) -> np.ndarray:
    """A smooth stroke image of an 8×8 digit: cubic upscaling, soft threshold (stroke width)."""
    src = np.pad(source, 2)
    up = cv2.resize(src, (12 * 12, 12 * 12), interpolation=cv2.INTER_CUBIC)
    up = cv2.GaussianBlur(up, (0, 0), 4.0)
    lo = float(rng.uniform(0.22, 0.42))  # lower -> thicker strokes
    alpha = np.clip((up - lo) / 0.2, 0.0, 1.0)
    return _transform(_crop(alpha), long_side=long_side, aspect=float(rng.uniform(*OBJECT_ASPECT)),
                      angle=float(rng.uniform(-OBJECT_ANGLE, OBJECT_ANGLE)))


def glyph_alpha(letter: str, rng: np.random.Generator, long_side: float) -> np.ndarray:
    """``letter`` in a random font of ``GLYPH_FONTS``, resized to ``long_side``, random aspect and rotation."""
    font = GLYPH_FONTS[int(rng.integers(len(GLYPH_FONTS)))]
    return _transform(_glyph_template(letter, font), long_side=long_side,
                      aspect=float(rng.uniform(*OBJECT_ASPECT)), angle=float(rng.uniform(-OBJECT_ANGLE, OBJECT_ANGLE)))


def shape_alpha(shape: str, rng: np.random.Generator, long_side: float) -> np.ndarray:
    """circle / cross / square / triangle, filled or outlined, drawn 4× supersampled."""
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
