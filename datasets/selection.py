"""The selection contract: which images were masked, with which mask, on which CAM.

``selection.json``::

    {"train_result": "<path>",
     "provenance": {"dataset": "symbols", "params_hash": "3f1c0a9e2b7d"},
     "items": [{"index": "train_00017", "mask": "masks/train_00017.png",
                "cam_class": 2, "note": ""}, ...]}

Masks are single-channel PNGs at the image's resolution, 0 = keep, 255 =
irrelevant; paths are relative to the selection file. Written by the GUI
(``select_tool.main``) and ``select_tool.auto``; read by ``exp_scripts.exp_backprops``,
``image_generator.preview`` and ``plot_utils``.

``provenance`` names the data set variant the masks were drawn on (its name and a hash
of its resolved parameters); :meth:`Selection.check_provenance` refuses the selection
against a train result of another variant. Selections without it (written before it
existed) load and are not checked.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Optional

import numpy as np

from common.config import from_dict
from common.errors import UserError
from common.images import read_mask
from common.io import atomic_write_json, read_json
from common.paths import resolve_relative



@dataclasses.dataclass(frozen=True)
class ProvenanceFile:
    """``provenance`` of a selection file: the data set it was made on."""

    #: the data set's registered name
    dataset: str
    #: the first 12 hex digits of the SHA-256 of its parameters
    params_hash: str


@dataclasses.dataclass(frozen=True)
class SelectionFile:
    """The JSON layout of ``selection.json``, read through ``common.config.from_dict``."""

    #: the masked images
    items: list[SelectionItem]
    #: the train result the masks were painted on (relative to the selection)
    train_result: str = ""
    #: the data set variant the masks were drawn on; another variant is refused
    provenance: Optional[ProvenanceFile] = None


def dataset_provenance(spec: dict) -> dict:
    """``{"dataset": name, "params_hash": 12 hex}`` of a data set spec ``{"name", "params"}``."""
    params = json.dumps(dict(spec.get("params") or {}), sort_keys=True, default=str)
    return {"dataset": str(spec.get("name")), "params_hash": hashlib.sha256(params.encode("utf-8")).hexdigest()[:12]}


def result_provenance(train_result: str | os.PathLike) -> dict | None:
    """The provenance of the data set a train result JSON names, or None when the file
    cannot be read (then nothing is recorded; the selection stays usable)."""
    try:
        with open(train_result, encoding="utf-8") as fh:
            spec = json.load(fh).get("dataset")
    except (OSError, ValueError, AttributeError):
        return None
    return dataset_provenance(spec) if isinstance(spec, dict) and "name" in spec else None


@dataclasses.dataclass
class SelectionItem:
    """One masked image. ``mask`` is the path as written (relative to the selection); also
    the layout of an entry of ``items`` in a selection file (``SelectionFile``)."""

    #: the image's stable index in the data set (e.g. `train_00017`, `train/cat/img_01`)
    index: str
    #: PNG path relative to the selection: single channel, image size, 0 = keep, 255 = irrelevant
    mask: str
    #: the class (0-based) whose CAM the mask was painted on
    cam_class: int = dataclasses.field(metadata={"min": 0})
    #: free text (`propagated` on propagated masks)
    note: str = ""


@dataclasses.dataclass
class Selection:
    """A parsed selection; ``path`` is where it was read from (None if not yet saved)."""

    train_result: str
    items: list[SelectionItem]
    path: Path | None = None
    provenance: dict | None = None

    @property
    def indices(self) -> list[str]:
        return [it.index for it in self.items]

    def mask_path(self, item: SelectionItem) -> Path:
        if self.path is None:
            return Path(item.mask)
        return resolve_relative(item.mask, self.path)

    def train_result_path(self) -> Path:
        return resolve_relative(self.train_result, self.path) if self.path else Path(self.train_result)

    def check_provenance(self, dataset_spec: dict, against: str) -> None:
        """Refuses the selection against a data set variant other than the one it was made on.

        Args:
            dataset_spec: ``{"name", "params"}`` of the train result it is used with.
            against: names that result in the message (``train result '<path>'``).

        Raises:
            UserError naming the selection, both data sets and ``against``.
        """
        if not self.provenance:
            return
        now = dataset_provenance(dataset_spec)
        if now != {k: self.provenance.get(k) for k in now}:
            raise UserError(
                f"selection '{self.path}' was made on data set '{self.provenance.get('dataset')}' (parameters "
                f"{self.provenance.get('params_hash')}) but {against} uses data set '{now['dataset']}' "
                f"(parameters {now['params_hash']}): make the selection again on that result"
            )

    def load_masks(self, image_shape: tuple[int, ...] | None = None) -> np.ndarray:
        """All masks as ``uint8 [N, H, W]`` in {0, 255}; checks size and binarity."""
        masks = [read_mask(self.mask_path(it), expected_hw=image_shape[:2] if image_shape else None,
                           what=f"mask for index '{it.index}'") for it in self.items]
        if not masks:
            h, w = (image_shape or (0, 0))[:2]
            return np.zeros((0, h, w), np.uint8)
        return np.stack(masks)


def load_selection(path: str | os.PathLike, dataset=None, check_masks: bool = True) -> Selection:
    """Reads and validates a selection file.

    Args:
        path: the selection JSON.
        dataset: optional ``datasets.Dataset``; when given, every index must exist
            and every mask must match the image size.
        check_masks: read every mask (size, binarity) now rather than later.

    Raises:
        UserError naming the file and the item at fault.
    """
    path = Path(path)
    parsed = from_dict(SelectionFile, read_json(path, what="selection"), source=f"selection '{path}'")
    seen: dict[str, int] = {}
    for i, raw in enumerate(parsed.items):
        if raw.index in seen:
            raise UserError(f"selection '{path}': items[{i}] index '{raw.index}' appears twice "
                            f"(also items[{seen[raw.index]}])")
        seen[raw.index] = i
    items = list(parsed.items)
    provenance = None if parsed.provenance is None else dataclasses.asdict(parsed.provenance)
    sel = Selection(parsed.train_result, items, path, provenance)
    if dataset is not None:
        for i, it in enumerate(items):
            if not dataset.has_index(it.index):
                raise UserError(f"selection '{path}': items[{i}] index '{it.index}' does not exist in data set '{dataset.name}'")
            if it.cam_class >= dataset.num_classes:
                raise UserError(f"selection '{path}': items[{i}] cam_class {it.cam_class} but the data set has {dataset.num_classes} classes")
    if check_masks:
        hw = dataset.image_shape[:2] if dataset is not None else None
        for it in items:
            read_mask(sel.mask_path(it), expected_hw=hw, what=f"selection '{path}': mask for index '{it.index}'")
    return sel


def save_selection(path: str | os.PathLike, train_result: str, items: list[SelectionItem], *,
                   provenance: dict | None = None) -> Path:
    """Writes a selection JSON atomically (masks must already be written).

    Args:
        path: the selection file.
        train_result: the train result the masks were drawn on (relative to ``path``'s
            folder, or absolute).
        items: the masked images.
        provenance: see :func:`dataset_provenance`; default: that of the data set
            ``train_result`` names (omitted when the result cannot be read).
    """
    if provenance is None and train_result:
        provenance = result_provenance(resolve_relative(train_result, path))
    payload: dict = {"train_result": str(train_result)}
    if provenance:
        payload["provenance"] = dict(provenance)
    payload["items"] = [dataclasses.asdict(it) for it in items]
    return atomic_write_json(path, payload)
