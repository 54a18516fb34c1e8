"""The embedded default data set: LaTeX symbols with a spurious corner distractor (thesis §6.2).

ε, ξ, ζ are rendered offline with matplotlib mathtext (five bundled font sets) on a
72×72×1 canvas, white ink on black, with random size, aspect ratio, rotation and stroke
width, always around the same place (upper/right part). A distractor sits in the
lower-left corner zone (x < 22, y >= 50), which the glyph never enters:

* class ``epsilon`` ↔ ``*``, class ``xi`` ↔ no distractor, class ``zeta`` ↔ ``/``
  (the thesis's Table 6.8 shows ``*`` on ε and ``/`` on ζ).

In train an image carries its own class's distractor with probability
``train_correlation`` (else one of the two others, uniformly); in val/test with
probability ``eval_correlation``, or, when that is None (default), the distractor is
drawn uniformly among {*, /, none}, independent of the class. Every record stores the
distractor's tight pixel box (none for "no distractor"), the glyph's tight box and the
distractor id as ``spurious``, so masks can be made without a person.

    python -m datasets.prepare --name symbols
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

import numpy as np

from datasets.records_dataset import RecordDataset
from tf_records_parser import records as rec

CLASS_NAMES = ["epsilon", "xi", "zeta"]
GLYPHS = {"epsilon": r"\varepsilon", "xi": r"\xi", "zeta": r"\zeta"}
DISTRACTORS = ["*", None, "/"]  # distractor carried by class k's shortcut (id = k)
DISTRACTOR_TEX = {"*": r"\ast", "/": "/"}
FONTSETS = ("dejavusans", "dejavuserif", "cm", "stix", "stixsans")
SIZE = 72
# lower-left zone reserved for the distractor: x in [0, ZONE_X), y in [ZONE_Y, SIZE)
ZONE_X, ZONE_Y = 22, 50
GAP = 2  # minimum gap in px between the glyph box and the zone


@dataclasses.dataclass(frozen=True)
class SymbolsParams:
    """Parameters of ``symbols`` (defaults train a 3-block model in well under 3 min on 2 cores)."""

    n_train: int = dataclasses.field(default=1500, metadata={"min": 3})
    n_val: int = dataclasses.field(default=300, metadata={"min": 3})
    n_test: int = dataclasses.field(default=600, metadata={"min": 3})
    train_correlation: float = dataclasses.field(default=0.9, metadata={"min": 0.0, "max": 1.0})
    eval_correlation: Optional[float] = dataclasses.field(default=None, metadata={"min": 0.0, "max": 1.0})
    seed: int = 0


class _Renderer:
    """Renders glyph and distractor templates once (mathtext, high resolution) and samples variants."""

    def __init__(self):
        import matplotlib

        matplotlib.use("Agg", force=False)
        from matplotlib.font_manager import FontProperties
        from matplotlib.mathtext import MathTextParser

        parser = MathTextParser("agg")

        def render(tex: str, fontset: str, size: float) -> np.ndarray:
            out = parser.parse(f"${tex}$", dpi=72, prop=FontProperties(size=size, math_fontfamily=fontset))
            img = np.asarray(out.image, dtype=np.uint8)
            ys, xs = np.nonzero(img)
            return np.ascontiguousarray(img[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1])

        def canonical(img: np.ndarray, height: int) -> np.ndarray:
            # same template height for every glyph/font, so a stroke filter means the same everywhere
            from PIL import Image

            w = max(2, round(img.shape[1] * height / img.shape[0]))
            return np.asarray(Image.fromarray(img).resize((w, height), Image.Resampling.LANCZOS))

        self.glyphs = {c: [canonical(render(GLYPHS[c], f, 96), 80) for f in FONTSETS] for c in CLASS_NAMES}
        self.distractors = {
            d: [canonical(render(t, f, 48), 48) for f in FONTSETS] for d, t in DISTRACTOR_TEX.items()
        }

    @staticmethod
    def _variant(template: np.ndarray, height: float, aspect: float, angle: float, stroke: int):
        from PIL import Image, ImageFilter

        img = Image.fromarray(template)
        if stroke > 1:
            img = img.filter(ImageFilter.MaxFilter(stroke))
        h0, w0 = template.shape
        scale = height / h0
        size = (max(2, round(w0 * scale * aspect)), max(2, round(h0 * scale)))
        img = img.resize(size, Image.Resampling.LANCZOS)
        img = img.rotate(angle, resample=Image.Resampling.BILINEAR, expand=True, fillcolor=0)
        arr = np.asarray(img, dtype=np.uint8)
        ys, xs = np.nonzero(arr > 24)
        return arr[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]

    def sample(self, label: int, distractor: str | None, rng: np.random.Generator):
        """One image. Returns ``(image uint8 [72,72,1], distractor box or None, glyph box)``."""
        cls = CLASS_NAMES[label]
        font = int(rng.integers(len(FONTSETS)))
        glyph = self._variant(
            self.glyphs[cls][font],
            height=float(rng.uniform(26, 40)),
            aspect=float(rng.uniform(0.75, 1.3)),
            angle=float(rng.uniform(-25, 25)),
            stroke=int(rng.choice([1, 3, 5])),
        )
        gh, gw = glyph.shape
        max_w = SIZE - 1 - (ZONE_X + GAP)  # widest glyph that can always clear the corner zone
        if gw > max_w:
            from PIL import Image

            f = max_w / gw
            glyph = np.asarray(Image.fromarray(glyph).resize((max_w, max(2, round(gh * f))),
                                                             Image.Resampling.LANCZOS))
            gh, gw = glyph.shape
        # same place up to a small jitter (thesis: "always in the same position")
        cx, cy = 46 + rng.integers(-3, 4), 30 + rng.integers(-3, 4)
        x0 = int(np.clip(cx - gw // 2, 1, SIZE - 1 - gw))
        y0 = int(np.clip(cy - gh // 2, 1, SIZE - 1 - gh))
        if x0 < ZONE_X + GAP and y0 + gh > ZONE_Y - GAP:  # would touch the corner zone
            x0 = ZONE_X + GAP
        canvas = np.zeros((SIZE, SIZE), np.uint8)
        canvas[y0: y0 + gh, x0: x0 + gw] = glyph
        ys, xs = np.nonzero(canvas)
        glyph_box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        box = None
        if distractor is not None:
            d = self._variant(
                self.distractors[distractor][int(rng.integers(len(FONTSETS)))],
                height=float(rng.uniform(10, 14)),
                aspect=float(rng.uniform(0.85, 1.15)),
                angle=float(rng.uniform(-15, 15)),
                stroke=int(rng.choice([3, 5])),
            )
            dh, dw = d.shape
            dx = int(rng.integers(2, max(3, ZONE_X - dw)))
            dy = int(rng.integers(ZONE_Y + 1, max(ZONE_Y + 2, SIZE - 1 - dh)))
            layer = np.zeros((SIZE, SIZE), np.uint8)
            layer[dy: dy + dh, dx: dx + dw] = d
            canvas = np.maximum(canvas, layer)
            ys, xs = np.nonzero(layer)
            box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        return canvas[:, :, None], box, glyph_box


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
            yield split, rec.Record(
                index=f"{split}_{i:05d}", image=image, label=int(labels[i]), box=box,
                object_box=glyph_box, spurious=int(dids[i]),
            )


class SymbolsDataset(RecordDataset):
    """``symbols``: ε ξ ζ with a spurious corner distractor (thesis §6.2). Params: :class:`SymbolsParams`."""

    name = "symbols"
    VERSION = 1
    Params = SymbolsParams
    AUGMENT = {"flip": False, "max_rotation_deg": 10.0, "max_shift": 0.05, "brightness": 0.1,
               "contrast": 0.2, "fill": "constant"}

    @classmethod
    def build(cls, folder: Path, params: dict) -> dict:
        return rec.write_records(
            folder, generate(params), name=cls.name, class_names=CLASS_NAMES, image_shape=(SIZE, SIZE, 1),
            source={"generator": "datasets.symbols", "version": cls.VERSION},
            params=params,
            extra={
                "has_ground_truth": True,
                "distractors": {c: (DISTRACTORS[k] or "none") for k, c in enumerate(CLASS_NAMES)},
                "distractor_zone": [0, ZONE_Y, ZONE_X, SIZE],
            },
        )
