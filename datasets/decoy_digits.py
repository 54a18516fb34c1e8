"""Decoy digits: scikit-learn's embedded 8×8 digits with a class-coded corner swatch.

After Ross et al. 2017 ("Right for the right reasons", Decoy-MNIST), built offline from
``sklearn.datasets.load_digits`` (1,797 images). Each digit is upsampled to
``image_size - 2·(swatch_size + 2)`` pixels and centred on a black ``image_size²`` canvas,
so a ``swatch_size²`` square in a corner (1 px from the border) lies in last-conv cells
apart from the digit (48 px, 3 pools: 8-px cells; the swatch is in cell 0, the digit
starts at px 8). The swatch's gray shade is ``255 - 20·k`` for class ``k``:

* train: shade of the true class with probability ``train_correlation`` (default 1,
  as in Ross et al.), else of a random other class;
* val and test: shade of a class drawn uniformly at random (``eval_correlation`` None),
  or of the true class with probability ``eval_correlation`` — the validation split is
  distributed as the test split, so λ/B/th sweeps can choose on it (with a shortcut in
  val, a sweep picks the weakest penalty);
* ``clean: true``: no swatch anywhere (the same digits in the same splits; upper bound).

Records store the swatch box (``box``), the digit's tight box (``object_box``) and the
class the shade encodes (``spurious``).

    python -m datasets.prepare --name decoy_digits
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

from common.errors import UserError
from common.splits import stratified_split
from datasets.cached import REGISTRY, CachedDataset
from tf_records_parser.features import Record
from tf_records_parser.writer import write_records

CLASS_NAMES = [str(d) for d in range(10)]
CORNERS = ("random", "tl", "tr", "bl", "br")


@dataclasses.dataclass(frozen=True)
class DecoyDigitsParams:
    """Parameters of ``decoy_digits``."""

    #: side of the square images (digits upscaled)
    image_size: int = dataclasses.field(default=48, metadata={"min": 24, "max": 256})
    #: side of the class-coded corner swatch
    swatch_size: int = dataclasses.field(default=6, metadata={"min": 2, "max": 32})
    #: where the swatch goes (`random`: one of the four corners per image)
    corner: str = dataclasses.field(default="random", metadata={"choices": CORNERS})
    #: probability that a training image's swatch encodes its own class
    train_correlation: float = dataclasses.field(default=1.0, metadata={"min": 0.0, "max": 1.0})
    #: the same for val/test (null: independent of the class)
    eval_correlation: Optional[float] = dataclasses.field(default=None, metadata={"min": 0.0, "max": 1.0})
    #: no swatch at all (the oracle's data)
    clean: bool = False
    #: share of the digits used for validation
    val_fraction: float = dataclasses.field(default=0.15, metadata={"min": 0.0, "max": 0.5})
    #: share of the digits used for test
    test_fraction: float = dataclasses.field(default=0.3, metadata={"min": 0.05, "max": 0.5})
    #: seeds the generation
    seed: int = 0

    def validate(self, source: str) -> None:
        if self.image_size - 2 * (self.swatch_size + 2) < 8:
            raise UserError(
                f"{source}: image_size {self.image_size} leaves no room for the digit with swatch_size "
                f"{self.swatch_size} (need image_size >= 2*(swatch_size+2)+8)"
            )


def shade(k: int) -> int:
    """Gray level of the swatch that encodes class ``k``."""
    return 255 - 20 * int(k)


def generate(params: dict):
    """Yields ``(split, Record)`` for resolved ``params``."""
    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)  # [1797, 8, 8]
    labels = digits.target.astype(np.int64)
    size, sw = params["image_size"], params["swatch_size"]
    margin = sw + 2
    dsize = size - 2 * margin
    split_of = stratified_split(labels, val_fraction=params["val_fraction"],
                                test_fraction=params["test_fraction"], seed=params["seed"])
    rng = np.random.default_rng([params["seed"], 1])
    order = rng.permutation(len(labels))  # shuffle within each split
    corners = {"tl": (1, 1), "tr": (size - 1 - sw, 1), "bl": (1, size - 1 - sw), "br": (size - 1 - sw, size - 1 - sw)}
    for split_id, split in enumerate(("train", "val", "test")):
        members = order[split_of[order] == split_id]
        corr = params["train_correlation"] if split == "train" else params["eval_correlation"]
        for i, j in enumerate(members):
            r = np.random.default_rng([params["seed"], split_id, i, 11])
            y = int(labels[j])
            canvas = np.zeros((size, size), np.uint8)
            digit = np.asarray(Image.fromarray(images[j]).resize((dsize, dsize), Image.Resampling.BILINEAR))
            canvas[margin: margin + dsize, margin: margin + dsize] = digit
            ys, xs = np.nonzero(canvas)
            obj = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
            box, spurious = None, -1
            if not params["clean"]:
                if corr is None:
                    spurious = int(r.integers(10))
                elif r.random() < corr:
                    spurious = y
                else:
                    spurious = int((y + r.integers(1, 10)) % 10)
                corner = params["corner"] if params["corner"] != "random" else ("tl", "tr", "bl", "br")[r.integers(4)]
                x0, y0 = corners[corner]
                canvas[y0: y0 + sw, x0: x0 + sw] = shade(spurious)
                box = (x0, y0, x0 + sw, y0 + sw)
            yield split, Record(index=f"{split}_{i:05d}", image=canvas[:, :, None], label=y,
                                box=box, object_box=obj, spurious=spurious)


@REGISTRY.register
class DecoyDigitsDataset(CachedDataset):
    """``decoy_digits`` (Ross et al. 2017 Decoy-MNIST on sklearn digits). Params: :class:`DecoyDigitsParams`."""

    name = "decoy_digits"
    VERSION = 3  # 3: splits drawn by scikit-learn (stratified train_test_split)
    Params = DecoyDigitsParams
    AUGMENT = {"flip": False, "max_rotation_deg": 10.0, "max_shift": 0.05, "brightness": 0.1,
               "contrast": 0.2, "fill": "constant"}

    @classmethod
    def build(cls, folder: Path, params: dict) -> dict:
        size = params["image_size"]
        return write_records(
            folder, generate(params), name=cls.name, class_names=CLASS_NAMES, image_shape=(size, size, 1),
            source={"generator": "datasets.decoy_digits", "origin": "sklearn.datasets.load_digits",
                    "version": cls.VERSION},
            params=params,
            extra={"has_ground_truth": not params["clean"],
                   "swatch_shades": {c: shade(k) for k, c in enumerate(CLASS_NAMES)}},
        )
