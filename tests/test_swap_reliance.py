"""Cue swaps, the reliance metric, the wrong-reason score and feedback propagation,
on hand-built images, models and activations."""
import numpy as np
import pytest

from classification_models.propagation import grid_to_image, precision_recall, propagate_grid, rank_filters
from common.errors import UserError
from retraining.metrics import cue_reliance, wrong_reason_score
from image_generator.swap import cue_swap

C, S = 4, 16
SHADES = np.array([40, 100, 160, 220])


def _images(n, seed=0, corner_random=False):
    """Class = bar row (object); cue = a 4×4 patch whose shade is an independent class."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % C
    cue = rng.integers(0, C, n)
    x = np.full((n, S, S, 1), 10, np.uint8)
    m = np.zeros((n, S, S), np.uint8)
    for i in range(n):
        x[i, 2 + 2 * y[i], 5:15, 0] = 250
        r0, c0 = (12, 0) if not corner_random else [(12, 0), (0, 0), (0, 12), (12, 12)][rng.integers(4)]
        x[i, r0:r0 + 4, c0:c0 + 4, 0] = SHADES[cue[i]]
        m[i, r0:r0 + 4, c0:c0 + 4] = 255
    return x, y, m, cue


class _Reader:
    """A 'model' that reads either the cue patch or the object bar."""

    def __init__(self, what):
        self.what = what

    def predict_proba(self, x):
        x = np.asarray(x, np.float64)[..., 0]
        if self.what == "cue":
            vals = x[:, 12:, :4].mean(axis=(1, 2))  # the lower-left patch
            cls = np.abs(vals[:, None] - SHADES[None]).argmin(1)
        else:
            cls = np.array([int(np.argmax([a[2 + 2 * c, 5:15].mean() for c in range(C)])) for a in x])
        return np.eye(C)[cls]


def test_swap_takes_the_region_from_another_class_and_keeps_the_rest():
    x, y, m, _ = _images(40)
    res = cue_swap(images=x, masks=m, labels=y, donor_images=x, donor_masks=m, donor_labels=y,
                   rng=np.random.default_rng(0), exclude_same=np.arange(40))
    assert (y[res.donors] != y).all() and (res.iou == 1.0).all()
    out = res.images
    np.testing.assert_array_equal(out[m == 0], x[m == 0])  # outside the mask: unchanged
    for i in range(40):  # inside: exactly the donor's pixels (same region, fixed place)
        np.testing.assert_array_equal(out[i][m[i] > 0], x[res.donors[i]][m[i] > 0])


def test_swap_prefers_donors_with_the_cue_in_the_same_place_and_erases_the_own_cue():
    x, y, m, _ = _images(80, corner_random=True)
    res = cue_swap(images=x, masks=m, labels=y, donor_images=x, donor_masks=m, donor_labels=y,
                   rng=np.random.default_rng(1), candidates=16, exclude_same=np.arange(80))
    assert (res.iou == 1.0).mean() > 0.9  # best of 16 other-class images: same corner almost always
    mixed = np.flatnonzero(res.iou < 1.0)
    for i in mixed:  # own cue pixels not covered by the donor's cue were inpainted, not kept
        hole = (m[i] > 0) & (m[res.donors[i]] == 0)
        assert not np.array_equal(res.images[i][hole], x[i][hole])


def test_swap_with_donors_of_any_class_makes_the_cue_independent_of_the_label():
    """donors="any": the donor's class is spread over every class (its own included), never
    the image itself; "other" never gives the own class. An unknown choice is refused."""
    x, y, m, _ = _images(400, seed=5)
    res = cue_swap(images=x, masks=m, labels=y, donor_images=x, donor_masks=m, donor_labels=y,
                   rng=np.random.default_rng(0), exclude_same=np.arange(400), donors="any")
    assert (res.donors != np.arange(400)).all()
    same = (y[res.donors] == y).mean()
    assert abs(same - 1 / C) < 0.07  # own class about as often as any other
    counts = np.bincount(y[res.donors], minlength=C)
    assert counts.min() > 0.18 * 400
    np.testing.assert_array_equal(res.images[m == 0], x[m == 0])
    other = cue_swap(images=x, masks=m, labels=y, donor_images=x, donor_masks=m, donor_labels=y,
                     rng=np.random.default_rng(0), exclude_same=np.arange(400), donors="other")
    assert (y[other.donors] != y).all()
    with pytest.raises(UserError, match="donors must be 'other' or 'any', got 'same'"):
        cue_swap(images=x, masks=m, labels=y, donor_images=x, donor_masks=m, donor_labels=y,
                 rng=np.random.default_rng(0), donors="same")
    with pytest.raises(UserError, match="at least two classes"):
        cue_swap(images=x, masks=m, labels=np.zeros(400, int), donor_images=x, donor_masks=m,
                 donor_labels=np.zeros(400, int), rng=np.random.default_rng(0), donors="any")


def test_threshold_is_lowered_until_the_expert_cells_are_marked():
    from classification_models.propagation import calibrate_threshold

    grid = np.zeros((2, 4, 4))
    grid[:, :, :3] = 1.0  # 24 masked cells: a background-like mask
    prob = np.where(grid > 0, 0.9, 0.05)
    prob[:, :, 2] = 0.42  # the masked cells next to the object: less confident
    # at 0.8 only 16/24 = 0.67 are marked; 0.4 is the first step that marks them all
    assert calibrate_threshold(probability=prob, grid_masks=grid, start=0.8, min_recall=0.95) == pytest.approx(0.4)
    assert calibrate_threshold(probability=prob, grid_masks=grid, start=0.8, min_recall=0.6) == pytest.approx(0.8)
    assert calibrate_threshold(probability=prob, grid_masks=grid, start=0.8, min_recall=0.0) == pytest.approx(0.8)
    prob[:, :, 2] = 0.01  # never reachable: the floor
    assert calibrate_threshold(probability=prob, grid_masks=grid, start=0.8, min_recall=0.95) == pytest.approx(0.05)


def test_leave_one_out_scores_each_masked_image_by_a_model_fit_on_the_others():
    from classification_models.propagation import CellClassifier, leave_one_out_probability

    # 4 images of 2×2 cells, 3 filters: the masked cell fires filter 0, except on image 3,
    # where it fires filter 2 and some of filter 1 (a cue that looks different there);
    # unmasked cells fire filter 1
    acts = np.zeros((4, 2, 2, 3))
    acts[..., 1] = 3.0
    grid = np.zeros((4, 2, 2))
    grid[:, 0, 0] = 1.0
    acts[:, 0, 0] = [3.0, 0.0, 0.0]
    acts[3, 0, 0] = [0.0, 1.5, 3.0]
    inside = CellClassifier(activations=acts, grid_masks=grid).probability(acts)
    held_out = leave_one_out_probability(activations=acts, grid_masks=grid)
    # fit without image 3, its masked cell looks like nothing masked: far less probable
    assert held_out[3, 0, 0] < 0.5 < inside[3, 0, 0]
    # the others are scored by models that saw three images like them: still marked
    assert (held_out[:3, 0, 0] > 0.5).all() and (held_out[:, 1:, :] < 0.5).all()
    # a single image has no other to fit on: its in-sample probabilities
    np.testing.assert_allclose(leave_one_out_probability(activations=acts[:1], grid_masks=grid[:1]),
                               CellClassifier(activations=acts[:1], grid_masks=grid[:1]).probability(acts[:1]))


def test_position_features_let_the_cell_model_tell_a_fixed_place_cue_from_its_look_alikes():
    from classification_models.propagation import POSITION_GRID, CellClassifier, position_features

    pos = position_features((6, 6))
    assert pos.shape == (6, 6, POSITION_GRID ** 2) and pos.max() <= 1.0
    assert pos[-1, 0].argmax() == POSITION_GRID * (POSITION_GRID - 1)  # the bottom-left cell: the bottom-left centre
    # 8 images of 6×6 cells: the cue (lower-left cell) and parts of the object (two cells at a
    # random place inside) fire the same filter; the rest fires another
    rng = np.random.default_rng(0)
    acts = np.zeros((8, 6, 6, 2))
    acts[..., 1] = 2.0
    grid = np.zeros((8, 6, 6))
    for i in range(8):
        acts[i, 5, 0] = [2.0, 0.0]
        grid[i, 5, 0] = 1.0
        for r, c in rng.integers(1, 5, size=(2, 2)):
            acts[i, r, c] = [2.0, 0.0]
    test = acts[:1].copy()
    test[0, 2, 3] = [2.0, 0.0]  # a look-alike in the middle of a new image
    plain = CellClassifier(activations=acts, grid_masks=grid).probability(test)[0]
    placed = CellClassifier(activations=acts, grid_masks=grid, position=True).probability(test)[0]
    assert plain[5, 0] == pytest.approx(plain[2, 3])  # by its look alone, a cue cell is a cue cell anywhere
    assert placed[5, 0] > 0.8 and placed[2, 3] < 0.5 and (placed[..., :] <= placed[5, 0]).all()
    assert (np.delete(placed.reshape(-1), 5 * 6) < 0.5).all()


def _striped(n, seed):
    """Backgrounds of class-like stripes (the cue) with a thin ring (the object) at a random
    place; the mask is everything but the ring, as an expert paints a background."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:32, :32]
    x = np.zeros((n, 32, 32, 3), np.uint8)
    m = np.zeros((n, 32, 32), np.uint8)
    for i in range(n):
        period = int(rng.integers(3, 6))
        x[i] = np.where(((xx + yy) // period % 2)[..., None] == 0, [90, 90, 120], [60, 60, 80])
        cy, cx = rng.integers(10, 22, size=2)
        r = np.hypot(yy - cy, xx - cx)
        ring = (r > 5) & (r < 8)
        x[i][ring] = [230, 120, 40]
        m[i] = np.where(ring, 0, 255)
    return x, m


def test_pixel_segmenter_marks_a_background_around_a_thin_object():
    """Whole cells cannot follow a 3-px ring; the pixel segmenter does: nearly all of the
    background marked, nearly none of the object, on images it did not see."""
    from classification_models.propagation import PixelSegmenter

    x, m = _striped(8, seed=0)
    cell_prob = np.full((8, 8, 8), 0.5)  # the cell model says nothing useful here
    seg = PixelSegmenter(images=x[:4], masks=m[:4], cell_probability=cell_prob[:4], seed=0)
    marked = seg.probability(x[4:], cell_prob[4:]) > 0.5
    truth = m[4:] > 0
    assert (marked & truth).sum() / truth.sum() > 0.95  # background recall
    assert (marked & ~truth).sum() / (~truth).sum() < 0.05  # object pixels marked
    with pytest.raises(UserError, match="at least one masked image"):
        PixelSegmenter(images=x[:2], masks=np.zeros((2, 32, 32)), cell_probability=cell_prob[:2])
    # larger images are segmented at max_side and the probability comes back at full size
    big, big_m = np.repeat(np.repeat(x, 3, 1), 3, 2), np.repeat(np.repeat(m, 3, 1), 3, 2)
    seg = PixelSegmenter(images=big[:4], masks=big_m[:4], cell_probability=cell_prob[:4], max_side=32, seed=0)
    prob = seg.probability(big[4:], cell_prob[4:])
    assert prob.shape == (4, 96, 96)
    truth = big_m[4:] > 0
    assert ((prob > 0.5) & truth).sum() / truth.sum() > 0.9


def test_swap_needs_two_classes():
    x, y, m, _ = _images(8)
    with pytest.raises(UserError, match="at least two classes"):
        cue_swap(images=x, masks=m, labels=np.zeros(8, int), donor_images=x, donor_masks=m,
                 donor_labels=np.zeros(8, int), rng=np.random.default_rng(0))


def test_reliance_of_a_cue_reader_and_of_an_object_reader():
    x, y, m, _ = _images(400, seed=3)
    cue_model = cue_reliance(_Reader("cue"), images=x, labels=y, masks=m, seed=0)
    obj_model = cue_reliance(_Reader("object"), images=x, labels=y, masks=m, seed=0)
    # the donor is of another class but its cue is independent of its class: it differs
    # from the receiving image's cue (and flips a cue reader) with probability (C−1)/C
    assert cue_model["flip_rate"] == pytest.approx((C - 1) / C, abs=0.06)
    assert obj_model["flip_rate"] == 0.0 and obj_model["delta_p_true"] == 0.0 and obj_model["n"] == 400


def test_reliance_refuses_images_without_a_cue_region():
    x, y, m, _ = _images(6)
    m[2] = 0
    with pytest.raises(UserError, match="1 of 6 images have an empty mask"):
        cue_reliance(_Reader("cue"), images=x, labels=y, masks=m)


def test_wrong_reason_score_reference():
    att = np.zeros((2, 4, 4))
    att[0, :2, :2] = 1.0  # hot top-left; mean 0.25 -> binarised = the 2×2 block
    att[1] = np.arange(16).reshape(4, 4)  # normalised mean 0.5: the lower half is hot
    masks = np.zeros((2, 4, 4), np.uint8)
    masks[0, :2, :4] = 255  # covers the hot block and 4 cold pixels
    masks[1, :, 0] = 255  # column 0: rows 2, 3 hot
    wr = wrong_reason_score(attributions=att, masks=masks)
    assert wr.tolist() == [0.5, 0.5]
    assert np.isnan(wrong_reason_score(attributions=att[:1], masks=np.zeros((1, 4, 4)))[0])


def _acts(n, rng, cue_cells):
    """Filters 0, 1 fire on the cue cells; 2, 3 everywhere else (the object)."""
    a = rng.uniform(0, 0.05, (n, 4, 4, 5))
    for i, (r, c) in enumerate(cue_cells):
        a[i, r, c, 0] = 2.0
        a[i, r, c, 1] = 1.0
    a[..., 2] += 0.8
    a[:, 1:3, 1:3, 3] += 1.5
    a[..., 4] = 0.0  # a dead filter
    return a


def test_propagation_picks_the_filters_inside_the_masks_and_marks_their_cells_elsewhere():
    rng = np.random.default_rng(0)
    cells = [(3, 0), (0, 3), (3, 3)]
    acts = _acts(3, rng, cells)
    grid = np.zeros((3, 4, 4))
    for i, (r, c) in enumerate(cells):
        grid[i, r, c] = 1.0
    ranking = rank_filters(activations=acts, grid_masks=grid, top=3, min_share=0.5)
    assert ranking.chosen.tolist() == [0, 1]  # filter 2 is mostly outside; 4 is dead
    assert ranking.share[0] > 0.8 and ranking.share[4] == 0.0
    others = [(0, 0), (2, 1), (3, 2), (1, 3)]
    prop = propagate_grid(activations=_acts(4, rng, others), ranking=ranking, threshold=0.5)
    truth = np.zeros((4, 4, 4), bool)
    for i, (r, c) in enumerate(others):
        truth[i, r, c] = True
    np.testing.assert_array_equal(prop, truth)
    img = grid_to_image(prop, size=(16, 16))
    assert img.shape == (4, 16, 16) and set(np.unique(img)) == {0, 255}
    assert (img[0, :4, :4] == 255).all() and img[0].sum() == 16 * 255
    pr = precision_recall(predicted=img, truth=grid_to_image(truth, size=(16, 16)))
    assert pr["precision"] == 1.0 and pr["recall"] == 1.0 and pr["n_marked"] == 4


def test_propagation_bad_input():
    acts = np.ones((2, 4, 4, 5))
    with pytest.raises(UserError, match="at least one masked image"):
        rank_filters(activations=acts, grid_masks=np.zeros((2, 4, 4)))
    with pytest.raises(UserError, match=r"filters \(top\) must be in 1..5 .*got 9"):
        rank_filters(activations=acts, grid_masks=np.ones((2, 4, 4)), top=9)


def test_cell_classifier_marks_the_cells_that_look_like_the_masked_ones():
    from classification_models.propagation import CellClassifier

    rng = np.random.default_rng(1)
    cells = [(3, 0), (0, 3), (3, 3), (0, 0)]
    acts = _acts(4, rng, cells)
    grid = np.zeros((4, 4, 4))
    for i, (r, c) in enumerate(cells):
        grid[i, r, c] = 1.0
    model = CellClassifier(activations=acts, grid_masks=grid)
    others = [(2, 0), (1, 3), (3, 1)]
    prob = model.probability(_acts(3, rng, others))
    truth = np.zeros((3, 4, 4), bool)
    for i, (r, c) in enumerate(others):
        truth[i, r, c] = True
    np.testing.assert_array_equal(prob > 0.8, truth)
    with pytest.raises(UserError, match="at least one masked image"):
        CellClassifier(activations=acts, grid_masks=np.zeros((4, 4, 4)))


def test_counterfactual_selection_prefers_the_model_that_ignores_the_cue():
    """Validation carries the cue (cue = label): plain validation accuracy cannot tell a
    cue reader (weak penalty left the shortcut) from an object reader (strong penalty);
    accuracy on the cue-swapped copy picks the object reader."""
    from retraining.sweeps import best_row, selection_key

    x, y, m, _ = _images(200, seed=5)
    for i in range(200):  # validation with the shortcut: the patch shade encodes the label
        x[i, 12:16, 0:4, 0] = SHADES[y[i]]
    swapped = cue_swap(images=x, masks=m, labels=y, donor_images=x, donor_masks=m, donor_labels=y,
                       rng=np.random.default_rng(0), exclude_same=np.arange(200)).images
    rows = []
    for lam, reader in ((0.1, _Reader("cue")), (10.0, _Reader("object"))):
        rows.append({"lambda": lam,
                     "val_accuracy": float((reader.predict_proba(x).argmax(1) == y).mean()),
                     "val_swap_accuracy": float((reader.predict_proba(swapped).argmax(1) == y).mean())})
    assert rows[0]["val_accuracy"] == rows[1]["val_accuracy"] == 1.0  # plain validation: a tie
    assert rows[0]["val_swap_accuracy"] == 0.0 and rows[1]["val_swap_accuracy"] == 1.0
    assert selection_key(rows) == "val_swap_accuracy" and best_row(rows)["lambda"] == 10.0
    assert best_row([{k: v for k, v in r.items() if k != "val_swap_accuracy"} for r in rows])["lambda"] == 0.1


def test_the_held_out_check_scores_the_propagated_masks_and_warns_when_they_miss_the_cue(caplog):
    """The propagator's masks on the held-out masked images against the expert's masks
    there: half of each cue patch found -> recall 0.5 and a warning naming the share."""
    import logging
    import types

    from retraining.data import MaskedSet
    from retraining.propagate import heldout_check

    x, y, m, _ = _images(6)
    half = m.copy()
    half[:, :, 2:] = 0  # the left half of every 4×4 patch

    class _Half:
        def masks(self, clf, images):
            assert images.shape == x.shape
            return half

    held = MaskedSet(indices=[f"test_{i}" for i in range(6)], images=x, labels=y, masks=m, cam_classes=y)
    data = types.SimpleNamespace(heldout=held)
    with caplog.at_level(logging.WARNING, logger="retraining.propagate"):
        q = heldout_check(None, data, _Half())
    assert q["recall"] == 0.5 and q["precision"] == 1.0 and q["n_images"] == 6
    assert "cover only 50 % of the expert's masked pixels on the 6 held-out" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="retraining.propagate"):
        assert heldout_check(None, data, _Half(), expert=False)["recall"] == 0.5  # a control: scored, no warning
    assert caplog.text == ""
    empty = types.SimpleNamespace(heldout=MaskedSet(indices=[], images=x[:0], labels=y[:0], masks=m[:0],
                                                    cam_classes=y[:0]))
    assert heldout_check(None, empty, _Half()) is None
