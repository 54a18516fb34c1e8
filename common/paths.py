"""Where data and results live. Both are configurable; neither is committed."""
from __future__ import annotations

import os
from pathlib import Path

DATA_ROOT_ENV = "VF_DATA_ROOT"
RESULTS_ROOT_ENV = "VF_RESULTS_ROOT"
#: set to 1 to rebuild a data set cache that fails its checksum check instead of stopping
REBUILD_CORRUPT_ENV = "VF_REBUILD_CORRUPT"


def data_root(explicit: str | os.PathLike | None = None) -> Path:
    """The data root: ``explicit`` (a --data-root flag) > $VF_DATA_ROOT > ./data."""
    if explicit:
        return Path(explicit)
    return Path(os.environ.get(DATA_ROOT_ENV) or "data")


def rebuild_corrupt() -> bool:
    """True when $VF_REBUILD_CORRUPT asks to rebuild corrupt data set caches on open."""
    return os.environ.get(REBUILD_CORRUPT_ENV, "").strip().lower() in ("1", "true", "yes")


def results_root(explicit: str | os.PathLike | None = None) -> Path:
    """The results root: ``explicit`` > $VF_RESULTS_ROOT > ./results."""
    if explicit:
        return Path(explicit)
    return Path(os.environ.get(RESULTS_ROOT_ENV) or "results")


def resolve_relative(path: str | os.PathLike, base_file: str | os.PathLike) -> Path:
    """Resolves ``path`` relative to the folder of ``base_file`` unless absolute."""
    path = Path(path)
    if path.is_absolute():
        return path
    return Path(base_file).parent / path
