"""Opens the mask tool's window on a train result (the part of ``select_tool.main`` that needs
TensorFlow and Tk); ``select_tool.main`` parses the command line and checks the display first."""
from __future__ import annotations

import logging
import time
from pathlib import Path

import tkinter as tk

from classification_models.train_result import load_train_result
from common.cli import stop_signals_call
from common.errors import UserError
from select_tool.export.autosave import default_session_dir
from select_tool.model.cam_cache import CamCache
from select_tool.model.loader import open_result
from select_tool.model.rounds import RoundBook
from select_tool.state import SelectionState
from select_tool.view.app import App

log = logging.getLogger("select_tool.main")


def _classifier_of_round(book, fallback, problems: list[str]):
    """The classifier of the work folder's current round; on a missing or changed model file,
    the round-0 classifier ``fallback`` (and the reason in ``problems``)."""
    if book.current.number == 0:
        return fallback
    try:
        return load_train_result(book.result_path()).load_classifier()
    except UserError as exc:
        problems.append(f"round {book.current.number} not loaded, showing round 0: {exc}")
        book.restore(0)
        return fallback


def run(args, *, no_display_hint: str) -> int:
    """The window on ``args.result`` until it is closed (``select_tool.main``'s arguments)."""
    result_path = Path(args.result)
    result = load_train_result(result_path)  # fail fast on a bad file, before TF loads
    if not result.model_path.exists():
        raise UserError(f"train result '{result_path}': model file '{result.model_path}' does not exist")
    try:
        root = tk.Tk()
    except tk.TclError as exc:
        raise UserError(f"cannot open a window ({exc}); {no_display_hint}") from exc
    root.withdraw()
    try:
        t0 = time.perf_counter()
        opened = open_result(result_path, split=args.split, data_root=args.data_root)
        split = opened.split
        session = Path(args.session) if args.session else default_session_dir(result_path)
        state = SelectionState(indices=split.indices, labels=split.labels, class_names=opened.class_names,
                               image_hw=split.images.shape[1:3], session_dir=session, train_result=result_path)
        book = RoundBook(session, result_path)
        classifier = _classifier_of_round(book, opened.classifier, state.load_problems)
        cache = CamCache(classifier, split.images)
        out_dir = Path(args.out) if args.out else result_path.parent / "selection"
        state.set_export_dir(out_dir)
        if args.filter:
            state.start_filter(args.filter)
        app = App(root, state=state, cache=cache, dataset=opened.dataset,
                  title=f"select_tool — {opened.name}" + (f" · round {book.current.number}" if book.current.number else ""),
                  zoom=args.zoom, out_dir=out_dir, heldout_fraction=args.heldout_fraction, seed=args.seed,
                  export_on_exit=args.export_on_exit, debug_events=args.debug_events, split=split, rounds=book,
                  open_cache=lambda clf: CamCache(clf, split.images), retrain_iterations=args.retrain_iterations,
                  split_name=args.split)
        log.info("select_tool: %d %s images, session '%s', round %d, opened in %.1f s", len(split), args.split,
                 session, book.current.number, time.perf_counter() - t0)
    except BaseException:
        root.destroy()
        raise
    root.deiconify()
    root.lift()
    root.focus_force()
    # Ctrl-C / SIGTERM close the window from inside the loop, the painting saved first
    with stop_signals_call(lambda what, code: root.after_idle(app.exit.on_signal, what, code)):
        root.mainloop()
    if app.exit.signalled is not None:
        raise app.exit.signalled
    app.report_exit()
    return 0

