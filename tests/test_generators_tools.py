"""image_generator.preview and image_generator.evaluate: the pure parts, with values."""
from __future__ import annotations

import numpy as np

from image_generator import registry
from image_generator.evaluate import evaluate_generators, format_table
from image_generator.preview import preview_grid, save_png


def _data():
    images = np.full((2, 8, 8, 1), 50, np.uint8)
    masks = np.zeros((2, 8, 8), np.uint8)
    masks[:, 2:6, 2:6] = 255
    return images, masks


def test_preview_grid_layout_and_failure_frame(tmp_path):
    images, masks = _data()
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
    images, masks = _data()
    res = evaluate_generators({"telea": registry.get("telea"), "noise": registry.get("noise", low=50, high=50)},
                              images, masks, fills=3, seed=0)
    assert res["telea"]["diversity"] == 0.0
    assert res["telea"]["mae"] <= 3.0          # flat image: Telea reconstructs it
    assert res["noise"]["mae"] == 0.0          # constant "noise" equal to the image
    assert "| telea |" in format_table(res)
