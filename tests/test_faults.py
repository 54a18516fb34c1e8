"""Every failed retraining run says what happened and where the attempt is, and leaves
``<name>.failed/summary.json``: divergence in the outputs, a bug in a method, Ctrl-C and
SIGTERM (real processes, real signals)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from common.errors import UserError
from common.run_files import load_summary
from retraining.runner import run_retraining
from tests.fixtures_retrain import make_classifier, make_dataset, make_retrain_config, selection_items

ROOT = Path(__file__).resolve().parents[1]

RUN = {"name": "t", "selection": "sel.json", "iterations": 2, "eval_every": 2, "batch": {"random": 6, "selected": 2},
       "overlays": False, "save_models": False, "counterfactual_val": False,
       "methods": [{"name": "continued"}, {"name": "pas"}, {"name": "pasa"}]}

#: a retraining run whose second method hangs (a long method), so a test can signal it there
DRIVER = """
import sys, time
from common.cli import run_main
import retraining.runner as runner
from retraining.data import masked_set_from_items
from tests.fixtures_retrain import make_classifier, make_dataset, make_retrain_config, selection_items

RUN = %r
real_loop, calls = runner.run_loop, []

def slow_second(method, **kw):
    calls.append(method.label)
    if len(calls) == 2:
        print("ready", flush=True)
        time.sleep(120)
    return real_loop(method, **kw)

def main(argv):
    runner.run_loop = slow_second
    ds, clf = make_dataset(), make_classifier()
    items, masks = selection_items(ds, 3)
    sel = masked_set_from_items(ds, items, masks)
    cfg = make_retrain_config(RUN)
    runner.run_retraining(cfg, base=clf, dataset=ds, selected=sel, heldout=sel, run_dir=argv[0])
    return 0

sys.exit(run_main(main, sys.argv[1:]))
""" % (RUN,)


@pytest.fixture(scope="module")
def env():
    from retraining.data import masked_set_from_items

    ds, clf = make_dataset(), make_classifier()
    items, masks = selection_items(ds, 3)
    return ds, clf, masked_set_from_items(ds, items, masks)


def _retrain(cfg, env, run_dir):
    ds, clf, sel = env
    return run_retraining(cfg, base=clf, dataset=ds, selected=sel, heldout=sel, run_dir=run_dir)


def test_sigterm_keeps_the_attempt_with_a_summary_and_says_where(tmp_path):
    run = tmp_path / "t"
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(run)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143
    assert err.strip().splitlines()[-1] == (
        f"error: terminated (SIGTERM) during method pas (1 finished method(s) in summary.json); the attempt is kept "
        f"in '{tmp_path / 't.failed'}'; '{run}' is unchanged")
    s = load_summary(tmp_path / "t.failed")
    assert s.status == "failed" and s.failure.method == "pas" and s.failure.not_run == ["pasa"]
    assert s.failure.reason == "terminated (SIGTERM) during method pas"
    assert list(s.methods) == ["continued"] and s.base.accuracy.test > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.failed"]  # no lock, no partial folder left


#: plays the mask tool: starts the run in its own session with ``PARENT_ENV`` set, prints its pid, waits
TOOL = """
import os, subprocess, sys, time
from common.cli import PARENT_ENV
with open(sys.argv[2], "w") as out, open(sys.argv[3], "w") as err:
    child = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[4]], stdout=out, stderr=err,
                             start_new_session=True, env=dict(os.environ, **{PARENT_ENV: str(os.getpid())}))
