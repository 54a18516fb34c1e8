"""Stratified train / val / test split ids (``common.splits``)."""
import numpy as np
import pytest

from common.errors import UserError
from common.splits import stratified_split


def test_sizes_class_shares_and_seed():
    labels = np.repeat([0, 1, 2], [40, 30, 30])
    ids = stratified_split(labels, val_fraction=0.2, test_fraction=0.3, seed=3)
    assert [int((ids == k).sum()) for k in range(3)] == [50, 20, 30]
    assert np.bincount(labels[ids == 2], minlength=3).tolist() == [12, 9, 9]  # 30 % of each class
    assert np.bincount(labels[ids == 1], minlength=3).tolist() == [8, 6, 6]
    np.testing.assert_array_equal(ids, stratified_split(labels, val_fraction=0.2, test_fraction=0.3, seed=3))
    assert not np.array_equal(ids, stratified_split(labels, val_fraction=0.2, test_fraction=0.3, seed=4))


def test_zero_fractions_draw_nothing():
    labels = np.repeat([0, 1], 5)
    ids = stratified_split(labels, val_fraction=0.0, test_fraction=0.4, seed=0)
    assert sorted(set(ids.tolist())) == [0, 2] and (ids == 2).sum() == 4
    assert (stratified_split(labels, val_fraction=0.0, test_fraction=0.0, seed=0) == 0).all()


def test_a_class_too_small_to_stratify_names_the_counts():
    with pytest.raises(UserError, match=r"cannot draw 2 of 4 images stratified by class \(items per class: \{0: 3, 1: 1\}\)"):
        stratified_split(np.array([0, 0, 0, 1]), val_fraction=0.0, test_fraction=0.5, seed=0, what="images")
