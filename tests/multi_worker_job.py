"""One process of the two-worker test (``tests/test_multi_worker.py``): base training and a
retraining run on the tiny retraining data set, alone or as a worker of ``$TF_CONFIG``.

    python -m tests.multi_worker_job RESULTS_ROOT

Prints one JSON line: the test accuracies, each base-training epoch's loss, the paths it
wrote to and (on a worker) its private folder.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from pathlib import Path

from classification_models.classifier import Classifier
from classification_models.distributed import cluster_strategy
from classification_models.train_result import load_train_result
from common import cluster
from common.errors import UserError
from common.run_files import load_summary
from datasets.selection import SelectionItem
from retraining import base_training
from retraining.data import masked_set_from_items
from retraining.runner import run_retraining
from retraining.train_config import load_train_config
from tests.fixtures_retrain import make_dataset, make_retrain_config

TRAIN = {"name": "mw", "dataset": {"name": "arrays", "params": {}},
         "model": {"name": "vgg_gap_small", "params": {"filters": [4, 8], "last_conv_filters": 8}},
         "train": {"epochs": 6, "batch_size": 9, "learning_rate": 0.02, "optimizer": "adam", "seed": 0,
                   "augmentation": False, "distribute": "none"},
         "cam_overlays": 0}
#: set to N: this process exits abruptly at its N-th training step (a worker that dies)
DIE_ENV = "MW_DIE_AT_STEP"


def die_at(step_number: int) -> None:
    """Makes every training step count, and the ``step_number``-th end the process at once."""
    made = Classifier.make_train_step
    calls = [0]

    def make(self, *args, **kwargs):
        step = made(self, *args, **kwargs)

        def counted(*a, **k):
            calls[0] += 1
            if calls[0] == step_number:
                os._exit(1)
            return step(*a, **k)

        return counted

    Classifier.make_train_step = make
RETRAIN = {"name": "mw", "selection": "sel.json", "iterations": 4, "eval_every": 2, "seed": 0,
           "batch": {"random": 9, "selected": 2}, "mode": "full", "overlays": False,
           "methods": [{"name": "pasa"}]}


def main(root: str) -> dict:
    """Runs both stages into results root ``root``; returns what the JSON line says."""
    strategy = cluster_strategy()  # before any TensorFlow op
    root = Path(root)
    if os.environ.get(DIE_ENV):
        die_at(int(os.environ[DIE_ENV]))
    ds = make_dataset()
    base_training.load_dataset = lambda spec, data_root: ds  # a process of its own: patched for good
    config = cluster.local_path(root.parent / f"{root.name}-train.json")  # the chief's own, a worker's private
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps({**TRAIN, "output_dir": str(root / "train" / "mw")}), encoding="utf-8")
    result = base_training.run(load_train_config(config), source=str(config))
    train = load_train_result(result)
    items = [SelectionItem(f"train_{i:05d}", f"masks/train_{i:05d}.png", int(ds.get(f"train_{i:05d}")[1]))
             for i in range(4)]
    selected = masked_set_from_items(ds, items, [ds.irrelevant_mask(it.index) for it in items])
    summary = run_retraining(make_retrain_config(RETRAIN), base=train.load_classifier(), dataset=ds,
                             selected=selected, heldout=masked_set_from_items(ds, [], []),
                             run_dir=root / "backprops" / "mw")
    s = load_summary(summary)
    history = [json.loads(line) for line in (result.parent / "history.jsonl").read_text().splitlines()]
    run = json.loads((summary.parent / "run.json").read_text())
    masks = hashlib.sha256(b"".join(p.read_bytes() for p in sorted((summary.parent / "propagated").rglob("*.png"))))
    return {
        "workers": 1 if strategy is None else strategy.num_replicas_in_sync,
        "base_test": train.metrics["test"].accuracy, "base_loss": [h["loss"] for h in history],
        "methods": {k: m.accuracy.test for k, m in s.methods.items()},
        "wrote": [str(result), str(summary)],
        "propagated": run["propagated"], "val_swap": run["val_swap"], "propagated_masks": masks.hexdigest(),
        "private": None if cluster.is_chief() else str(cluster.private_root()),
    }


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    try:
        print(json.dumps(main(sys.argv[1])))
    except UserError as exc:  # as an entry point reports it
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
