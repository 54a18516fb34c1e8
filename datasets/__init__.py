"""Data sets backed by TFRecords, by name: ``datasets.load({"name": ..., "params": {...}})``.

The registry maps a name to a class; ``datasets.registry.REGISTRY`` lists them.

    python -m datasets.prepare --name symbols
"""
from datasets.base import SPLITS, ArrayDataset, Dataset, SplitArrays


def load(spec=None, data_root=None, *, rebuild: bool = False):
    """See :func:`datasets.registry.load` (imported lazily to keep ``import datasets`` light)."""
    from datasets.registry import load as _load  # deferred: the registry imports every data set module

    return _load(spec, data_root, rebuild=rebuild)


__all__ = ["SPLITS", "ArrayDataset", "Dataset", "SplitArrays", "load"]
