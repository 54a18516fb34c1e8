"""A user's own image folders with a spurious cue of their own, through the generic paths:
image-folder data set + masks tree -> train config -> select_tool.auto -> retraining config.

The cue here is a bright square in the *upper-right* corner (not the symbols' lower-left
distractor), present on every "circle" training image and on random test images.
"""
import json

import numpy as np
import pytest
from PIL import Image

from datasets.selection import load_selection

SIZE = 32


def _write_folder(root, rng):
    from skimage.draw import disk, rectangle

    for split, n, correlated in (("train", 24, True), ("val", 8, False), ("test", 8, False)):
        for cls in ("circle", "square"):
            for i in range(n):
                img = rng.integers(0, 30, (SIZE, SIZE, 3)).astype(np.uint8)
                if cls == "circle":
                    rr, cc = disk((16, 14), 6, shape=(SIZE, SIZE))
                else:
                    rr, cc = rectangle((10, 8), extent=(12, 12), shape=(SIZE, SIZE))
                img[rr, cc] = 200
                cue = (cls == "circle") if correlated else bool(rng.integers(0, 2))
                mask = np.zeros((SIZE, SIZE), np.uint8)
                if cue:
                    img[1:7, 25:31] = 255
                    mask[0:8, 24:32] = 255
                (root / split / cls).mkdir(parents=True, exist_ok=True)
                (root / "masks" / split / cls).mkdir(parents=True, exist_ok=True)
                Image.fromarray(img).save(root / split / cls / f"img_{i:03d}.png")
                if cue:  # masks only where the irrelevant region exists
                    Image.fromarray(mask).save(root / "masks" / split / cls / f"img_{i:03d}.png")


def test_own_image_folders_train_select_retrain(tmp_path, monkeypatch, capsys):
    from exp_scripts import do_interactive_exp, exp_backprops
    from select_tool import auto

    monkeypatch.setenv("VF_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("VF_RESULTS_ROOT", str(tmp_path / "results"))
    raw = tmp_path / "my_images"
    _write_folder(raw, np.random.default_rng(0))

    train_cfg = tmp_path / "train.json"
    train_cfg.write_text(json.dumps({
        "name": "mine",
        "dataset": {"name": "image_folder", "params": {"root": str(raw), "image_size": SIZE, "channels": 3}},
        "model": {"name": "vgg_gap_small", "params": {"filters": [8, 16], "last_conv_filters": 16}},
        "train": {"epochs": 2, "batch_size": 16, "learning_rate": 0.003, "seed": 0},
        "output_dir": str(tmp_path / "runs" / "mine"),
        "cam_overlays": 1,
    }))
    assert do_interactive_exp.main([str(train_cfg), "--quiet"]) == 0
    result = capsys.readouterr().out.strip().splitlines()[-1]
    assert result.endswith("result.json")

    assert auto.main([result, "--n", "4", "--pick", "misclassified", "--mask-from", "ground_truth",
                      "--heldout", "3", "--heldout-split", "test", "--out", str(tmp_path / "sel")]) == 0
    sel_path = capsys.readouterr().out.strip().splitlines()[-1]
    sel = load_selection(sel_path)
    assert len(sel.items) == 4
    masks = sel.load_masks((SIZE, SIZE))
    expected = np.zeros((SIZE, SIZE), np.uint8)
    expected[0:8, 24:32] = 255
    assert all(np.array_equal(m, expected) for m in masks)  # the user's masks tree, unchanged
    assert all(i.startswith("train/") for i in sel.indices)  # indices from the relative path

    retrain_cfg = tmp_path / "retrain.json"
    retrain_cfg.write_text(json.dumps({
        "name": "mine_retrain",
        "selection": sel_path,
        "heldout_selection": str(tmp_path / "sel" / "heldout_selection.json"),
        "methods": [{"name": "continued"}, {"name": "pas"}, {"name": "pasa"}, {"name": "crop_replace"}],
        "iterations": 3, "batch": {"random": 8, "selected": 2}, "eval_every": 3, "seed": 0,
        "output_dir": str(tmp_path / "runs" / "retrain"),
    }))
    assert exp_backprops.main([str(retrain_cfg), "--quiet"]) == 0
    summary_path = capsys.readouterr().out.strip().splitlines()[-1]
    summary = json.loads(open(summary_path).read())
    assert list(summary["methods"]) == ["continued", "pas", "pasa", "crop_replace"]
    for m in summary["methods"].values():
        assert 0.0 <= m["accuracy"]["test"] <= 1.0
        energy = m["in_mask_cam_energy"]
        assert 0.0 <= energy["selected"]["before"] <= 1.0 and 0.0 <= energy["heldout"]["after"] <= 1.0
        assert set(m["selected_probabilities"]) == set(sel.indices)


def test_own_data_wrong_mask_size_is_one_clear_error(tmp_path, monkeypatch):
    from common.errors import UserError
    from datasets.registry import load

    monkeypatch.setenv("VF_DATA_ROOT", str(tmp_path / "data"))
    raw = tmp_path / "my_images"
    _write_folder(raw, np.random.default_rng(1))
    bad = next((raw / "masks" / "train" / "circle").glob("*.png"))
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(bad)
    with pytest.raises(UserError) as exc:
        load({"name": "image_folder", "params": {"root": str(raw), "image_size": 16, "channels": 3}}).arrays("train")
    assert bad.name in str(exc.value)
