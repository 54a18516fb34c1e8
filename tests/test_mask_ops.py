"""Mask resizing to the activation grid and the feedback-quality controls."""
import numpy as np
import pytest

from classification_models import mask_ops


def test_area_fraction_exact_on_divisible_grid():
    m = np.zeros((8, 8), np.uint8)
    m[0:4, 0:2] = 255  # half of cell (0,0) in a 2×2 grid? cell is 4×4 -> 8/16
    f = mask_ops.area_fraction(masks=m, grid=(2, 2))
    np.testing.assert_allclose(f[0], [[0.5, 0.0], [0.0, 0.0]])


def test_area_fraction_non_divisible_grid():
    m = np.ones((5, 5), np.uint8) * 255
    f = mask_ops.area_fraction(masks=m, grid=(2, 2))
    np.testing.assert_allclose(f, 1.0, rtol=1e-6)
    m = np.zeros((3, 3), np.uint8)
    m[0, 0] = 255  # pixel 0 is 2/3 of cell 0's span 1.5 -> 1/1.5 per axis -> (2/3)^2
    f = mask_ops.area_fraction(masks=m, grid=(2, 2))
    assert f[0, 0, 0] == pytest.approx(4 / 9, rel=1e-5)
    assert f[0, 1, 1] == 0.0


def test_resize_modes_differ_on_unaligned_shortcut():
    # a shortcut covering 30 % of a neighbouring cell: area@0.5 misses it (the leak),
    # area@0.25 and soft catch it, dilate catches one more ring
    m = np.zeros((16, 16), np.uint8)
    m[0:4, 0:5] = 255  # cell (0,0) full, cell (0,1) 1/4 covered (4×1 of 4×4)
    area50 = mask_ops.resize_masks(masks=m, grid=(4, 4), mode="area", threshold=0.5)[0]
    area0 = mask_ops.resize_masks(masks=m, grid=(4, 4), mode="area", threshold=0.0)[0]
    soft = mask_ops.resize_masks(masks=m, grid=(4, 4), mode="soft")[0]
    dil = mask_ops.resize_masks(masks=m, grid=(4, 4), mode="dilate")[0]
    assert area50.sum() == 1 and area50[0, 0] == 1
    assert area0.sum() == 2 and area0[0, 1] == 1
    assert soft[0, 1] == pytest.approx(0.25) and soft[0, 0] == 1.0
    assert dil.sum() == 6 and dil[1, :3].sum() == 3  # dilated by one stride (4 px)
    for mode in mask_ops.RESIZE_MODES:
        assert mask_ops.resize_masks(masks=np.zeros((16, 16)), grid=(4, 4), mode=mode).sum() == 0
    with pytest.raises(ValueError, match="valid: area, soft, dilate"):
        mask_ops.resize_masks(masks=m, grid=(4, 4), mode="nearest")


def test_mask_variants():
    rng = np.random.default_rng(0)
    m = np.zeros((2, 10, 10), np.uint8)
    m[0, 2:6, 1:3] = 255
    m[1, 7, 0:8] = 255
    inv = mask_ops.mask_variant(m, variant="inverted", rng=rng)
    assert np.all((inv > 0) == (m == 0))
    rnd = mask_ops.mask_variant(m, variant="random", rng=np.random.default_rng(1))
    assert [int((r > 0).sum()) for r in rnd] == [8, 8]
    inc = mask_ops.mask_variant(m, variant="incomplete", rng=rng)
    assert [int((r > 0).sum()) for r in inc] == [4, 4]
    assert np.all(inc[m == 0] == 0)  # only removes
    np.testing.assert_array_equal(mask_ops.mask_variant(m, variant="none", rng=rng), m)
    with pytest.raises(ValueError, match="inverted"):
        mask_ops.mask_variant(m, variant="flip", rng=rng)
