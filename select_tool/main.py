"""The mask-selection window (thesis §3.2.3, Fig 3.2).

    python -m select_tool.main results/symbols/train_result.json
    xvfb-run -a python -m select_tool.main RESULT.json        # on a machine without a screen

Browse the training images (filters: all, misclassified, suggested, masked, by true
or predicted class, from a text file of indices), look at the plain image and the
CAM of a class side by side (default: the predicted class of a misclassified image,
else the true class), and paint the regions that are *irrelevant*. Work is
autosaved after every stroke to ``<result stem>.select_session/`` next to the result
and resumed on reopening; Ctrl+S exports the selection (``selection.json`` +
``masks/*.png``) for ``python -m exp_scripts.exp_backprops``. On exit the path of the
exported ``selection.json`` is printed as the last line.

Ctrl+R retrains on the exported masks in the background (the default experiment's
recommended method, run as ``python -m exp_scripts.exp_backprops`` with a config file
written into the session folder), shows what changed, and Accept makes the retrained
model the tool's current one (a new ``result.json``, round 1, 2, …); "Rounds" lists
them and restores any.

Keys: ``select_tool.view.keys`` (press ? in the window). The window only forwards events
to ``select_tool.state.SelectionState``; the window is ``select_tool.view.app``.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from common.cli import quiet_tf_logs, run_main, seed_arg
from common.errors import UserError
from common.logs import parse_command_line

log = logging.getLogger(__name__)

NO_DISPLAY_HINT = (
    "run it under a virtual X server: `xvfb-run -a python -m select_tool.main RESULT.json`, "
    "or make masks without a GUI with `python -m select_tool.auto`"
)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m select_tool.main", description=__doc__.split("\n\n")[0])
    p.add_argument("result", help="train result JSON written by exp_scripts.do_interactive_exp")
    p.add_argument("--split", default="train", help="split to list (default: train)")
    p.add_argument("--data-root", default=None, help="data root (default: the result's, $VF_DATA_ROOT, ./data)")
    p.add_argument("--session", default=None, help="autosave folder (default: <result stem>.select_session next to the result)")
    p.add_argument("--out", default=None, help="export folder (default: <result folder>/selection)")
    p.add_argument("--heldout-fraction", type=float, default=0.0,
                   help="share of masked images exported to heldout_selection.json instead (default 0)")
    p.add_argument("--seed", type=seed_arg, default=0, help="seed of the held-out draw")
    p.add_argument("--export-on-exit", action="store_true", help="export when the window is closed")
    p.add_argument("--zoom", type=float, default=None,
                   help="initial zoom, e.g. 2 or 0.5 (default: fit the window; wheel, +/- and F change it)")
    p.add_argument("--retrain-iterations", type=int, default=None,
                   help="iterations of the tool's retraining (default: the default experiment's)")
    p.add_argument("--filter", default=None, choices=("all", "misclassified", "suggested", "masked", "still_wrong"),
                   help="list to start on (default: the last session's; 'suggested' when the model has errors)")
    p.add_argument("--debug-events", action="store_true",
                   help="print JSON lines (ready + geometry, saves, exports) on stdout, for tests")
    args = parse_command_line(p, argv)
    if args.zoom is not None and not 0.05 <= args.zoom <= 64:
        raise UserError(f"--zoom must be in 0.05..64, got {args.zoom}")
    if args.retrain_iterations is not None and args.retrain_iterations < 1:
        raise UserError(f"--retrain-iterations must be >= 1, got {args.retrain_iterations}")
    if not 0.0 <= args.heldout_fraction < 1.0:
        raise UserError(f"--heldout-fraction must be in [0, 1), got {args.heldout_fraction}")
    return args


def check_display() -> None:
    """A UserError with the Xvfb hint when there is no X display to open a window on."""
    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        raise UserError(f"no display available (DISPLAY is not set); {NO_DISPLAY_HINT}")


def main(argv=None) -> int:
    args = parse_args(argv)
    quiet_tf_logs()
    check_display()
    # deferred: TensorFlow prints notices when imported; a missing display is said before them
    from select_tool.launch import run

    return run(args, no_display_hint=NO_DISPLAY_HINT)

if __name__ == "__main__":
    sys.exit(run_main(main))
