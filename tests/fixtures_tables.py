"""Small hand-written run directories for the table/figure tests (plot_utils)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

CLASSES = ["eps", "xi"]


def _report(p0, r0, f0, p1, r1, f1):
    return {
        "eps": {"precision": p0, "recall": r0, "f1-score": f0, "support": 10},
        "xi": {"precision": p1, "recall": r1, "f1-score": f1, "support": 10},
        "accuracy": 0.5,
        "macro avg": {"precision": 0.5, "recall": 0.5, "f1-score": 0.5, "support": 20},
        "weighted avg": {"precision": 0.5, "recall": 0.5, "f1-score": 0.5, "support": 20},
    }


def write_json(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def write_png(path: Path, arr) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(arr, np.uint8)).save(path)
    return path


def make_train_run(root: Path, name: str = "train_run", dataset: str = "symbols", drop_val: bool = False) -> Path:
    run = root / name
    metrics = {
        "train": {"accuracy": 0.82025, "n": 20, "report": _report(0.76, 0.74, 0.75, 0.80, 0.87, 0.83),
                  "confusion": [[7, 3], [1, 9]]},
        "val": {"accuracy": 0.76, "n": 20, "report": _report(0.67, 0.66, 0.66, 0.73, 0.78, 0.75),
                "confusion": [[7, 3], [2, 8]]},
        "test": {"accuracy": 0.75, "n": 20, "report": _report(0.63, 0.59, 0.61, 0.76, 0.74, 0.75),
                 "confusion": [[6, 4], [1, 9]]},
    }
    if drop_val:
        del metrics["val"]
    write_json(run / "metrics.json", metrics)
    write_json(run / "result.json", {
        "kind": "train_result", "name": name, "model_path": "model.keras",
        "dataset": {"name": dataset, "params": {"seed": 0}}, "data_root": "data",
        "class_names": CLASSES, "image_shape": [8, 8, 1], "metrics": {}, "run_dir": ".", "config": {},
    })
    write_json(run / "config.json", {"name": name})
    return run


def make_retrain_run(root: Path, train_run: Path, name: str = "retrain_run", items: int = 2,
                     with_images: bool = True) -> Path:
    run = root / name
    sel_dir = root / f"{name}_selection"
    sel_items = []
    for k in range(items):
        idx = f"train_{k:05d}"
        mask = np.zeros((8, 8), np.uint8)
        mask[:4, :4] = 255
        write_png(sel_dir / "masks" / f"{idx}.png", mask)
        sel_items.append({"index": idx, "mask": f"masks/{idx}.png", "cam_class": k % 2, "note": ""})
    write_json(sel_dir / "selection.json", {"train_result": str(train_run / "result.json"), "items": sel_items})
    write_json(run / "config.json", {"name": name, "selection": str(sel_dir / "selection.json")})
    methods = {}
    for m, acc in (("continued", (0.8735, 0.76, 0.72)), ("pasa", (0.85, 0.78, 0.75))):
        probs = {f"train_{k:05d}": {"before": [0.48, 0.52], "after": [0.99, 0.01]} for k in range(items)}
        methods[m] = {
            "accuracy": dict(zip(("train", "val", "test"), acc)),
            "report": {"train": _report(0.79, 0.69, 0.74, 0.89, 0.72, 0.79),
                       "val": _report(0.71, 0.65, 0.68, 0.71, 0.57, 0.63),
                       "test": _report(0.70, 0.63, 0.66, 0.65, 0.53, 0.58)},
            "in_mask_cam_energy": {"selected": {"before": 0.6, "after": 0.2}, "heldout": {"before": 0.5, "after": 0.4}},
            "selected_probabilities": probs,
            "step_seconds": 0.15,
        }
        if with_images:
            for k in range(items):
                idx = f"train_{k:05d}"
                for when, val in (("before", 50), ("after", 200)):
                    write_png(run / "cams" / m / f"{idx}_{when}.png", np.full((8, 8, 3), val, np.uint8))
    write_json(run / "summary.json", {"base": {"accuracy": {"train": 0.82025, "val": 0.76, "test": 0.75}},
                                      "methods": methods})
    lines = []
    for m in methods:
        for it in range(10):
            lines.append({"method": m, "iteration": it, "ce": 1.0 / (it + 1), "penalty": 0.5 / (it + 1),
                          "total": 1.5 / (it + 1),
                          "selected_p_true": {f"train_{k:05d}": 0.5 + 0.04 * it for k in range(items)},
                          **({"val_accuracy": 0.7 + 0.01 * it} if it % 5 == 0 else {})})
    (run / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    return run
