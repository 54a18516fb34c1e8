"""Zoom/pan coordinate mapping and pane rendering of the mask tool (no Tk)."""
import math

import numpy as np
import pytest

from select_tool.view.render import BACKGROUND, MASK_COLOR, compose, compose_view, jet_lut
from select_tool.view.viewport import MAX_ZOOM, Viewport
from tests.fixtures_state import capsule_reference, make_state


def test_fit_centres_and_downscales_large_images():
    vp = Viewport((32, 64), (400, 300))
    assert vp.fit_mode and vp.zoom == pytest.approx(6.25)
    assert (vp.ox, vp.oy) == pytest.approx((0.0, 50.0))
    big = Viewport((1024, 1024), (400, 300))
    assert big.zoom == pytest.approx(300 / 1024) and big.ox == pytest.approx(50.0)
    rows, cols, row_ok, col_ok = big.sample_indices()
    assert rows.shape == (300,) and cols.shape == (400,) and row_ok.all() and col_ok.sum() == 300
    assert rows.max() >= 1020 and rows.min() <= 2 and (np.diff(rows) > 0).all()


def test_to_image_and_to_canvas_are_inverse_and_agree_with_the_drawn_pixel():
    vp = Viewport((20, 30), (333, 250))
    vp.zoom_at(1.7, 100, 90)
    vp.pan(-13.5, 7.25)
    for x, y in [(0, 0), (17, 33), (120.5, 80.25), (332, 249)]:
        r, c = vp.to_image(x, y)
        assert vp.to_canvas(r, c) == pytest.approx((x, y))
        # the pixel a click paints (nearest centre) is the pixel shown under the cursor
        assert vp.pixel_at(int(x), int(y)) == (math.floor(r + 0.5), math.floor(c + 0.5))
    rows, cols, _, _ = vp.sample_indices()
    for x, y in [(5, 9), (200, 100)]:
        pr, pc = vp.pixel_at(x, y)
        assert (rows[y], cols[x]) == (min(max(pr, 0), 19), min(max(pc, 0), 29))


def test_zoom_keeps_the_point_under_the_mouse_and_is_clamped():
    vp = Viewport((50, 50), (200, 200))
    before = vp.to_image(60, 140)
    vp.zoom_at(1.25 ** 5, 60, 140)
    assert not vp.fit_mode
    assert vp.to_image(60, 140) == pytest.approx(before)
    for _ in range(60):
        vp.zoom_at(2.0, 10, 10)
    assert vp.zoom == MAX_ZOOM
    for _ in range(60):
        vp.zoom_at(0.5, 10, 10)
    assert vp.zoom == pytest.approx(vp.min_zoom)
    with pytest.raises(ValueError):
        vp.zoom_at(0, 1, 1)


def test_pan_keeps_part_of_the_image_visible_and_resize_follows():
    vp = Viewport((40, 40), (200, 200))
    vp.pan(10_000, -10_000)
    assert vp.ox <= 200 - 24 and vp.oy >= 24 - 40 * vp.zoom
    vp.fit()
    vp.set_pane(400, 100)  # fit mode: refits
    assert vp.fit_mode and vp.zoom == pytest.approx(2.5)
    vp.zoom_at(2, 200, 50)
    centre = vp.to_image(199.5, 49.5)
    vp.set_pane(600, 300)  # zoomed: keeps the centre point
    assert vp.zoom == pytest.approx(5.0) and vp.to_image(299.5, 149.5) == pytest.approx(centre)
    vp.set_zoom(3)
    assert vp.ox == pytest.approx(300 - 60) and not vp.fit_mode


@pytest.mark.parametrize("zoom,pan", [(1.0, (0, 0)), (2.7, (-31.3, 12.9)), (0.43, (5, 5)), (11.0, (-100, -80))])
def test_strokes_through_the_viewport_paint_exactly_the_capsule(tmp_path, zoom, pan):
    s = make_state(tmp_path)
    s.view.brush_size = 3
    vp = Viewport(s.image_hw, (160, 140))
    vp.set_zoom(zoom)
    vp.pan(*pan)
    canvas_pts = [vp.to_canvas(3, 2), vp.to_canvas(9.2, 14.6), vp.to_canvas(14, 4)]
    pts = [vp.to_image(round(x), round(y)) for x, y in canvas_pts]  # mouse events come in whole pixels
    s.edit.begin_stroke(*pts[0])
    for p in pts[1:]:
        s.edit.extend_stroke(*p)
    s.edit.end_stroke()
    np.testing.assert_array_equal(s.mask(), capsule_reference(s.image_hw, pts, 1.5))


def test_compose_view_matches_compose_at_integer_zoom_and_draws_background():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(6, 5, 3), dtype=np.uint8)
    cam = rng.random((6, 5)).astype(np.float32)
    vp = Viewport((6, 5), (15, 18))
    vp.set_zoom(3)
    out = compose_view(img, viewport=vp, cam=cam, opacity=0.4)
    ref = compose(img, cam=cam, mask=None, opacity=0.4, zoom=3, cam_normalized=True)
    np.testing.assert_array_equal(out, ref)
    vp.ox += 4  # as a pan would (pan() clamps only when the image leaves the pane)
    shifted = compose_view(img, viewport=vp, cam=None)
    assert (shifted[:, :4] == BACKGROUND).all()
    np.testing.assert_array_equal(shifted[:, 4:], np.repeat(np.repeat(img, 3, 0), 3, 1)[:, :11])


def test_mask_is_magenta_hatched_with_a_solid_outline():
    img = np.full((10, 10), 100, np.uint8)
    mask = np.zeros((10, 10), np.uint8)
    mask[2:8, 2:8] = 255
    vp = Viewport((10, 10), (40, 40))
    out = compose_view(img, viewport=vp, cam=None, mask=mask, mask_opacity=0.4)
    assert tuple(out[8, 20]) == MASK_COLOR  # the outline (first row of the mask)
    inner = out[12:28, 12:28].reshape(-1, 3)
    assert len({tuple(v) for v in inner.tolist()}) == 2  # two stripe strengths
    assert (inner[:, 0] > inner[:, 1]).all() and (inner[:, 2] > inner[:, 1]).all()
    assert tuple(out[2, 2]) == (100, 100, 100)
    assert not any((jet_lut() == np.array(MASK_COLOR)).all(axis=1))  # never a jet colour
