"""Shared fixtures: quiet TF, tiny synthetic data sets and models.

Area-specific fixtures live in the test modules (or ``tests/fixtures_*.py``).
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
