"""Shared fixtures: quiet TF, tiny synthetic data sets and models.

Area-specific helpers live in ``tests/fixtures_*.py`` and ``tests/gui_driver.py``; the GUI
tests' X display and train result, the retraining methods' environment and the training
CLI's in-memory data sets are fixtures here.
"""
import os
import subprocess
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def real_runs(tmp_path_factory):
    """A tiny real training run and retraining run (``tests.fixtures_runs``), made once."""
    from tests.fixtures_runs import make_real_runs

    return make_real_runs(tmp_path_factory.mktemp("real_runs"))


@pytest.fixture(scope="module")
def method_env():
    """``(dataset, base classifier, RetrainData)`` of the retraining method tests
    (``tests.fixtures_retrain.make_method_env``), per module."""
    from tests.fixtures_retrain import make_method_env

    return make_method_env()


@pytest.fixture()
def cli_datasets(monkeypatch):
    """A dict ``do_interactive_exp`` loads data sets from by name (``{"name": ...}`` specs):
    the tests put in-memory data sets in it; other names load as usual."""
    from retraining import base_training

    real = base_training.load_dataset
    datasets = {}
    monkeypatch.setattr(base_training, "load_dataset",
                        lambda spec, root: datasets[spec["name"]] if spec["name"] in datasets else real(spec, root))
    return datasets


@pytest.fixture(autouse=True)
def _restore_logging():
    """An entry point's ``setup_logging`` (``-q``, ``-v``) must not leak into the next test."""
    import logging

    from common.logs import PACKAGES

    root = logging.getLogger()
    saved = root.level, list(root.handlers), {n: logging.getLogger(n).level for n in PACKAGES}
    yield
    root.setLevel(saved[0])
    root.handlers[:] = saved[1]
    for name, level in saved[2].items():
        logging.getLogger(name).setLevel(level)


@pytest.fixture(scope="module")
def xdisplay():
    """An Xvfb display of its own (the number chosen by Xvfb), per GUI test module."""
    r, w = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
                            pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(w)
    try:
        buf = b""
        deadline = time.time() + 15
        while not buf.endswith(b"\n") and time.time() < deadline:
            chunk = os.read(r, 16)
            if not chunk:
                break
            buf += chunk
        os.close(r)
        assert buf.strip(), "Xvfb did not report a display number"
        yield f":{int(buf.strip())}"
    finally:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    """A tiny real train result (32×32, 3 images per class) for the GUI tests, per module."""
    from tests.fixtures_select import make_result

    return make_result(tmp_path_factory.mktemp("gui"), hw=(32, 32), n_per_class=3, steps=2)
