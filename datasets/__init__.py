"""Data sets backed by TFRecords, by name: ``datasets.load({"name": ..., "params": {...}})``.

The registry maps a name to a class; ``datasets.registry.REGISTRY`` lists them.
"""
from datasets.base import SPLITS, ArrayDataset, Dataset, SplitArrays

__all__ = ["SPLITS", "ArrayDataset", "Dataset", "SplitArrays"]
