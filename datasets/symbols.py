"""The embedded default data set: LaTeX symbols with a spurious corner distractor (thesis §6.2).

ε, ξ, ζ are rendered offline with matplotlib mathtext (five bundled font sets) on a
72×72×1 canvas, light ink on black. The glyph is deliberately the *harder* cue: small,
thin-stroked and dim (peak intensity ``GLYPH_PEAK``), with random size, aspect ratio,
rotation, shear and position around the upper/right part, over faint clutter (short
strokes and speckle, never brighter than ``CLUTTER_MAX``). The distractor is the *easy*
cue: bright (255), bold and almost always at the same spot of the lower-left corner
zone (x < 22, y >= 50), which neither glyph nor clutter ever enters:

* class ``epsilon`` ↔ ``*``, class ``xi`` ↔ no distractor, class ``zeta`` ↔ ``/``
  (the thesis's Table 6.8 shows ``*`` on ε and ``/`` on ζ).

In train an image carries its own class's distractor with probability
``train_correlation`` (else one of the two others, uniformly); ``train_correlation:
null`` draws the train distractor uniformly among {*, /, none}, independent of the class
(no shortcut: the upper bound, ``config_files/train_files/symbols_clean.json``). In
val/test the probability is ``eval_correlation``, or, when that is None (default), the
distractor is independent of the class. Every record stores the distractor's tight
pixel box (none for "no distractor"), the glyph's tight box (it contains every glyph
pixel; clutter may also fall inside it) and the distractor id as ``spurious``, so masks
can be made without a person.

Measured (generator version 2, data seed 0, train seeds 0/1/2, 10 epochs): with the
defaults (train_correlation 0.9) the 3-block GAP model of
``config_files/train_files/symbols.json`` leans on the distractor — train 0.963 ± 0.006,
val 0.666 ± 0.032, test 0.707 ± 0.037 (thesis §6.2: 0.74); with ``train_correlation:
null`` (``symbols_clean.json``) it learns the glyphs — test 0.976 ± 0.005.

    python -m datasets.prepare --name symbols
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from common.errors import UserError
from datasets.cached import REGISTRY, CachedDataset
from tf_records_parser.features import Record
from tf_records_parser.writer import write_records

CLASS_NAMES = ["epsilon", "xi", "zeta"]
GLYPHS = {"epsilon": r"\varepsilon", "xi": r"\xi", "zeta": r"\zeta"}
DISTRACTORS = ["*", None, "/"]  # distractor carried by class k's shortcut (id = k)
DISTRACTOR_TEX = {"*": r"\ast", "/": "/"}
FONTSETS = ("dejavusans", "dejavuserif", "cm", "stix", "stixsans")
SIZE = 72
# lower-left zone reserved for the distractor: x in [0, ZONE_X), y in [ZONE_Y, SIZE)
ZONE_X, ZONE_Y = 22, 50
GAP = 2  # minimum gap in px between the glyph (or clutter) and the zone

# ----- appearance (generator version 2) -----------------------------------------------
GLYPH_HEIGHT = (20.0, 30.0)   # px, before rotation/shear
GLYPH_ASPECT = (0.7, 1.35)
GLYPH_ANGLE = 30.0            # ± degrees
GLYPH_SHEAR = 0.3             # ± horizontal shear factor
GLYPH_STROKES = (1, 3)        # max-filter size on the 80 px template (1 = font's own stroke)
GLYPH_PEAK = (90, 170)        # peak glyph intensity
GLYPH_CENTER = (46, 30)       # mean glyph centre (x, y)
GLYPH_JITTER = 7              # ± px around the centre
CLUTTER_STROKES = (3, 7)      # number of faint random strokes [lo, hi)
CLUTTER_LEN = (5.0, 14.0)     # stroke length px
CLUTTER_SPECKLE = 0.02        # fraction of pixels that get a faint speckle
CLUTTER_MAX = 70              # clutter never brighter than this (glyph peak is higher)
CLUTTER_MIN = 25
DIST_HEIGHT = (12.0, 14.0)
DIST_STROKES = (5,)           # bold
DIST_ANGLE = 8.0
DIST_POS = (4, 55)            # top-left of the distractor (x, y) up to ±DIST_JITTER
DIST_JITTER = 1


@dataclasses.dataclass(frozen=True)
class SymbolsParams:
    """Parameters of ``symbols``.

    ``train_correlation``: probability that a train image carries its own class's
    distractor; ``None`` = distractor independent of the class (no shortcut).
    """

    #: training images
    n_train: int = dataclasses.field(default=1200, metadata={"min": 3})
    #: validation images
    n_val: int = dataclasses.field(default=300, metadata={"min": 3})
    #: test images
    n_test: int = dataclasses.field(default=600, metadata={"min": 3})
    #: probability that a training image carries its own class's distractor (null: independent)
    train_correlation: Optional[float] = dataclasses.field(default=0.9, metadata={"min": 0.0, "max": 1.0})
    #: the same for val/test (null: independent of the class)
    eval_correlation: Optional[float] = dataclasses.field(default=None, metadata={"min": 0.0, "max": 1.0})
    #: seeds the generation
    seed: int = 0


def _font_cache() -> str:
    """matplotlib's font list cache files (a glob pattern)."""
    import matplotlib  # deferred: the core imports no plotting library at module level

    return str(Path(matplotlib.get_cachedir()) / "fontlist-*.json")