print(child.pid, flush=True)
time.sleep(300)
"""


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")  # exited (a zombie until its new parent reaps it)


def test_a_run_whose_starter_is_killed_stops_and_keeps_the_attempt(tmp_path):
    run, out, err = tmp_path / "t", tmp_path / "out.txt", tmp_path / "err.txt"
    tool = subprocess.Popen([sys.executable, "-c", TOOL, DRIVER, str(out), str(err), str(run)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    child = int(tool.stdout.readline())
    try:
        deadline = time.monotonic() + 120
        while "ready" not in out.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "ready" in out.read_text()
        assert not _gone(child)
        tool.kill()  # SIGKILL: the tool cannot stop its run itself
        tool.wait(timeout=10)
        deadline = time.monotonic() + 60
        while not _gone(child) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _gone(child)
    finally:
        tool.kill()
        if not _gone(child):
            os.kill(child, signal.SIGKILL)
    lines = err.read_text().strip().splitlines()
    assert f"the process that started this command (pid {tool.pid}) has gone: stopping" in lines
    assert lines[-1].startswith("error: terminated (SIGTERM) during method pas")
    assert load_summary(tmp_path / "t.failed").failure.reason == "terminated (SIGTERM) during method pas"


def _failing_second(monkeypatch, exc):
    import retraining.runner as runner

    real, calls = runner.run_loop, []

    def loop(method, **kw):
        calls.append(method.label)
        if len(calls) == 2:
            raise exc
        return real(method, **kw)

    monkeypatch.setattr(runner, "run_loop", loop)


def test_ctrl_c_is_handled_like_sigterm(tmp_path, env, monkeypatch, capsys):
    from common.cli import run_main

    _failing_second(monkeypatch, KeyboardInterrupt())
    assert run_main(lambda argv: _retrain(make_retrain_config(RUN), env, tmp_path / "t")) == 130
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"error: interrupted (Ctrl-C) during method pas (1 finished method(s) in summary.json); the attempt is kept "
        f"in '{tmp_path / 't.failed'}'; '{tmp_path / 't'}' is unchanged")
    s = load_summary(tmp_path / "t.failed")
    assert s.failure.reason == "interrupted (Ctrl-C) during method pas" and list(s.methods) == ["continued"]


def test_a_bug_in_a_method_leaves_a_failed_summary_and_keeps_its_traceback(tmp_path, env, monkeypatch, caplog):
    _failing_second(monkeypatch, ZeroDivisionError("a bug"))
    with pytest.raises(ZeroDivisionError, match="a bug"):
        _retrain(make_retrain_config(RUN), env, tmp_path / "t")
    s = load_summary(tmp_path / "t.failed")
    assert s.status == "failed" and s.failure.reason == "ZeroDivisionError: a bug during method pas"
    assert list(s.methods) == ["continued"] and s.failure.not_run == ["pasa"]
    assert f"the attempt is kept in '{tmp_path / 't.failed'}'" in caplog.text


@pytest.mark.filterwarnings("ignore:overflow encountered")
@pytest.mark.parametrize("rate", [1e6, 1e30])
def test_diverging_outputs_stop_the_method_with_the_divergence_message(tmp_path, env, rate):
    cfg = make_retrain_config(RUN, optimizer="sgd", learning_rate=rate, methods=[{"name": "continued"}])
    with pytest.raises(UserError) as info:
        _retrain(cfg, env, tmp_path / "t")
    msg = str(info.value)
    assert msg.startswith("method continued diverged at iteration ") and "\n" not in msg
    assert f"(learning_rate {rate:g}); the run is marked failed in '{tmp_path / 't.failed' / 'summary.json'}'" in msg
    s = load_summary(tmp_path / "t.failed")
    assert s.status == "failed" and s.failure.method == "continued" and s.methods == {}
    rows = [json.loads(line) for line in (tmp_path / "t.failed" / "continued" / "history.jsonl").read_text().splitlines()]
    assert rows[-1]["stopped"] == s.failure.reason
    assert all(v is None or v == v for r in rows for v in r.values() if isinstance(v, float))  # no NaN written


def test_an_error_met_mid_run_says_where_the_attempt_is(tmp_path):
    from common.runs import run_transaction

    with pytest.raises(UserError) as info:
        with run_transaction(tmp_path / "r") as run:
            (run.path / "a.txt").write_text("x")
            raise UserError("cannot write 'b': no space left on the disk")
    assert str(info.value) == (f"cannot write 'b': no space left on the disk; the attempt is kept in "
                               f"'{tmp_path / 'r.failed'}'")
    with pytest.raises(UserError) as info:  # nothing written: an older attempt is not claimed as this one
        with run_transaction(tmp_path / "r"):
            raise UserError("bad input")
    assert str(info.value) == "bad input"


def test_any_run_folder_interrupted_says_where_the_attempt_is(tmp_path):
    from common.errors import Interrupted
    from common.runs import run_transaction

    for raised, code, what in ((KeyboardInterrupt(), 130, "interrupted (Ctrl-C)"),
                               (Interrupted("terminated (SIGTERM)", exit_code=143), 143, "terminated (SIGTERM)")):
        with pytest.raises(Interrupted) as info:
            with run_transaction(tmp_path / "train") as run:
                (run.path / "config.json").write_text("{}")
                raise raised
        assert info.value.exit_code == code
        assert str(info.value) == (f"{what}; the attempt is kept in '{tmp_path / 'train.failed'}'; "
                                   f"'{tmp_path / 'train'}' is unchanged")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.failed"]
