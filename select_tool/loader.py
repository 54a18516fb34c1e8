"""Opens what the tool works on from a train result JSON (no Tk here).

    opened = open_result("results/symbols/train_result.json")
    opened.classifier, opened.dataset, opened.split   # SplitArrays of the listed split
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from common.errors import UserError


@dataclasses.dataclass
class Opened:
    result_path: Path
    name: str
    classifier: object
    dataset: object
    split_name: str
    split: object  # datasets.base.SplitArrays
    class_names: list[str]


def open_result(result_path: str | os.PathLike, *, split: str = "train", data_root=None,
                classifier=None, dataset=None) -> Opened:
    """Loads the train result's model and data set and the split to list.

    ``classifier``/``dataset`` may be given directly (tests, notebooks); then only
    the result file's class names are read.

    Raises:
        UserError: the result, its model or its data set is missing or does not match.
    """
    from classification_models.train_result import load_train_result

    result = load_train_result(result_path)
    if classifier is None and not result.model_path.exists():
        raise UserError(f"train result '{result.path}': model file '{result.model_path}' does not exist")
    if dataset is None:
        dataset = result.load_dataset(data_root)
    if classifier is None:
        classifier = result.load_classifier()
    if tuple(classifier.input_shape) != tuple(dataset.image_shape):
        raise UserError(f"train result '{result.path}': the model takes {classifier.input_shape} images "
                        f"but data set '{dataset.name}' has {dataset.image_shape}")
    if classifier.num_classes != len(dataset.class_names):
        raise UserError(f"train result '{result.path}': the model has {classifier.num_classes} classes "
                        f"but data set '{dataset.name}' has {len(dataset.class_names)}")
    arrays = dataset.arrays(split)
    if len(arrays) == 0:
        raise UserError(f"data set '{dataset.name}' split '{split}' is empty")
    return Opened(Path(result_path), result.name, classifier, dataset, split, arrays, list(dataset.class_names))
