"""The thesis's per-selected-image visualisation table of one retraining run (images as
columns: image, mask, CAM before, and per method the CAM after, with probabilities),
from the run's stored CAM arrays (``cams.npz``) and the data set's images."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from classification_models.cam import cam_overlay
from classification_models.train_result import load_train_result
from common.errors import UserError
from datasets.selection import load_selection
from plot_utils.results import CAMS_FILE, Missing, Run, is_missing, load_cams
from plot_utils.table_format import IMAGE_DIR, Table, to_latex, to_markdown


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", str(text))


def _read_png(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        img.load()
        return np.asarray(img.convert("RGB") if img.mode not in ("L", "RGB") else img)


def _selected_indices(run: Run) -> tuple[list[str], Any]:
    """Indices in selection order: the selection file's when it is readable (it holds the
    masks), else the ones ``run.json`` lists."""
    if run.selection_path is not None and run.selection_path.exists():

        selection = load_selection(run.selection_path, check_masks=False)
        return selection.indices, selection
    return list(run.run_info.selected), None


def _fmt_probs(values: Any, digits: int = 2) -> str:
    if not isinstance(values, (list, tuple)) or not values:
        return ""
    return " ".join(f"{float(v):.{digits}f}" for v in values)


def _load_images_for(run: Run, indices: list[str]) -> dict[str, Any]:
    """``{index: uint8 image | Missing}`` via the run's train result and data set."""
    if run.train_result_path is None or not run.train_result_path.exists():
        reason = Missing(f"image (no train result found for {run.name})")
        return {i: reason for i in indices}

    try:
        ds = load_train_result(run.train_result_path).load_dataset()
        images, _ = ds.get_many(indices)
    except (UserError, ImportError) as exc:  # reported in the cell, never hidden
        reason = Missing(f"image ({str(exc).splitlines()[0][:160]})")
        return {i: reason for i in indices}
    return {i: images[k] for k, i in enumerate(indices)}


def visualisation_table(run: Run, load_images: bool = True, width: str = "1.6cm") -> Table:
    """The per-selected-image table of one retraining run (images as columns, as in the thesis).

    Rows: Name, Image, Mask, Initial CAM, Initial probs, then per method ``<m> CAM`` and
    ``<m> probs``. Image cells are ``\\includegraphics`` of files listed in
    ``Table.images`` (written by ``save_tables``); a cell the run cannot fill says what
    is missing.

    Raises:
        UserError: the run is not a retraining run or its selection is empty.
    """
    if run.kind != "retrain":
        raise UserError(f"'{run.path}' is a training run; the visualisation table needs a retraining run")
    indices, selection = _selected_indices(run)
    if not indices:
        where = run.selection_path or (run.path / "summary.json")
        raise UserError(f"selection '{where}' is empty: no selected images for the visualisation table of '{run.path}'")
    images: dict[str, np.ndarray] = {}

    def graphic(arr_or_missing: Any, name: str) -> str:
        if is_missing(arr_or_missing) or arr_or_missing is None:
            return str(arr_or_missing or Missing(name))
        rel = f"{IMAGE_DIR}/{_safe(run.name)}_{_safe(name)}.png"
        images[rel] = np.asarray(arr_or_missing)
        return f"\\includegraphics[width={width}]{{{rel}}}"

    raw = _load_images_for(run, indices) if load_images else {i: Missing("image (not loaded)") for i in indices}
    # per-method CAM records (cams.npz): the selected images and their CAMs before/after

    cam_tiles: dict[str, dict[str, list[np.ndarray]]] = {}
    for m in run.methods:
        cpath = run.path / m.label / CAMS_FILE
        if cpath.exists():
            rec = load_cams(cpath)["selected"]
            cam_tiles[m.label] = {
                str(idx): [rec["images"][k], cam_overlay(rec["images"][k], rec["cams_before"][k]),
                           cam_overlay(rec["images"][k], rec["cams_after"][k])]
                for k, idx in enumerate(rec["indices"]) if str(idx) in indices}
    for idx in indices:
        if is_missing(raw[idx]):
            found = [t[idx][0] for t in cam_tiles.values() if idx in t]
            if found:
                raw[idx] = found[0]
    columns = {}
    for idx in indices:
        col = {"Name": idx}
        col["Image"] = graphic(raw[idx], f"{idx}_image")
        if selection is not None:
            item = next(it for it in selection.items if it.index == idx)
            mpath = selection.mask_path(item)
            col["Mask"] = graphic(_read_png(mpath) if mpath.exists() else Missing(f"mask file {mpath}"), f"{idx}_mask")
        else:
            col["Mask"] = str(Missing("mask (config.json names no readable selection)"))
        initial_cam, initial_probs = None, None
        for m in run.methods:
            if initial_cam is None and idx in cam_tiles.get(m.label, {}):
                initial_cam = cam_tiles[m.label][idx][1]
            if initial_probs is None and idx in m.selected_probabilities:
                initial_probs = m.selected_probabilities[idx].before
        col["Initial CAM"] = graphic(initial_cam if initial_cam is not None else Missing(f"initial CAM image of {idx}"),
                                     f"{idx}_initial_cam")
        col["Initial probs"] = _fmt_probs(initial_probs) or str(Missing(f"summary.json selected_probabilities.{idx}.before"))
        for m in run.methods:
            if idx in cam_tiles.get(m.label, {}):
                final = cam_tiles[m.label][idx][2]
            else:
                final = Missing(f"final CAM image of {idx} for {m.label}")
            col[f"{m.label} CAM"] = graphic(final, f"{m.label}_{idx}_final_cam")
            after = m.selected_probabilities[idx].after if idx in m.selected_probabilities else None
            col[f"{m.label} probs"] = _fmt_probs(after) or str(
                Missing(f"summary.json methods.{m.label}.selected_probabilities.{idx}.after"))
        columns[idx] = col
    order = ["Name", "Image", "Mask", "Initial CAM", "Initial probs"]
    for m in run.methods:
        order += [f"{m.label} CAM", f"{m.label} probs"]
    frame = pd.DataFrame({k: [columns[k][r] for r in order] for k in indices}, index=pd.Index(order))
    graphic_rows = [r for r in order if r in ("Image", "Mask", "Initial CAM") or r.endswith(" CAM")]
    raw_rows = [r for r in graphic_rows if any(str(v).startswith("\\includegraphics") for v in frame.loc[r])]
    md = frame.copy()
    for r in raw_rows:  # cell by cell: a row assignment fails on a one-column frame
        for c in md.columns:
            md.at[r, c] = re.sub(r"\\includegraphics\[[^]]*\]\{([^}]*)\}", r"![](\1)", str(frame.at[r, c]))
    table = Table("visualisation", f"Selected images of {run.name}: initial and final CAMs and probabilities",
                  frame, to_latex(frame, raw_rows=raw_rows, hide_header=True), to_markdown(md, [""]), wide=True,
                  images=images)
    return table


# ----- everything --------------------------------------------------------------------
