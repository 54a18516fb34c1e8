"""Registered data sets: a :class:`RecordDataset` built on first use and cached by its parameters.

Cache layout: ``<data_root>/<name>/<key>/`` where ``key`` is a short hash of the
generator version and *all* resolved parameters, so a different parameter set never
reuses a stale cache. A folder is used only when its ``dataset.json`` exists (written
last by :class:`tf_records_parser.writer.RecordWriter`) and its parameters and source
fingerprint match; otherwise it is (re)built.

A corrupt cache stops with the shard's name and how to rebuild it
(``python -m datasets.prepare ... --rebuild``), or is rebuilt at once when
$VF_REBUILD_CORRUPT=1. A build first removes what interrupted or failed builds left
under ``<data_root>/<name>/``: temporary shards of dead processes and empty folders.
"""
from __future__ import annotations

import abc
import hashlib
import json
import logging
from pathlib import Path
from typing import ClassVar

from common.config import from_dict, to_dict
from common.errors import UserError
from common.io import ensure_dir
from common.paths import REBUILD_CORRUPT_ENV, rebuild_corrupt
from common.paths import data_root as resolve_data_root
from common.registry import Registry
from datasets.records_dataset import RecordDataset
from tf_records_parser.manifest import MANIFEST, CorruptCacheError, load_manifest, remove_stale_temporaries, verify_shards

log = logging.getLogger(__name__)


#: name -> data set class: each data set module registers its class with
#: ``@REGISTRY.register`` (``datasets.registry`` imports them all; ``datasets.load`` and
#: every CLI's ``choices`` read it)
REGISTRY = Registry("data set")


class CachedDataset(RecordDataset):
    """A registered data set: parameters with defaults, a cache folder per parameter set,
    and :meth:`build`, which writes the records the first time.

    Subclasses (one per registered name) set ``name``, ``VERSION``, ``Params`` (a frozen
    dataclass of the parameters with defaults) and implement :meth:`build`.
    """

    VERSION: ClassVar[int] = 1
    Params: ClassVar[type | None] = None

    @classmethod
    def resolve_params(cls, params: dict | None) -> dict:
        """Validated parameters with defaults filled in (a UserError naming an unknown/bad one)."""
        if cls.Params is None:
            if params:
                raise UserError(f"data set '{cls.name}' takes no parameters, got {sorted(params)}")
            return {}
        if params is not None and not isinstance(params, dict):
            raise UserError(f"data set '{cls.name}': params must be a JSON object, got {params!r}")
        obj = from_dict(cls.Params, dict(params or {}), source=f"data set '{cls.name}' params")
        return cls.normalise_params(to_dict(obj))

    @classmethod
    def normalise_params(cls, params: dict) -> dict:
        """Hook: canonical form of resolved params (e.g. absolute paths)."""
        return params

    @classmethod
    def cache_key(cls, params: dict) -> str:
        """Short hash of the generator version and the resolved parameters."""
        text = json.dumps({"name": cls.name, "version": cls.VERSION, "params": params}, sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]

    @classmethod
    def source_fingerprint(cls, params: dict) -> str | None:
        """Hook: a cheap fingerprint of user-supplied source files (None for generated sets)."""
        return None

    @classmethod
    @abc.abstractmethod
    def build(cls, folder: Path, params: dict) -> dict:
        """Writes the data set to ``folder`` and returns its manifest."""

    @classmethod
    def open(cls, params: dict | None = None, data_root=None, *, rebuild: bool = False) -> "RecordDataset":
        """The data set for ``params`` under ``data_root``, built first if not cached.

        Args:
            params: parameters (unknown names are a UserError).
            data_root: ``--data-root`` value; None -> $VF_DATA_ROOT -> ./data.
            rebuild: rebuild even if a complete cache exists.
        """
        resolved = cls.resolve_params(params)
        root = resolve_data_root(data_root)
        folder = root / cls.name / cls.cache_key(resolved)
        fingerprint = cls.source_fingerprint(resolved)
        manifest = None if rebuild else cls._cached_manifest(folder, resolved, fingerprint)
        if manifest is not None:
            try:
                verify_shards(folder, manifest)
            except CorruptCacheError as exc:
                if not rebuild_corrupt():
                    raise CorruptCacheError(
                        f"data set cache '{folder}' is corrupt: {exc}; rebuild it with `{cls.rebuild_command(resolved, data_root)}` "
                        f"(or set {REBUILD_CORRUPT_ENV}=1)", folder=folder, shard=exc.shard) from None
                log.warning("data set cache '%s' is corrupt (%s); rebuilding it (%s=1)", folder, exc,
                            REBUILD_CORRUPT_ENV)
                manifest = None
        if manifest is None:
            if root.exists() and not root.is_dir():
                raise UserError(f"data root '{root}' is a file, not a folder")
            cls._remove_leftovers(root / cls.name, keep=folder)
            ensure_dir(folder)
            try:
                manifest = cls.build(folder, resolved)
            except BaseException:
                _remove_if_empty(folder)
                _remove_if_empty(folder.parent)
                raise
            if fingerprint is not None and manifest.get("source", {}).get("fingerprint") != fingerprint:
                raise AssertionError("build() must store source_fingerprint in manifest['source']")
        return cls(folder, manifest)

    @classmethod
    def rebuild_command(cls, params: dict, data_root=None) -> str:
        """The shell command that rebuilds this cache."""
        text = f"python -m datasets.prepare --name {cls.name}"
        if params:
            text += f" --params '{json.dumps(params, sort_keys=True)}'"
        if data_root is not None:
            text += f" --data-root {data_root}"
        return text + " --rebuild"

    @staticmethod
    def _remove_leftovers(name_dir: Path, keep: Path) -> None:
        """Removes what interrupted or failed builds left in ``name_dir``: temporary shards of
        dead processes and folders left empty. Complete caches are never touched."""
        if not name_dir.is_dir():
            return
        for sub in name_dir.iterdir():
            if not sub.is_dir() or (sub / MANIFEST).exists():
                continue
            removed = remove_stale_temporaries(sub)
            if removed:
                log.warning("removed %d temporary shard(s) of an interrupted build in '%s'", len(removed), sub)
            if sub != keep:
                _remove_if_empty(sub)

    @classmethod
    def _cached_manifest(cls, folder: Path, params: dict, fingerprint: str | None) -> dict | None:
        if not (folder / MANIFEST).exists():
            return None
        try:
            m = load_manifest(folder)
        except UserError:
            return None
        if m.get("params") != params or m.get("name") != cls.name:
            return None
        if fingerprint is not None and m.get("source", {}).get("fingerprint") != fingerprint:
            return None
        for names in m.get("files", {}).values():
            if not all((folder / n).exists() for n in names):
                return None
        return m


def _remove_if_empty(folder: Path) -> None:
    """Removes ``folder`` if it exists and holds nothing."""
    try:
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    except OSError:  # raced with another writer, or not ours to remove
        pass
