"""Data sets converted from user-supplied files: ``image_folder``, ``quickdraw``, ``cifar10``.

The cache key covers every parameter (with ``root`` made absolute); the manifest also
stores a fingerprint of the source files (paths, sizes, mtimes), so editing the source
folder triggers a reconversion on the next load.

    python -m datasets.prepare --name image_folder --params '{"root": "my_images", "image_size": 224}'
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Optional

from common.errors import UserError
from datasets.cached import REGISTRY, CachedDataset
from tf_records_parser import converters, image_folder
from tf_records_parser.image_depth import ALPHA_CHOICES, DepthRule


def _abs(path: str) -> str:
    return str(Path(path).expanduser().resolve())


class _UserSource:
    """Data sets converted from the user's files under ``params["root"]``: the root is made
    absolute and the files' fingerprint joins the cache key, so edited data is rebuilt."""

    @classmethod
    def normalise_params(cls, params: dict) -> dict:
        return dict(params, root=_abs(params["root"]))

    @classmethod
    def source_fingerprint(cls, params: dict) -> str | None:
        root = Path(params["root"])
        return converters.folder_fingerprint(root) if root.is_dir() else "missing"


@dataclasses.dataclass(frozen=True)
class ImageFolderParams:
    """Parameters of ``image_folder``: ``image_size`` is an int (square) or ``[H, W]``;
    ``mask_threshold`` (1..255) accepts gray or colour masks, thresholded at that value
    (by default masks must be 0/255 single-channel PNGs); ``window`` ``[low, high]`` and
    ``alpha`` (``black``/``white``/``drop``) set how 16-bit, float and transparent images
    become 8 bits (``tf_records_parser.image_depth``)."""

    #: the folder `ROOT/{train,val,test}/<class>/*` (optional `ROOT/masks/...`)
    root: str
    #: an integer (square) or `[H, W]`: images are resized to it
    image_size: Any = 224
    #: 1 (gray) or 3 (RGB)
    channels: int = 3
    #: share of train split off as validation when `ROOT/val` is missing (stratified)
    val_fraction: float = dataclasses.field(default=0.1, metadata={"min": 0.0, "max": 0.9})
    #: share of train split off as test when `ROOT/test` is missing (stratified)
    test_fraction: float = dataclasses.field(default=0.2, metadata={"min": 0.0, "max": 0.9})
    #: seeds the splits
    seed: int = 0
    #: skip unreadable images (reported) instead of stopping
    skip_corrupt: bool = False
    #: accept gray or colour masks, thresholded at this value (null: 0/255 masks only)
    mask_threshold: Optional[int] = dataclasses.field(default=None, metadata={"min": 1, "max": 255})
    #: `[low, high]`: images wider than 8 bits are stretched from this range to 0..255 (null: full range)
    window: Optional[list[float]] = None
    #: transparent pixels composited on `black` or `white`, or `drop` the alpha (null: refused)
    alpha: Optional[str] = dataclasses.field(default=None, metadata={"choices": ALPHA_CHOICES})

    def validate(self, source: str) -> None:
        if self.window is not None and (len(self.window) != 2 or not self.window[0] < self.window[1]):
            raise UserError(f"{source}: window must be [low, high] with low < high, got {self.window!r}")
        size = self.image_size
        ok = (isinstance(size, int) and not isinstance(size, bool) and size >= 1) or (
            isinstance(size, list) and len(size) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in size)
        )
        if not ok:
            raise UserError(f"{source}: image_size must be an integer >= 1 or [H, W], got {size!r}")
        if self.channels not in (1, 3):
            raise UserError(f"{source}: channels must be 1 or 3, got {self.channels!r}")
        if self.val_fraction + self.test_fraction >= 1.0:
            raise UserError(f"{source}: val_fraction + test_fraction must be < 1, got "
                            f"{self.val_fraction} + {self.test_fraction}")


