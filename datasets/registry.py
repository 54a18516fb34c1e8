"""Registry of data sets by name, and ``load``.

    python -m datasets.prepare --name symbols
"""
from __future__ import annotations


from common.config import from_dict
from common.errors import UserError
from common.io import parse_json_text
from common.run_files import DatasetSpec
from datasets import converted, decoy_digits, symbols
from datasets.cached import REGISTRY, CachedDataset

#: the modules whose import registers the data sets in ``REGISTRY``
MODULES = (converted, decoy_digits, symbols)

DEFAULT_DATASET = "symbols"


def parse_spec(spec: dict | str | None) -> tuple[str, dict]:
    """``(name, params)`` from a spec: a name, a JSON string, or ``{"name": ..., "params": {...}}``."""
    if spec is None:
        return DEFAULT_DATASET, {}
    if isinstance(spec, str):
        text = spec.strip()
        if text.startswith("{"):
            spec = parse_json_text(text, "data set spec")
        else:
            return text, {}
    if not isinstance(spec, dict):
        raise UserError(f"a data set spec is a name or an object {{name, params}}, got {spec!r}")
    if spec.get("params", {}) is None:  # "params": null means no parameters
        spec = {**spec, "params": {}}
    parsed = from_dict(DatasetSpec, spec, source="data set spec")
    return parsed.name, dict(parsed.params)


def get_class(name: str) -> type[CachedDataset]:
    """The class registered as ``name``; a UserError listing the valid names otherwise."""
    return REGISTRY.get(name)


def load(spec: dict | str | None = None, data_root=None, *, rebuild: bool = False) -> CachedDataset:
    """Loads (generating or converting on first use) the data set described by ``spec``.

    Args:
        spec: ``"symbols"`` or ``{"name": "symbols", "params": {"train_correlation": 0.9}}``.
        data_root: cache root; None -> $VF_DATA_ROOT -> ./data. Cached under
            ``<data_root>/<name>/<hash of all params>/``.
        rebuild: regenerate even if a complete cache exists.

    Raises:
        UserError: unknown name (lists the valid ones), unknown or bad parameter, bad
            source files, non-writable data root.
    """
    name, params = parse_spec(spec)
    return get_class(name).open(params, data_root, rebuild=rebuild)
