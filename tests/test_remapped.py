"""The upper bound K's data view (``datasets.remapped``): train + val + part of test, the rest held out."""
import numpy as np
import pytest

from datasets.remapped import upper_bound_view
from tests.fixtures_models import tiny_dataset


def test_upper_bound_split_is_disjoint_and_complete():
    ds = tiny_dataset(n_train=30, n_val=12, n_test=21)
    view, info = upper_bound_view(ds, test_fraction=0.4, seed=7)
    test_idx = set(ds.arrays("test").indices)
    moved, held = set(info["train_from_test"]), set(info["heldout_test"])
    assert len(moved) == 8 and len(held) == 13  # round(0.4 * 21)
    assert moved.isdisjoint(held) and moved | held == test_idx
    train_idx = list(view.arrays("train").indices)
    assert len(train_idx) == 30 + 12 + 8 == len(set(train_idx))
    assert set(train_idx) == set(ds.arrays("train").indices) | set(ds.arrays("val").indices) | moved
    assert set(view.arrays("test").indices) == held
    assert set(view.arrays("test").indices).isdisjoint(train_idx)
    assert view.available_splits() == ["train", "test"]
    # images and labels follow their indices
    for idx in list(held)[:3]:
        pos = list(view.arrays("test").indices).index(idx)
        img, lab = ds.get(idx)
        np.testing.assert_array_equal(view.arrays("test").images[pos], img)
        assert view.arrays("test").labels[pos] == lab
    again, info2 = upper_bound_view(ds, test_fraction=0.4, seed=7)
    assert info2 == info
    other = upper_bound_view(ds, test_fraction=0.4, seed=8)[1]
    assert other["heldout_test"] != info["heldout_test"]
    with pytest.raises(Exception, match="must leave at least one on each side"):
        upper_bound_view(ds, test_fraction=0.01, seed=0)