def _tight(arr: np.ndarray, thresh: int = 0):
    ys, xs = np.nonzero(arr > thresh)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


class _Renderer:
    """Renders glyph and distractor templates once (mathtext, high resolution) and samples variants."""

    def __init__(self):
        import matplotlib  # deferred: the core imports no plotting library at module level

        matplotlib.use("Agg", force=False)
        # mathtext renders the glyphs (after the backend is chosen)
        from matplotlib.font_manager import FontProperties
        from matplotlib.mathtext import MathTextParser

        parser = MathTextParser("agg")

        def render(tex: str, fontset: str, size: float) -> np.ndarray:
            try:
                out = parser.parse(f"${tex}$", dpi=72, prop=FontProperties(size=size, math_fontfamily=fontset))
            except ValueError as exc:  # a font cache without the font set's files renders nothing usable
                raise UserError(f"matplotlib could not render the glyph {tex} with its font set '{fontset}' ({exc}); "
                                f"its font cache may predate its bundled fonts: delete {_font_cache()} and retry") from None
            img = np.asarray(out.image, dtype=np.uint8)
            x0, y0, x1, y1 = _tight(img)
            return np.ascontiguousarray(img[y0:y1, x0:x1])

        def canonical(img: np.ndarray, height: int) -> np.ndarray:
            # same template height for every glyph/font, so a stroke filter means the same everywhere
            w = max(2, round(img.shape[1] * height / img.shape[0]))
            return np.asarray(Image.fromarray(img).resize((w, height), Image.Resampling.LANCZOS))

        self.glyphs = {c: [canonical(render(GLYPHS[c], f, 96), 80) for f in FONTSETS] for c in CLASS_NAMES}
        self.distractors = {
            d: [canonical(render(t, f, 48), 48) for f in FONTSETS] for d, t in DISTRACTOR_TEX.items()
        }

    @staticmethod
    def _variant(template: np.ndarray, height: float, aspect: float, angle: float, shear: float, stroke: int):
        """Stroke-thickened, resized, sheared and rotated template, cropped to its ink (> 24)."""
        img = Image.fromarray(template)
        if stroke > 1:
            img = img.filter(ImageFilter.MaxFilter(stroke))
        h0, w0 = template.shape
        scale = height / h0
        w, h = max(2, round(w0 * scale * aspect)), max(2, round(h0 * scale))
        img = img.resize((w, h), Image.Resampling.LANCZOS)
        pad = int(math.ceil(math.hypot(w, h) * (1 + abs(shear)))) + 2
        canvas = Image.new("L", (pad, pad), 0)
        canvas.paste(img, ((pad - w) // 2, (pad - h) // 2))
        # forward map: shear then rotate about the centre; PIL wants the inverse (output -> input)
        a = math.radians(angle)
        ca, sa = math.cos(a), math.sin(a)
        fwd = np.array([[ca, -sa], [sa, ca]]) @ np.array([[1.0, shear], [0.0, 1.0]])
        inv = np.linalg.inv(fwd)
        c = (pad - 1) / 2.0
        off = np.array([c, c]) - inv @ np.array([c, c])
        coeffs = (inv[0, 0], inv[0, 1], off[0], inv[1, 0], inv[1, 1], off[1])
        canvas = canvas.transform((pad, pad), Image.Transform.AFFINE, coeffs,
                                  resample=Image.Resampling.BILINEAR, fillcolor=0)
        arr = np.asarray(canvas, dtype=np.uint8)
        x0, y0, x1, y1 = _tight(arr, 24)
        return arr[y0:y1, x0:x1]

    @staticmethod
    def _clutter(rng: np.random.Generator) -> np.ndarray:
        """Faint strokes and speckle (≤ CLUTTER_MAX) everywhere except the distractor zone (+GAP)."""
        img = Image.new("L", (SIZE, SIZE), 0)
        draw = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(*CLUTTER_STROKES))):
            x, y = rng.uniform(0, SIZE, size=2)
            ang = rng.uniform(0, math.pi)
            ln = rng.uniform(*CLUTTER_LEN)
            if rng.random() < 0.5:  # straight
                pts = [(x, y), (x + ln * math.cos(ang), y + ln * math.sin(ang))]
            else:  # bent
                ang2 = ang + rng.uniform(-1.5, 1.5)
                xm, ym = x + ln / 2 * math.cos(ang), y + ln / 2 * math.sin(ang)
                pts = [(x, y), (xm, ym), (xm + ln / 2 * math.cos(ang2), ym + ln / 2 * math.sin(ang2))]
            draw.line(pts, fill=int(rng.integers(CLUTTER_MIN, CLUTTER_MAX + 1)), width=1)
        arr = np.asarray(img, dtype=np.uint8).copy()
        speck = rng.random((SIZE, SIZE)) < CLUTTER_SPECKLE
        vals = rng.integers(CLUTTER_MIN, CLUTTER_MAX + 1, size=(SIZE, SIZE)).astype(np.uint8)
        arr = np.maximum(arr, np.where(speck, vals, 0).astype(np.uint8))
        arr[ZONE_Y - GAP:, : ZONE_X + GAP] = 0
        return arr

    def layers(self, label: int, distractor: str | None, rng: np.random.Generator):
        """One image as separate layers: ``(glyph, clutter, distractor or None)`` uint8 [72,72]."""
        cls = CLASS_NAMES[label]
        font = int(rng.integers(len(FONTSETS)))
        glyph = self._variant(
            self.glyphs[cls][font],
            height=float(rng.uniform(*GLYPH_HEIGHT)),
            aspect=float(rng.uniform(*GLYPH_ASPECT)),
            angle=float(rng.uniform(-GLYPH_ANGLE, GLYPH_ANGLE)),
            shear=float(rng.uniform(-GLYPH_SHEAR, GLYPH_SHEAR)),
            stroke=int(rng.choice(GLYPH_STROKES)),
        )
        peak = float(rng.uniform(*GLYPH_PEAK))
        glyph = np.round(glyph.astype(np.float32) * (peak / max(1, int(glyph.max())))).astype(np.uint8)
        gh, gw = glyph.shape
        max_w = SIZE - 1 - (ZONE_X + GAP)  # widest glyph that can always clear the corner zone
        if gw > max_w or gh > SIZE - 2:
            f = min(max_w / gw, (SIZE - 2) / gh)
            glyph = np.asarray(Image.fromarray(glyph).resize((max(2, round(gw * f)), max(2, round(gh * f))),
                                                             Image.Resampling.LANCZOS))
            gh, gw = glyph.shape
        cx = GLYPH_CENTER[0] + int(rng.integers(-GLYPH_JITTER, GLYPH_JITTER + 1))
        cy = GLYPH_CENTER[1] + int(rng.integers(-GLYPH_JITTER, GLYPH_JITTER + 1))
        x0 = int(np.clip(cx - gw // 2, 1, SIZE - 1 - gw))
        y0 = int(np.clip(cy - gh // 2, 1, SIZE - 1 - gh))
        if x0 < ZONE_X + GAP and y0 + gh > ZONE_Y - GAP:  # would touch the corner zone
            x0 = ZONE_X + GAP
        g = np.zeros((SIZE, SIZE), np.uint8)
        g[y0: y0 + gh, x0: x0 + gw] = glyph
        clutter = self._clutter(rng)
        d = None
        if distractor is not None:
            t = self._variant(
                self.distractors[distractor][int(rng.integers(len(FONTSETS)))],
                height=float(rng.uniform(*DIST_HEIGHT)),
                aspect=float(rng.uniform(0.9, 1.1)),
                angle=float(rng.uniform(-DIST_ANGLE, DIST_ANGLE)),
                shear=0.0,
                stroke=int(rng.choice(DIST_STROKES)),
            )
            t = np.round(t.astype(np.float32) * (255.0 / max(1, int(t.max())))).astype(np.uint8)
            dh, dw = t.shape
            if dw > ZONE_X or dh > SIZE - ZONE_Y:  # a dummy symbol: the font set's glyph is missing
                raise UserError(f"matplotlib rendered the distractor '{distractor}' {dw}×{dh} px, larger than its "
                                f"{ZONE_X}×{SIZE - ZONE_Y}-px zone (a font set's glyph is missing); its font cache may "
                                f"predate its bundled fonts: delete {_font_cache()} and retry")
            dx = int(np.clip(DIST_POS[0] + rng.integers(-DIST_JITTER, DIST_JITTER + 1), 0, ZONE_X - dw))
            dy = int(np.clip(DIST_POS[1] + rng.integers(-DIST_JITTER, DIST_JITTER + 1), ZONE_Y, SIZE - dh))
            d = np.zeros((SIZE, SIZE), np.uint8)
            d[dy: dy + dh, dx: dx + dw] = t
        return g, clutter, d

    def sample(self, label: int, distractor: str | None, rng: np.random.Generator):
        """One image. Returns ``(image uint8 [72,72,1], distractor box or None, glyph box)``."""
        g, clutter, d = self.layers(label, distractor, rng)
        canvas = np.maximum(g, clutter)
        box = None
        if d is not None:
            canvas = np.maximum(canvas, d)
            box = _tight(d)
        return canvas[:, :, None], box, _tight(g)


def _distractor_ids(labels: np.ndarray, correlation: float | None, rng: np.random.Generator) -> np.ndarray:
    """Distractor id per image: own class with prob ``correlation`` else one of the others; None -> uniform."""
    n = len(labels)
    k = len(CLASS_NAMES)
    if correlation is None:
        return rng.integers(0, k, size=n)
    own = rng.random(n) < correlation
    other = (labels + rng.integers(1, k, size=n)) % k
    return np.where(own, labels, other)


def generate(params: dict):
    """Yields ``(split, Record)`` for the symbols data set described by resolved ``params``."""
    renderer = _Renderer()
    sizes = {"train": params["n_train"], "val": params["n_val"], "test": params["n_test"]}
    for split_id, (split, n) in enumerate(sizes.items()):
        rng = np.random.default_rng([params["seed"], split_id])
        labels = np.resize(np.arange(len(CLASS_NAMES)), n)  # balanced up to the remainder
        rng.shuffle(labels)
        corr = params["train_correlation"] if split == "train" else params["eval_correlation"]
        dids = _distractor_ids(labels, corr, rng)
        for i in range(n):
            img_rng = np.random.default_rng([params["seed"], split_id, i, 7])
            image, box, glyph_box = renderer.sample(int(labels[i]), DISTRACTORS[int(dids[i])], img_rng)
            yield split, Record(
                index=f"{split}_{i:05d}", image=image, label=int(labels[i]), box=box,
                object_box=glyph_box, spurious=int(dids[i]),
            )


@REGISTRY.register
class SymbolsDataset(CachedDataset):
    """``symbols``: ε ξ ζ with a spurious corner distractor (thesis §6.2). Params: :class:`SymbolsParams`."""

    name = "symbols"
    VERSION = 2  # 2: small dim sheared glyphs over faint clutter, bold fixed distractor
    Params = SymbolsParams
    AUGMENT = {"flip": False, "max_rotation_deg": 10.0, "max_shift": 0.05, "brightness": 0.1,
               "contrast": 0.2, "fill": "constant"}

    @classmethod
    def build(cls, folder: Path, params: dict) -> dict:
        return write_records(
            folder, generate(params), name=cls.name, class_names=CLASS_NAMES, image_shape=(SIZE, SIZE, 1),
            source={"generator": "datasets.symbols", "version": cls.VERSION},
            params=params,
            extra={
                "has_ground_truth": True,
                "distractors": {c: (DISTRACTORS[k] or "none") for k, c in enumerate(CLASS_NAMES)},
                "distractor_zone": [0, ZONE_Y, ZONE_X, SIZE],
                "clutter_max": CLUTTER_MAX,
            },
        )
