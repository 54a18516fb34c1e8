"""A retraining started from the mask tool: the same run as ``python -m exp_scripts.exp_backprops``.

``retrain_config`` builds the recommended default retraining (the default experiment's
settings with its recommended method, ``swap``) for the tool's exported selection;
``RetrainJob`` writes it as a config file into the work folder (so that the run can be
repeated from the command line with the printed command) and runs that very command
in a background process, reading its progress from the run's ``history.jsonl``.

The run folder is written as one transaction (``common.runs``): until the run
finishes it lives in a hidden ``.<name>.partial-<pid>`` folder, so a cancelled or
failed run never leaves a ``<name>`` folder. A failed run keeps its attempt as
``<name>.failed`` for inspection; ``cancel`` stops the run (SIGTERM, which the run
handles like Ctrl-C) and removes what the attempt left and its lock.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from common.cli import PARENT_ENV
from common.io import atomic_write_json, ensure_dir
from common.runs import lock_path
from retraining import suite_configs

#: the method the tool retrains with: the default experiment's recommended default
METHOD_LABEL = "swap"
COMMAND = "exp_scripts.exp_backprops"
#: the run's niceness above the tool's: the window keeps its switching and painting latency
#: while the run uses every core
NICE = 5


def retrain_config(*, name: str, selection: Path, heldout: Path | None, output_dir: Path, n_masked: int,
                   n_train: int | None = None, iterations: int | None = None, data_root: str | None = None) -> dict:
    """The retraining config (``retraining.config.RetrainConfig`` as JSON) of one round.

    Args:
        name: the run's folder name; ``output_dir``: where the run folder goes.
        selection / heldout: the exported selection and held-out selection (or None).
        n_masked: masked images in the selection (fewer than the batch's selected slots:
            drawn with replacement, as the default experiment does).
        n_train: training images; a smaller training split than the batch's random slots
            gets batches of the whole split (the retraining refuses repeating images).
        iterations: overrides the default experiment's iterations (small tests).
    """
    exp = suite_configs.default_experiment(smoke=False)
    methods = [dict(m) for m in suite_configs.suite_method_dicts() if suite_configs.method_label(m) == METHOD_LABEL]
    retrain = dict(exp.retrain)
    batch = dict(retrain.pop("batch"))
    if n_train is not None:
        batch["random"] = max(1, min(int(batch["random"]), int(n_train)))
    if iterations is not None:
        retrain["iterations"] = int(iterations)
        retrain["eval_every"] = min(int(retrain.get("eval_every", iterations)), int(iterations))
    raw = {"name": name, "selection": str(Path(selection).resolve()),
           "heldout_selection": str(Path(heldout).resolve()) if heldout else None,
           "methods": methods, **retrain,
           "batch": {**batch, "with_replacement": n_masked < batch["selected"]},
           "output_dir": str(Path(output_dir).resolve())}
    if data_root:
        raw["data_root"] = str(data_root)
    return raw


@dataclasses.dataclass(frozen=True)
class Progress:
    """What the tool shows of a run: ``stage`` is ``preparing``, ``training``, ``finished``,
    ``failed`` or ``cancelled``; ``message`` the one-line error of a failed run."""

    stage: str
    iteration: int = 0
    total: int = 0
    val_swap: float | None = None
    seconds_left: float | None = None
    message: str = ""

    def text(self) -> str:
        if self.stage == "preparing":
            return "retraining: preparing (loading the model, scoring the base)…"
        if self.stage == "training":
            vs = "" if self.val_swap is None else f" · val-swap acc {self.val_swap:.3f}"
            left = "" if self.seconds_left is None else f" · about {self.seconds_left:.0f} s left"
            return f"retraining: iteration {self.iteration}/{self.total}{vs}{left}"
        if self.stage == "failed":
            return f"retraining failed: {self.message}"
        return f"retraining {self.stage}"


class RetrainJob:
    """One background retraining into ``work_dir/runs/<name>``.

    Args:
        work_dir: the tool's work folder (configs in ``retrain/``, runs in ``runs/``).
        config: the config (``retrain_config``) with ``name`` and ``output_dir`` set.
    """

    def __init__(self, work_dir: Path, config: dict):
        self.work_dir = Path(work_dir)
        self.config = config
        self.name = config["name"]
        self.run_dir = Path(config["output_dir"]) / self.name
        self.config_path = ensure_dir(self.work_dir / "retrain") / f"{self.name}.json"
        self.log_path = self.work_dir / "retrain" / f"{self.name}.log"
        self.proc: subprocess.Popen | None = None
        self.started = 0.0
        self._train_started: float | None = None
        self._cancelled = False
        self._rows: list[dict] = []
        self._read = 0  # bytes of history.jsonl read so far

    @property
    def command(self) -> list[str]:
        return [sys.executable, "-m", COMMAND, str(self.config_path), "-q"]

    @property
    def summary_path(self) -> Path:
        return self.run_dir / "summary.json"

    def start(self) -> None:
        """Writes the config file and starts the run (its own process group, output in the log,
        ``NICE`` steps below the tool's priority)."""
        atomic_write_json(self.config_path, self.config)
        root = Path(__file__).resolve().parents[2]
        with open(self.log_path, "w", encoding="utf-8") as log:
            self.proc = subprocess.Popen(self.command, cwd=root, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True,
                                         env=dict(os.environ, PYTHONUNBUFFERED="1", **{PARENT_ENV: str(os.getpid())}))
        # lowered before the run starts its threads (they inherit it); not in preexec_fn, which
        # is unsafe while the tool's CAM thread runs
        try:
            os.setpriority(os.PRIO_PROCESS, self.proc.pid, os.getpriority(os.PRIO_PROCESS, 0) + NICE)
        except (ProcessLookupError, PermissionError):
            pass  # gone already (its failure is reported by poll) or not allowed: it runs at the tool's priority
        self.started = time.perf_counter()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _history(self) -> list[dict]:
        """``{iteration, val_swap_accuracy}`` of every complete line of the run's ``history.jsonl``;
        only the lines added since the last call are read (the tool polls while the run goes on)."""
        if self.proc is None:
            return []
        partial = self.run_dir.parent / f".{self.name}.partial-{self.proc.pid}"
        path = partial / METHOD_LABEL / "history.jsonl"
        if not path.exists():
            path = self.run_dir / METHOD_LABEL / "history.jsonl"  # renamed into place as it ends
        try:
            with open(path, "rb") as fh:
                fh.seek(self._read)
                chunk = fh.read()
        except OSError:
            return self._rows
        complete = chunk[:chunk.rfind(b"\n") + 1]  # a line being written is read next time
        self._read += len(complete)
        for line in complete.splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            self._rows.append({k: row.get(k) for k in ("iteration", "val_swap_accuracy")})
        return self._rows

    def poll(self) -> Progress:
        """The run's progress now (reads ``history.jsonl``; cheap)."""
        total = int(self.config.get("iterations", 0))
        if self._cancelled:
            return Progress("cancelled", total=total)
        code = None if self.proc is None else self.proc.poll()
        if code is not None:
            if code == 0 and self.summary_path.exists():
                return Progress("finished", total, total)
            return Progress("failed", total=total, message=self.error_line())
        rows = self._history()
        if not rows:
            return Progress("preparing", total=total)
        now = time.perf_counter()
        if self._train_started is None:
            self._train_started = now
        it = int(rows[-1].get("iteration", 0))
        vs = next((r["val_swap_accuracy"] for r in reversed(rows) if r.get("val_swap_accuracy") is not None), None)
        left = (now - self._train_started) / max(it, 1) * max(total - it, 0) if it else None
        return Progress("training", it, total, vs, left)

    def error_line(self) -> str:
        """The last ``error:`` line of the run's output (what ``run_main`` prints), else its last line."""
        try:
            lines = [ln.strip() for ln in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
                     if ln.strip()]
        except OSError:
            return f"the run exited with code {self.proc.returncode if self.proc else '?'}"
        errors = [ln for ln in lines if ln.lower().startswith("error")]
        return (errors or lines or [f"exit code {self.proc.returncode if self.proc else '?'}"])[-1]

    def leftovers(self) -> list[Path]:
        """What this attempt wrote besides a finished run: its partial folder, or the
        ``<name>.failed`` folder a stopped run keeps (``common.runs``)."""
        found = [self.run_dir.parent / f"{self.name}.failed"]
        if self.proc is not None:
            found.append(self.run_dir.parent / f".{self.name}.partial-{self.proc.pid}")
        return [p for p in found if p.exists()]

    def cancel(self, timeout: float = 20.0) -> None:
        """Stops the run and removes what it wrote (the partial folder and the lock); a finished
        run folder is never touched."""
        if self.proc is None:
            return
        self._cancelled = True
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout)
        for left in self.leftovers():  # a cancelled attempt is not kept for inspection
            shutil.rmtree(left, ignore_errors=True)
        lock = lock_path(self.run_dir)
        if lock.exists() and str(self.proc.pid) in lock.read_text(encoding="utf-8", errors="replace"):
            lock.unlink()
