"""A data set folder on disk: its manifest, its pinned shards and leftover temporaries.

A data set folder holds ``<split>-<k>-of-<n>.tfrecord`` shards and ``dataset.json``
(the manifest). The writer (:mod:`tf_records_parser.writer`) writes shards under
temporary names, renames them when every split is complete and writes the manifest
*last*: a folder without a manifest is an incomplete conversion and is never read as a
data set.

The manifest pins every shard by SHA-256 and size (``shards``); :func:`verify_shards`
checks them before anything is read (hashing each file once per process), so a
truncated or bit-flipped cache is reported as :class:`CorruptCacheError` naming the
shard instead of failing half-way through a read. Temporary shards left by a killed
conversion (``.tmp-<pid>-*.part`` of a process that no longer runs) are removed by
:func:`remove_stale_temporaries`.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

from common.checksums import file_digest
from common.errors import UserError
from common.io import read_json
from common.runs import pid_alive

MANIFEST = "dataset.json"
FORMAT_VERSION = 1
SHARD_SUFFIX = ".tfrecord"
TMP_PREFIX = ".tmp-"
TMP_SUFFIX = ".part"


class CorruptCacheError(UserError):
    """A data set folder whose shards do not match its manifest (truncated, altered, missing)."""

    def __init__(self, message: str, *, folder: Path, shard: Path | None = None):
        super().__init__(message)
        self.folder = Path(folder)
        self.shard = shard


def load_manifest(folder) -> dict:
    """The manifest of a complete data set folder; a UserError if it is missing/incomplete."""
    path = Path(folder) / MANIFEST
    if not path.exists():
        raise UserError(f"'{folder}' holds no complete data set (no {MANIFEST}; an interrupted conversion?)")
    manifest = read_json(path, what="data set manifest")
    if not manifest.get("complete") or manifest.get("format_version") != FORMAT_VERSION:
        raise UserError(f"data set manifest '{path}' is incomplete or of another format version")
    return manifest


def verify_shards(folder, manifest: dict) -> None:
    """Checks every shard of ``folder`` against the manifest's sizes and SHA-256 sums.

    Sizes are compared first (free); each file is hashed once per process and version
    (``common.checksums.file_digest``). Manifests written before shards were pinned
    carry no ``shards`` entry: only the files' presence is checked.

    Raises:
        CorruptCacheError: naming the first missing, truncated or altered shard.
    """
    folder = Path(folder)
    pins = manifest.get("shards") or {}
    for names in manifest.get("files", {}).values():
        for name in names:
            path = folder / name
            if not path.is_file():
                raise CorruptCacheError(f"shard '{path}' listed in the manifest is missing", folder=folder, shard=path)
            pin = pins.get(name)
            if pin is None:
                continue
            size = path.stat().st_size
            if size != pin["size"]:
                raise CorruptCacheError(f"shard '{path}' has {size} bytes but the manifest says {pin['size']} "
                                        "(truncated or overwritten)", folder=folder, shard=path)
            if file_digest(path, what="shard").sha256 != pin["sha256"]:
                raise CorruptCacheError(f"shard '{path}' does not match its SHA-256 in the manifest (altered "
                                        "or damaged on disk)", folder=folder, shard=path)


def shard_paths(folder, split: str, manifest: dict | None = None) -> list[str]:
    """Paths of the shards of ``split`` (a UserError naming a missing shard)."""
    manifest = manifest or load_manifest(folder)
    names = manifest["files"].get(split)
    if names is None:
        raise UserError(f"data set '{folder}' has no split '{split}' (splits: {', '.join(manifest['files'])})")
    paths = [str(Path(folder) / n) for n in names]
    for p in paths:
        if not os.path.exists(p):
            raise UserError(f"shard '{p}' listed in the manifest is missing")
    return paths


def remove_stale_temporaries(folder) -> list[Path]:
    """Deletes ``.tmp-<pid>-*.part`` shards in ``folder`` whose writer process no longer runs.

    Returns:
        The deleted paths (shards of a live writer are kept).
    """
    removed = []
    for p in Path(folder).glob(f"{TMP_PREFIX}*{TMP_SUFFIX}"):
        pid_text = p.name[len(TMP_PREFIX):].split("-", 1)[0]
        if pid_text.isdigit() and pid_alive(int(pid_text)):
            continue
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
            removed.append(p)
    return removed
