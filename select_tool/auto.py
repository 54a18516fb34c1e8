"""Build a selection without the GUI: pick N training images and mask them automatically.

    python -m select_tool.auto results/symbols/train_result.json --n 5 \\
        --mask-from ground_truth --heldout 20 --seed 0 --out results/symbols/auto_sel

    python -m select_tool.auto RESULT.json --n 10 --pick by_class --class 2 --mask-from cam \\
        --cam-class true --cam-threshold 0.5 --out sel_cam
    python -m select_tool.auto RESULT.json --n 10 --pick random --mask-from filter --filter 39 \\
        --percentile 70 --out sel_f39

    python -m select_tool.auto RESULT.json --propagate my_sel/selection.json \
        --out RESULT_STEM.select_session/suggested_masks

Writes ``OUT/selection.json`` + ``OUT/masks/*.png`` (and ``OUT/heldout_selection.json``
with ``--heldout N``: images disjoint from the selection). Prints notes (skipped images)
and the selection path last. Logic: ``retraining.auto_select``.

``--propagate SELECTION`` instead extends an expert's selection to the other training
images (the cells whose last-conv activations look, to the model, like the masked
ones; ``retraining.propagate.propagate_selection``) and writes them as a selection
whose items say ``propagated``; written into the mask tool's session folder as
``suggested_masks`` they show as suggestions to accept (Y) or fix.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from classification_models.train_result import load_train_result
from common.cli import quiet_tf_logs, run_main, seed_arg
from common.errors import UserError
from common.images import read_mask
from common.logs import parse_command_line
from datasets.selection import load_selection
from retraining.config import PropagationSpec
from retraining.data import MaskedSet, RetrainData, masked_set_from_items
from retraining.auto_select import DEFAULT_PICK, HELDOUT_FILE, MASK_SOURCES, PICKS, auto_select
from retraining.outputs import write_propagated


def main(argv=None) -> int:
    quiet_tf_logs()
    ap = argparse.ArgumentParser(prog="python -m select_tool.auto", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("result", help="train result JSON")
    ap.add_argument("--n", type=int, default=5, help="images in the selection (default 5)")
    ap.add_argument("--pick", choices=PICKS, default=DEFAULT_PICK,
                    help=f"which images (default {DEFAULT_PICK}: misclassified first, then the least sure, "
                         f"taken in turns from each class)")
    ap.add_argument("--class", dest="class_id", type=int, help="class id for --pick by_class")
    ap.add_argument("--mask-from", choices=MASK_SOURCES, default="ground_truth")
    ap.add_argument("--cam-class", default="true", help="true | pred | INT (class whose CAM makes the mask)")
    ap.add_argument("--cam-threshold", type=float, default=0.5, help="on the CAM normalised by its maximum")
    ap.add_argument("--filter", dest="filter_index", type=int, help="last-conv filter for --mask-from filter")
    ap.add_argument("--percentile", type=float, default=70.0, help="for --mask-from filter (default 70)")
    ap.add_argument("--heldout", type=int, default=0, help="also write a disjoint held-out selection of N images")
    ap.add_argument("--split", default="train")
    ap.add_argument("--heldout-split", default=None,
                    help="take the held-out images from this split (e.g. test: never trained on); default: --split")
    ap.add_argument("--seed", type=seed_arg, default=0)
    ap.add_argument("--data-root", help="data root (default: the train result's, $VF_DATA_ROOT or ./data)")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--propagate", default=None, metavar="SELECTION",
                    help="propagate this selection's masks to the other training images instead of picking")
    ap.add_argument("--threshold", type=float, default=0.8, help="for --propagate: cell probability (default 0.8), "
                    "lowered until --min-recall of the expert's masked cells are marked")
    ap.add_argument("--min-recall", type=float, default=0.85,
                    help="for --propagate: share of the expert's masked cells the threshold must mark, each "
                         "scored by a cell model fit on the other masked images (default 0.85; 0: keep it)")
    args = parse_command_line(ap, argv)
    if args.propagate:
        path = propagate(args.result, args.propagate, out_dir=args.out, threshold=args.threshold,
                         min_recall=args.min_recall, data_root=args.data_root)
        print(path)
        return 0
    path = auto_select(
        args.result, n=args.n, out_dir=args.out, pick=args.pick, mask_from=args.mask_from, class_id=args.class_id,
        cam_class=args.cam_class, cam_threshold=args.cam_threshold, filter_index=args.filter_index,
        percentile=args.percentile, heldout=args.heldout, seed=args.seed, split=args.split,
        heldout_split=args.heldout_split,
        data_root=args.data_root,
    )
    sel = load_selection(path)
    print(f"{len(sel.items)} image(s) selected: {', '.join(sel.indices)}")
    if args.heldout:
        held = load_selection(path.parent / HELDOUT_FILE)
        print(f"{len(held.items)} held-out image(s): {path.parent / HELDOUT_FILE}")
    print(path)
    return 0


def propagate(result, selection, *, out_dir, threshold: float = 0.8, min_recall: float = 0.85, data_root=None):
    """Writes the propagated masks of ``selection`` (on ``result``'s model) as a selection."""
    if not 0.0 <= threshold <= 1.0:
        raise UserError(f"--threshold must be in [0, 1], got {threshold}")
    if not 0.0 <= min_recall <= 1.0:
        raise UserError(f"--min-recall must be in [0, 1], got {min_recall}")
    tr = load_train_result(result)
    clf, dataset = tr.load_model_and_data(data_root)
    sel = load_selection(selection, check_masks=False)
    sel.check_provenance(tr.dataset_spec, f"train result '{tr.path}'")
    if not sel.items:
        raise UserError(f"--propagate: selection '{selection}' has no masked image to propagate from")
    masks = [read_mask(sel.mask_path(it), expected_hw=dataset.image_shape[:2],
                       what=f"selection '{selection}': mask for index '{it.index}'") for it in sel.items]
    selected = masked_set_from_items(dataset, sel.items, masks, where=f"selection '{selection}'")
    data = RetrainData(dataset, selected, MaskedSet.empty(dataset.image_shape), clf.grid_shape,
                       {"mode": "area", "threshold": 0.25}, propagation=PropagationSpec(threshold=threshold, min_recall=min_recall))
    prop = data.propagated(clf)
    path = write_propagated(Path(out_dir), data, train_result=str(Path(result).resolve()))
    quality = prop.quality
    extra = (f"; precision {quality['precision']:.2f}, recall {quality['recall']:.2f} against the ground-truth masks"
             if quality and quality.get("precision") is not None else "")
    print(f"{prop.n_marked} training image(s) got a propagated mask{extra}")
    return path


if __name__ == "__main__":
    sys.exit(run_main(main))
