"""Shared fixtures: quiet TF, tiny synthetic data sets and models.

Area-specific fixtures live in the test modules (or ``tests/fixtures_*.py``).
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def real_runs(tmp_path_factory):
    """A tiny real training run and retraining run (``tests.fixtures_runs``), made once."""
    from tests.fixtures_runs import make_real_runs

    return make_real_runs(tmp_path_factory.mktemp("real_runs"))


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
