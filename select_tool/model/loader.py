"""Opens what the tool works on from a train result JSON (no Tk here).

    opened = open_result("results/symbols/train_result.json")
    opened.classifier, opened.dataset, opened.split   # SplitArrays of the listed split (images
                                                      # mapped from disk, see Dataset.split_view)
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from classification_models.train_result import check_model_data, load_train_result
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
    result = load_train_result(result_path)
    if classifier is None:
        classifier, dataset = result.load_model_and_data(data_root, dataset=dataset)
    else:
        if dataset is None:
            dataset = result.load_dataset(data_root)
        check_model_data(classifier, dataset, where=f"train result '{result.path}'")
    arrays = dataset.split_view(split)  # images mapped from disk for record-backed sets
    if len(arrays) == 0:
        raise UserError(f"data set '{dataset.name}' split '{split}' is empty")
    return Opened(Path(result_path), result.name, classifier, dataset, split, arrays, list(dataset.class_names))
