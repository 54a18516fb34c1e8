"""SHA-256 of files, computed once per process per file version.

A file version is its resolved path, size and modification time: hashing a 100 MB
cache or model once and then answering from memory keeps every later check free,
while a rewritten file (new mtime or size) is hashed again.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

from common.errors import UserError

_CHUNK = 1 << 20
_MEMO: dict[tuple[str, int, int], str] = {}


@dataclasses.dataclass(frozen=True)
class FileDigest:
    """``sha256`` (hex) and ``size`` (bytes) of one file."""

    sha256: str
    size: int

    def to_dict(self) -> dict:
        return {"sha256": self.sha256, "size": self.size}


def file_digest(path: str | os.PathLike, *, what: str = "file") -> FileDigest:
    """The SHA-256 and size of ``path``, memoised by (resolved path, mtime, size).

    Raises:
        UserError: naming ``what`` and the path when the file cannot be read.
    """
    path = Path(path)
    try:
        st = path.stat()
        key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
        if key not in _MEMO:
            h = hashlib.sha256()
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(_CHUNK), b""):
                    h.update(chunk)
            _MEMO[key] = h.hexdigest()
    except OSError as exc:
        raise UserError(f"{what} '{path}' cannot be read: {exc.strerror or exc}") from exc
    return FileDigest(_MEMO[key], int(st.st_size))
