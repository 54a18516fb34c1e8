"""Retrain, see what changed, accept or reject, go again: the feedback rounds in the window.

``RoundsController`` runs a ``select_tool.model.retrain.RetrainJob`` in the
background (the window stays responsive; progress in the bottom bar), shows the
finished run in a ``ResultsWindow``, and on Accept makes the run's model current
through the ``select_tool.model.rounds.RoundBook`` and reloads the CAMs from it. A
failed run shows its one-line error and changes nothing; Cancel leaves no run folder.
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

from classification_models.train_result import load_train_result
from common.errors import UserError
from select_tool.model.retrain import METHOD_LABEL, RetrainJob, retrain_config
from select_tool.state.suggestions import SUGGESTED_DIR
from select_tool.view.results_view import ResultsWindow, RoundsWindow, run_report

log = logging.getLogger(__name__)
POLL_MS = 400


class RoundsController:
    """The Retrain / Cancel / Rounds actions of ``app`` (an ``App``: its state, export folder,
    flash/emit, widgets ``retrain_var``/``retrain_button``/``cancel_button`` and ``restart_cams``).

    Args:
        book: the ``RoundBook`` of the work folder.
        open_cache: ``classifier -> CamCache`` over the listed images.
        iterations: overrides the retraining's iterations (tests), None for the default.
    """

    def __init__(self, *, app, book, open_cache, iterations: int | None = None):
        self.app, self.book, self.open_cache = app, book, open_cache
        self.iterations = iterations
        self.job: RetrainJob | None = None
        self.results: ResultsWindow | None = None
        self.rounds_window: RoundsWindow | None = None
        self._finished_run: Path | None = None
        self._masks = 0
        self._poll_id = None
        self._offer_parent()

    @property
    def round_no(self) -> int:
        return 0 if self.book is None else self.book.current.number

    def actions(self) -> dict:
        return {"retrain": self.retrain, "cancel_retrain": self.cancel, "rounds": self.show_rounds}

    # ----- retrain -------------------------------------------------------------------
    def retrain(self) -> None:
        """Exports the masks and starts the retraining (refused while one runs)."""
        app, s = self.app, self.app.state
        if self.book is None:
            raise UserError("retraining needs a train result: start the tool with python -m select_tool.main RESULT.json")
        if self.job is not None and self.job.running:
            raise UserError(f"a retraining is already running ({self.job.poll().text()}); Cancel stops it")
        if self.results is not None:
            raise UserError("accept or reject the finished retraining first")
        if not s.book.masked(s.indices):
            raise UserError("nothing to retrain on: no image has a mask yet")
        if not app.exit.export():
            raise UserError("the retraining needs the exported masks, and the export failed")
        out = app.out_dir
        runs = s.session_dir / "runs"
        k = 1
        while (runs / f"run_{k:03d}").exists() or (s.session_dir / "retrain" / f"run_{k:03d}.json").exists():
            k += 1
        held = out / "heldout_selection.json"
        self._masks = s.n_exported
        cfg = retrain_config(name=f"run_{k:03d}", selection=out / "selection.json",
                             heldout=held if held.exists() else None, output_dir=runs, n_masked=self._masks,
                             n_train=len(s.indices) if app.split_name == "train" else None,
                             iterations=self.iterations)
        self.job = RetrainJob(s.session_dir, cfg)
        self.job.start()
        log.info("retraining started: %s (repeat with: python -m exp_scripts.exp_backprops %s)",
                 self.job.run_dir, self.job.config_path)
        app.emit("retrain_started", config=str(self.job.config_path), run=str(self.job.run_dir),
                 pid=self.job.proc.pid, iterations=cfg["iterations"])
        self._buttons(running=True)
        self._schedule_poll()

    def _schedule_poll(self) -> None:
        """One poll chain at a time: a run cancelled and restarted within ``POLL_MS`` must not be
        polled twice (it would open its results window twice)."""
        if self._poll_id is not None:
            self.app.root.after_cancel(self._poll_id)
        self._poll_id = self.app.root.after(POLL_MS, self._poll)

    def _buttons(self, running: bool) -> None:
        self.app.retrain_button.configure(state="disabled" if running else "normal")
        self.app.cancel_button.configure(state="normal" if running else "disabled")

    def _poll(self) -> None:
        self._poll_id = None
        job, app = self.job, self.app
        if job is None:
            return
        p = job.poll()
        app.retrain_var.set(p.text())
        if p.stage in ("preparing", "training"):
            if app.debug_events:
                app.emit("retrain_progress", stage=p.stage, iteration=p.iteration, total=p.total)
            self._schedule_poll()
            return
        self._buttons(running=False)
        if p.stage == "finished":
            self._finished_run = job.run_dir
            self.show_results()
        elif p.stage == "failed":
            app.flash(f"retraining failed; the current model is unchanged: {p.message}", error=True)
            app.emit("retrain_failed", message=p.message)
            self.job = None

    def cancel(self) -> None:
        job = self.job
        if job is None or not job.running:
            raise UserError("no retraining is running")
        job.cancel()
        self.job = None
        if self._poll_id is not None:
            self.app.root.after_cancel(self._poll_id)
            self._poll_id = None
        self._buttons(running=False)
        self.app.retrain_var.set("retraining cancelled")
        self.app.emit("retrain_cancelled", run=str(job.run_dir), run_exists=job.run_dir.exists(),
                      leftovers=[p.name for p in job.run_dir.parent.glob(f"*{job.name}*")])

    def quit_question(self) -> str | None:
        if self.job is not None and self.job.running:
            return f"A retraining is running ({self.job.poll().text()}); quitting cancels it."
        return None

    def stop(self) -> None:
        if self.job is not None and self.job.running:
            self.job.cancel()

    # ----- results, accept / reject ----------------------------------------------------------
    def show_results(self) -> None:
        app = self.app
        if self.results is not None:  # already shown
            return
        try:
            report = run_report(self._finished_run, METHOD_LABEL, app.names)
        except UserError as exc:
            app.flash(f"the finished run cannot be read: {exc}", error=True)
            return
        run, base = self._finished_run, self.book.result_path()
        self.results = ResultsWindow(app.root, report, title=f"select_tool — retraining {run.name}",
                                     on_accept=lambda: app.act("accept_round"),
                                     on_reject=lambda: app.act("reject_round"),
                                     on_switch=lambda: app.act("switch_model"))
        app.compare.offer(current=f"base model (round {self.round_no})", other=f"new model ({run.name})",
                          load=lambda: load_train_result(base).load_classifier(run / METHOD_LABEL / "model.keras"))
        app.action_fns.update({"accept_round": self.accept, "reject_round": self.reject})
        app.flash(report.verdict)
        app.emit("retrain_finished", run=str(self._finished_run), verdict=report.verdict, details=report.details,
                 tiles=[t["index"] for t in report.tiles], buttons=self.results.geometry())

    def _close_results(self) -> None:
        if self.results is not None:
            self.results.destroy()
            self.results = None
            self.app.root.focus_force()

    def accept(self) -> int:
        """Makes the run's model current (a new round) and reloads the CAMs from it."""
        run = self._finished_run
        if run is None or self.results is None:
            raise UserError("no finished retraining to accept")
        before = (self.round_no, self.app.cache)
        rnd = self.book.accept(run, method=METHOD_LABEL, masks=self._masks)
        self._close_results()
        self.job, self._finished_run = None, None
        self._suggest_from(run)
        self._load(rnd.number)
        self._offer_previous(*before, current=f"new model (round {rnd.number})", other="base model")
        self.app.emit("accepted", round=rnd.number, result=str(self.book.result_path()))
        return rnd.number

    def reject(self) -> None:
        run = self._finished_run
        self._close_results()
        self.app.compare.clear()
        self.job, self._finished_run = None, None
        self.app.flash(f"retraining {run.name if run else ''} rejected: the model of round {self.round_no} stays")
        self.app.emit("rejected", round=self.round_no)

    def _suggest_from(self, run: Path) -> None:
        """The run's propagated masks become the session's suggestions (Y accepts one)."""
        src = run / "propagated"
        if not (src / "selection.json").exists():
            return
        dst = self.app.state.session_dir / SUGGESTED_DIR
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(src, dst)
        self.app.state.reload_suggestions()

    def _load(self, number: int, classifier=None) -> None:
        """Shows round ``number``'s model (loaded here unless given) and recomputes the CAMs."""
        path = self.book.result_path(next(r for r in self.book.rounds if r.number == number))
        if classifier is None:
            classifier = load_train_result(path).load_classifier()
        self.app.restart_cams(self.open_cache(classifier))
        self.app.retrain_var.set(f"round {number}: {path.parent.name}/{path.name}")
        self.app.flash(f"round {number} is current: CAMs and predictions are recomputed for its model")

    def _offer_previous(self, number: int, cache, *, current: str, other: str) -> None:
        """The base / new switch between the model now current and round ``number``'s (``cache``)."""
        self.app.compare.offer(current=current, other=f"{other} (round {number})",
                               cache=cache if cache.ready else None, load=lambda: cache.classifier)

    def _offer_parent(self) -> None:
        """On a retrained round, the base / new switch compares it with the model it was retrained from."""
        if self.book is None or self.round_no == 0:
            return
        try:
            parent = self.book.parent_result()
        except UserError as exc:
            log.warning("no base model to compare round %d with: %s", self.round_no, exc)
            return
        if parent is None or not parent.exists():
            return
        number = next((r.number for r in self.book.rounds if self.book.result_path(r).resolve() == parent.resolve()),
                      None)
        self.app.compare.offer(current=f"new model (round {self.round_no})",
                               other=f"base model ({'round %d' % number if number is not None else parent.name})",
                               load=lambda: load_train_result(parent).load_classifier())

    # ----- round history -----------------------------------------------------------------------
    def show_rounds(self) -> None:
        if self.book is None:
            raise UserError("no rounds: the tool was not started on a train result")
        if self.rounds_window is not None:
            self._close_rounds()
        self.rounds_window = RoundsWindow(self.app.root, self.book.rounds, self.round_no,
                                          on_restore=self.restore, on_close=self._close_rounds)
        self.app.emit("rounds", rounds=[r.number for r in self.book.rounds], current=self.round_no)

    def _close_rounds(self) -> None:
        if self.rounds_window is not None:
            self.rounds_window.destroy()
            self.rounds_window = None

    def restore(self, number: int) -> None:
        """Makes an earlier (or later) round current; its model file must match its checksum."""
        try:
            rnd = next((r for r in self.book.rounds if r.number == number), None)
            if rnd is None:
                raise UserError(f"no round {number}")
            classifier = load_train_result(self.book.result_path(rnd)).load_classifier()
            before = (self.round_no, self.app.cache)
            self.book.restore(number)
            self._load(number, classifier)
            self._offer_previous(*before, current=f"model of round {number}", other="model")
        except UserError as exc:
            self.app.flash(str(exc), error=True)
            return
        self._close_rounds()
        self.app.emit("restored", round=number)
