"""Real-photograph backdrops of the shortcut suite and the cue families drawn on them."""
import numpy as np
import pytest

from datasets import suite_params as sp
from datasets import suite_render as sr
from datasets.suite_photos import GRAY_RANGE, RGB_RANGE, photo_backdrop
from common.errors import UserError


@pytest.mark.parametrize("channels,rng_range", [(1, GRAY_RANGE), (3, RGB_RANGE)])
def test_photo_backdrop_is_seeded_and_in_the_plain_range(channels, rng_range):
    a = photo_backdrop(size=48, channels=channels, rng=np.random.default_rng(4))
    b = photo_backdrop(size=48, channels=channels, rng=np.random.default_rng(4))
    assert a.shape == (48, 48, channels) and np.array_equal(a, b)
    assert rng_range[0] <= a.min() and a.max() <= rng_range[1] and a.std() > 1.0  # a photograph, not a flat shade


@pytest.mark.parametrize("cue", ["barcode", "ruler", "watermark", "patch"])
def test_cues_on_photographs_keep_the_contract(cue):
    params = sp.SuiteParams(content="shapes", cue=cue, channels=3, image_size=96, backdrop="photo",
                            n_train=8, n_val=4, n_test=8)
    plain = sp.SuiteParams(content="shapes", cue=cue, channels=3, image_size=96, n_train=8, n_val=4, n_test=8)
    for i in range(4):
        a, b = (sr.render_example(params, "train", i, label=i % 4, cue_class=c) for c in (1, 2))
        assert np.array_equal((a.image != a.clean).any(axis=2), a.mask == 255) and np.array_equal(a.mask, b.mask)
        assert not np.array_equal(a.image[a.mask == 255], b.image[b.mask == 255])
        assert not np.array_equal(a.clean, sr.render_example(plain, "train", i, label=i % 4, cue_class=1).clean)
    with pytest.raises(UserError, match="backdrop must be one of plain, photo, got 'sky'"):
        sp.SuiteParams(backdrop="sky")
