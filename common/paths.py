"""Where data and results live. Both are configurable; neither is committed."""
from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import quote

from common.errors import UserError

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


#: a name that becomes one path component: starts with a letter or digit, then letters,
#: digits, '_', '-', '.'; so no separator, no '..', no absolute path, no hidden file
_PATH_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
#: config fields marked with this metadata are checked by :func:`check_path_name` on load
PATH_NAME_FIELD = {"path_name": True}


def check_path_name(value: str, where: str) -> str:
    """The one rule for every name the tools turn into a file or folder name (run names,
    method labels, class folder names): a single path component that stays inside the
    folder it is written into.

    Args:
        value: the name.
        where: the file and field it comes from, for the error.

    Returns:
        ``value`` unchanged.

    Raises:
        UserError: ``value`` is empty, holds a separator or characters other than
            letters, digits, '_', '-', '.', or starts with '.' (``..``, hidden files).
    """
    if not isinstance(value, str) or not _PATH_NAME.match(value) or len(value) > 200:
        raise UserError(f"{where} must be a single file name of letters, digits, '_', '-', '.' (not starting "
                        f"with '.', no '/', '\\' or '..', at most 200 characters), got {value!r}")
    return value


def file_stem(key: str) -> str:
    """A file name stem for a key that may hold any character (image indices such as
    ``train/cat/img_01``): characters other than ``A-Za-z0-9_.-`` are percent-encoded and a
    leading '.' too, so the result is one path component and distinct keys stay distinct.

    Args:
        key: the key.

    Returns:
        The stem, e.g. ``train%2Fcat%2Fimg_01``.
    """
    stem = quote(str(key), safe="-_.")
    return "%2E" + stem[1:] if stem.startswith(".") else stem
