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


def test_a_class_too_small_to_stratify_says_why_in_one_line():
    with pytest.raises(UserError, match=r"^cannot split 4 images stratified by class for test_fraction 0.5 \(2 items\): "
                                        r"class 1 has a single item .*\(items per class: \{0: 3, 1: 1\}\); add images "
                                        r"or change test_fraction$"):
        stratified_split(np.array([0, 0, 0, 1]), val_fraction=0.0, test_fraction=0.5, seed=0, what="images")


@pytest.mark.parametrize("val, test, why", [
    (0.0, 0.1, r"1 items drawn cannot hold one of each of the 3 classes"),
    (0.0, 0.9, r"the 1 items left cannot hold one of each of the 3 classes"),
    (0.1, 0.0, r"1 items drawn cannot hold one of each of the 3 classes.*change val_fraction"),
])
def test_too_few_items_for_the_classes_name_the_fraction(val, test, why):
    labels = np.repeat([0, 1, 2], [3, 3, 4])
    with pytest.raises(UserError, match=why):
        stratified_split(labels, val_fraction=val, test_fraction=test, seed=0)