@REGISTRY.register
class ImageFolderDataset(_UserSource, CachedDataset):
    """``image_folder``: ``ROOT/{train,val,test}/<class>/*.{png,jpg,jpeg,bmp}`` (+ ``ROOT/masks/...``)."""

    name = "image_folder"
    VERSION = 6  # 2: unique indices for colliding file names, strict masks; 3: splits by scikit-learn;
    # 4: 16-bit, float and transparent images by an explicit rule (was: clipped by Pillow); 5: cues.csv;
    # 6: EXIF orientation applied (was: phone photos stored sideways, as their pixels are)
    Params = ImageFolderParams

    @classmethod
    def normalise_params(cls, params: dict) -> dict:
        size = params["image_size"]
        return dict(params, root=_abs(params["root"]), image_size=[size, size] if isinstance(size, int) else size)

    @classmethod
    def build(cls, folder: Path, params: dict) -> dict:
        return image_folder.convert_image_folder(
            params["root"], folder, image_size=params["image_size"], channels=params["channels"],
            val_fraction=params["val_fraction"], test_fraction=params["test_fraction"], seed=params["seed"],
            skip_corrupt=params["skip_corrupt"], mask_threshold=params["mask_threshold"], name=cls.name,
            rule=DepthRule(window=None if params.get("window") is None else tuple(params["window"]),
                           alpha=params.get("alpha")),
            params=params,
            fingerprint=cls.source_fingerprint(params),
        )


@dataclasses.dataclass(frozen=True)
class QuickDrawParams:
    """Parameters of ``quickdraw`` (thesis §6.1: airplane, bus, car, fire truck, roller skates)."""

    #: the folder holding `<class>.npy` bitmaps
    root: str
    #: the classes to use (null: every `.npy` file)
    classes: Optional[list[str]] = None
    #: the most bitmaps read per class (null: all)
    per_class_limit: Optional[int] = dataclasses.field(default=None, metadata={"min": 1})
    #: bitmaps are resized to this square size
    image_size: int = dataclasses.field(default=128, metadata={"min": 28})
    #: share held out as validation (stratified)
    val_fraction: float = dataclasses.field(default=0.1, metadata={"min": 0.0, "max": 0.9})
    #: share held out as test (stratified)
    test_fraction: float = dataclasses.field(default=0.2, metadata={"min": 0.0, "max": 0.9})
    #: seeds the splits
    seed: int = 0


@REGISTRY.register
class QuickDrawDataset(_UserSource, CachedDataset):
    """``quickdraw``: ``ROOT/<class>.npy`` bitmaps (N×784 uint8) to 128×128×1."""

    name = "quickdraw"
    VERSION = 2  # 2: splits by scikit-learn (stratified train_test_split)
    Params = QuickDrawParams
    AUGMENT = {"flip": True, "max_rotation_deg": 10.0, "max_shift": 0.1, "brightness": 0.1,
               "contrast": 0.2, "fill": "constant"}

    @classmethod
    def build(cls, folder: Path, params: dict) -> dict:
        return converters.convert_quickdraw(
            params["root"], folder, classes=params["classes"], per_class_limit=params["per_class_limit"],
            image_size=params["image_size"], val_fraction=params["val_fraction"],
            test_fraction=params["test_fraction"], seed=params["seed"], name=cls.name, params=params,
            fingerprint=cls.source_fingerprint(params),
        )


@dataclasses.dataclass(frozen=True)
class Cifar10Params:
    """Parameters of ``cifar10``: the folder holding the binary batches."""

    #: the folder holding the CIFAR-10 binary batches
    root: str


@REGISTRY.register
class Cifar10Dataset(_UserSource, CachedDataset):
    """``cifar10``: binary batches 1–4 train, 5 val, ``test_batch.bin`` test; 32×32×3."""

    name = "cifar10"
    VERSION = 1
    Params = Cifar10Params


    @classmethod
    def build(cls, folder: Path, params: dict) -> dict:
        return converters.convert_cifar10(params["root"], folder, name=cls.name, params=params,
                                          fingerprint=cls.source_fingerprint(params))
