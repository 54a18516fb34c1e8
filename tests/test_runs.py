"""A run folder is one transaction: exclusive lock, private build folder, swap when whole."""
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from common.errors import UserError
from common.runs import lock_path, run_lock, run_transaction

ROOT = Path(__file__).resolve().parents[1]

#: a run that writes a.txt, optionally waits (so a test can race it or kill it), writes b.txt
DRIVER = """
import sys, time
from common.cli import run_main
from common.runs import run_transaction

def main(argv):
    folder, text, wait = argv
    with run_transaction(folder) as run:
        (run.path / "a.txt").write_text(text)
        if wait == "wait":
            print("ready", flush=True)
            time.sleep(120)
        (run.path / "b.txt").write_text(text)
    return 0

sys.exit(run_main(main, sys.argv[1:]))
"""


def _start(folder, text, wait=""):
    return subprocess.Popen([sys.executable, "-c", DRIVER, str(folder), text, wait or "-"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finished(folder, text):
    with run_transaction(folder) as run:
        (run.path / "a.txt").write_text(text)
        (run.path / "b.txt").write_text(text)


def _content(folder):
    return sorted((p.name, p.read_text()) for p in Path(folder).iterdir())


def test_concurrent_run_fails_at_once_and_kill_keeps_the_finished_run(tmp_path):
    run = tmp_path / "run"
    _finished(run, "one")
    first = _start(run, "two", wait="wait")
    try:
        assert first.stdout.readline().strip() == "ready"
        holder = json.loads(lock_path(run).read_text())
        assert holder["pid"] == first.pid and holder["host"] == socket.gethostname()
        t0 = time.perf_counter()
        second = subprocess.run([sys.executable, "-c", DRIVER, str(run), "three", "-"], cwd=ROOT,
                                capture_output=True, text=True, timeout=60)
        assert time.perf_counter() - t0 < 20
        assert second.returncode == 2
        err = second.stderr.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"error: run folder '{run}' is in use by process {first.pid} "
                                                   f"on host {socket.gethostname()}")
        assert _content(run) == [("a.txt", "one"), ("b.txt", "one")]
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
        first.stdout.close()
        first.stderr.close()
    # killed mid-way: the finished run is intact, its half-written attempt and lock remain
    assert _content(run) == [("a.txt", "one"), ("b.txt", "one")]
    assert (tmp_path / f".run.partial-{first.pid}").is_dir() and lock_path(run).exists()
    third = subprocess.run([sys.executable, "-c", DRIVER, str(run), "three", "-"], cwd=ROOT,
                           capture_output=True, text=True, timeout=60)
    assert third.returncode == 0, third.stderr
    assert f"taking over the stale lock '{lock_path(run)}' of process {first.pid}" in third.stderr
    assert _content(run) == [("a.txt", "three"), ("b.txt", "three")]
    assert _content(tmp_path / "run.previous") == [("a.txt", "one"), ("b.txt", "one")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "run.previous"]


def test_failure_keeps_the_finished_run_and_the_attempt(tmp_path):
    run = tmp_path / "run"
    _finished(run, "one")
    with pytest.raises(RuntimeError, match="boom"):
        with run_transaction(run) as r:
            (r.path / "a.txt").write_text("two")
            raise RuntimeError("boom")
    assert _content(run) == [("a.txt", "one"), ("b.txt", "one")]
    assert _content(tmp_path / "run.failed") == [("a.txt", "two")]
    with pytest.raises(UserError):
        with run_transaction(run):
            raise UserError("bad input before anything was written")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "run.failed"]  # nothing written: no attempt kept
    _finished(run, "three")
    _finished(run, "four")
    assert _content(run) == [("a.txt", "four"), ("b.txt", "four")]
    assert _content(tmp_path / "run.previous") == [("a.txt", "three"), ("b.txt", "three")]


def test_lock_of_another_host_or_live_process_is_never_taken(tmp_path):
    run = tmp_path / "run"
    lock_path(run).write_text(json.dumps({"pid": 1, "host": "elsewhere", "started": "x"}))
    with pytest.raises(UserError, match=r"in use by process 1 on host elsewhere .*another host"):
        with run_transaction(run):
            pass
    assert not run.exists()
    lock_path(run).unlink()
    with run_lock(run):
        with run_lock(run):  # re-entrant in one process
            assert lock_path(run).exists()
        assert lock_path(run).exists()
    assert not lock_path(run).exists()
