"""Top filters inside each selected mask, marked relevant/irrelevant (thesis §7.1.3, Table 7.2).

Run::

    python -m vis_exp.mask_filters results/train_symbols/result.json selection.json \
        --ranking results/analysis/ranking/ranking.json --out results/analysis/mask_filters

For every selected image, each last-conv map is upsampled (bilinear, as the CAMs)
and averaged over the mask's irrelevant pixels; the 10 highest filters are listed,
each marked R (relevant: within the ranking's cut) or I (irrelevant). Writes
``mask_filters.json``, ``.md`` and ``.tex``; the share of irrelevant filters answers
"does the CAM point at irrelevant features?".
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

import numpy as np
import pandas as pd

from classification_models.cam import upsample_bilinear
from common.cli import quiet_tf_logs, run_main
from common.errors import UserError
from common.io import atomic_write_json, atomic_write_text, read_json
from common.logs import parse_command_line
from datasets.selection import load_selection
from plot_utils.table_format import to_latex, to_markdown
from vis_exp.gap_features import gap_features, load_model_and_data, out_dir


def top_filters_in_mask(*, activations_up: np.ndarray, mask: np.ndarray, top: int = 10) -> list[tuple[int, float]]:
    """``[(filter, mean activation inside the mask)]``, highest first.

    Args:
        activations_up: ``[H, W, K]`` last-conv maps upsampled to the image size.
        mask: ``[H, W]`` uint8/bool, nonzero = selected (irrelevant) region.

    Raises:
        UserError: the mask selects no pixel.
    """
    sel = np.asarray(mask) > 0
    if sel.shape != activations_up.shape[:2]:
        raise UserError(f"mask is {sel.shape[0]}×{sel.shape[1]} but the maps are {activations_up.shape[0]}×{activations_up.shape[1]}")
    if not sel.any():
        raise UserError("mask selects no pixel")
    means = activations_up[sel].mean(axis=0)
    order = np.lexsort((np.arange(len(means)), -means))[:top]
    return [(int(f), float(means[f])) for f in order]


def relevant_filters(ranking, source: str) -> set[int]:
    """The ranking's relevant filters (``ranking.json`` ``relevant``).

    Raises:
        UserError: the ranking has no ``relevant`` list.
    """
    if not isinstance(ranking, dict) or not isinstance(ranking.get("relevant"), list):
        raise UserError(f"ranking '{source}' has no 'relevant' list (run vis_exp.feature_ranking)")
    return set(int(f) for f in ranking["relevant"])


def write_mask_filters(train_result, clf, dataset, *, selection, ranking: dict, out, top: int = 10,
                       ranking_source: str = "ranking") -> dict:
    """Top filters inside each selected mask (``mask_filters.json/.md/.tex`` in ``out``).

    Args:
        train_result: the base model's ``TrainResult`` (the selection's provenance is checked against it).
        selection: path of the selection JSON.
        ranking: ``vis_exp.feature_ranking`` result (its ``relevant`` list marks R/I).

    Returns:
        The ``mask_filters.json`` payload (``items``, ``irrelevant_share``) and ``markdown``.
    """

    relevant = relevant_filters(ranking, ranking_source)
    sel = load_selection(selection, dataset=dataset)
    sel.check_provenance(train_result.dataset_spec, f"train result '{train_result.path}'")
    if not sel.items:
        raise UserError(f"selection '{selection}' is empty")
    images, _ = dataset.get_many(sel.indices)
    masks = sel.load_masks(dataset.image_shape)
    _, _, acts = gap_features(clf, images, return_activations=True)
    up = np.asarray(upsample_bilinear(maps=acts, size=images.shape[1:3]))
    rows, payload = [], []
    for i, item in enumerate(sel.items):
        best = top_filters_in_mask(activations_up=up[i], mask=masks[i], top=top)
        marks = ["R" if f in relevant else "I" for f, _ in best]
        payload.append({"index": item.index, "top": [{"filter": f, "mean_in_mask": v, "relevant": m == "R"}
                                                     for (f, v), m in zip(best, marks)],
                        "irrelevant_share": float(np.mean([m == "I" for m in marks]))})
        rows.append([f"{f} ({m}) {v:.2f}" for (f, v), m in zip(best, marks)] + [f"{payload[-1]['irrelevant_share']:.2f}"])
    cols = [f"#{k + 1}" for k in range(len(rows[0]) - 1)] + ["irrelevant share"]
    frame = pd.DataFrame(rows, index=pd.Index(sel.indices, name="Image"), columns=cols)
    out = out_dir(out)
    overall = float(np.mean([p["irrelevant_share"] for p in payload]))
    result = {"items": payload, "irrelevant_share": overall, "ranking": str(ranking_source), "top": top}
    atomic_write_json(out / "mask_filters.json", result)
    markdown = to_markdown(frame)
    atomic_write_text(out / "mask_filters.md", markdown)
    atomic_write_text(out / "mask_filters.tex", to_latex(frame))
    return {**result, "markdown": markdown}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vis_exp.mask_filters", description=__doc__.split("\n\n")[0])
    parser.add_argument("result", help="train result JSON")
    parser.add_argument("selection", help="selection JSON (masks)")
    parser.add_argument("--ranking", required=True, help="ranking.json from vis_exp.feature_ranking")
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--out", required=True)
    args = parse_command_line(parser, argv)
    quiet_tf_logs()
    ranking = read_json(args.ranking, what="ranking")
    relevant_filters(ranking, args.ranking)  # a bad ranking fails before the model is loaded
    tr, clf, ds = load_model_and_data(args.result, args.data_root)
    result = write_mask_filters(tr, clf, ds, selection=args.selection, ranking=ranking, out=args.out, top=args.top,
                                ranking_source=args.ranking)
    print(f"share of irrelevant filters among the top {args.top} inside the masks: {result['irrelevant_share']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
