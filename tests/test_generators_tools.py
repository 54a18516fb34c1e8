"""image_generator.preview and image_generator.evaluate: the pure parts, with values."""
from __future__ import annotations

import numpy as np

from image_generator import registry
from image_generator.evaluate import evaluate_generators, format_table
from common.images import save_png
from image_generator.preview import preview_grid


def _flat_images_square_masks():
    images = np.full((2, 8, 8, 1), 50, np.uint8)
    masks = np.zeros((2, 8, 8), np.uint8)
    masks[:, 2:6, 2:6] = 255
    return images, masks


def test_preview_grid_layout_and_failure_frame(tmp_path):
    images, masks = _flat_images_square_masks()
    fills = np.stack([images, np.full_like(images, 200)], axis=1)  # [2, 2, 8, 8, 1]
    ok = np.array([[False, True], [True, True]])
    g = preview_grid(images, masks, fills, ok, scale=1, gap=2)
    assert g.shape == (2 * 10 + 2, 4 * 10 + 2, 3)
    np.testing.assert_array_equal(g[2 + 4, 2 + 4], [50, 50, 50])            # original
    np.testing.assert_array_equal(g[2 + 4, 12 + 4], [152, 25, 25])          # mask tinted red
    np.testing.assert_array_equal(g[2 + 0, 12 + 0], [50, 50, 50])           # outside the mask untouched
    np.testing.assert_array_equal(g[2 + 4, 22 + 0], [255, 0, 0])            # failed fill framed
    np.testing.assert_array_equal(g[2 + 4, 32 + 0], [200, 200, 200])        # passing fill unframed
    big = preview_grid(images, masks, fills, ok, scale=3)
    assert big.shape == (g.shape[0] * 3, g.shape[1] * 3, 3)
    from PIL import Image

    path = save_png(tmp_path / "p.png", g)
    assert np.array_equal(np.asarray(Image.open(path)), g)


def test_evaluate_generators_values():
    images, masks = _flat_images_square_masks()
    res = evaluate_generators({"telea": registry.get("telea"), "noise": registry.get("noise", low=50, high=50)},
                              images, masks, fills=3, seed=0)
    assert res["telea"]["diversity"] == 0.0
    assert res["telea"]["mae"] <= 3.0          # flat image: Telea reconstructs it
    assert res["noise"]["mae"] == 0.0          # constant "noise" equal to the image
    assert "| telea |" in format_table(res)


def _tiny_ds():
    from datasets.base import ArrayDataset

    rng = np.random.default_rng(0)
    x = np.full((20, 16, 16, 1), 10, np.uint8)
    for i in range(20):
        r = int(rng.integers(1, 12))
        x[i, r:r + 3] = 240
    y = np.arange(20) % 2
    return ArrayDataset(["a", "b"], {"train": (x[:12], y[:12]), "val": (x[12:16], y[12:16]), "test": (x[16:], y[16:])})


def test_train_inpainter_cli_smoke(tmp_path, capsys, monkeypatch):
    from common.io import read_json
    from image_generator import train_inpainter

    monkeypatch.setattr(train_inpainter, "load_dataset_arg", lambda result, spec, root: _tiny_ds())
    assert train_inpainter.main(["--dataset-spec", "tiny", "--out", str(tmp_path / "inp"), "--smoke"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == str(tmp_path / "inp" / "inpainter.keras")
    cfg = read_json(tmp_path / "inp" / "config.json")
    assert cfg["params"]["steps"] == 30 and cfg["image_shape"] == [16, 16, 1]
    gen = registry.get("learned", model_path=out[-1])
    images = _tiny_ds().arrays("test").images
    masks = np.zeros(images.shape[:3], np.uint8)
    masks[:, 4:8, 4:8] = 255
    fill = gen.replace(images=images, masks=masks, seed=0)
    np.testing.assert_array_equal(fill[masks == 0], images[masks == 0])


def test_preview_cli_writes_grid(tmp_path, capsys, monkeypatch):
    from PIL import Image

    from common.images import write_mask
    from datasets.selection import SelectionItem, save_selection
    from image_generator import preview

    ds = _tiny_ds()
    items = []
    for idx in ("train_00001", "train_00003"):
        m = np.zeros((16, 16), np.uint8)
        m[2:9, 2:9] = 255
        write_mask(tmp_path / "sel" / "masks" / f"{idx}.png", m)
        items.append(SelectionItem(idx, f"masks/{idx}.png", 0))
    sel = save_selection(tmp_path / "sel" / "selection.json", "../result.json", items)

    class FakeResult:
        path, dataset_spec = "r.json", {"name": "arrays", "params": {}}

        def load_dataset(self, root=None):
            return ds

    monkeypatch.setattr(preview, "load_train_result", lambda path: FakeResult())
    code = preview.main([str(sel), "--generator", "crop_replace", "--n", "3", "--scale", "1",
                         "--out", str(tmp_path / "p.png")])
    assert code == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == str(tmp_path / "p.png")
    assert out[0].startswith("all 6 fills differ")
    img = np.asarray(Image.open(tmp_path / "p.png"))
    assert img.shape == (2 * 18 + 2, 5 * 18 + 2, 3)
