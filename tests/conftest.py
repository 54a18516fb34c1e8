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
