"""The cue families of the shortcut suite (datasets.cues): pixel checksums of rendered images
pinned for every family (so a refactor of the drawing code is byte-identical), and the
registry's contract."""
from __future__ import annotations

import hashlib
import itertools

import numpy as np
import pytest

from datasets import suite_params as sp
from datasets import suite_render as sr

#: (parameters, sha256 prefix of image+clean+mask+label+cue_class of the first 6 train and
#: 6 test images) - generator version 1; a changed digest means every stored set changes
PINNED = [
    (dict(content="digits", cue="patch", channels=1, image_size=64, difficulty="medium"), "55bc43d43f3330a2"),
    (dict(content="shapes", cue="patch", channels=3, image_size=96, difficulty="hard", seed=3), "8e0f5be9fef8f67c"),
    (dict(content="glyphs", cue="text", channels=3, image_size=64, difficulty="medium"), "f6ecec101cec5050"),
    (dict(content="digits", cue="text", channels=1, image_size=48, difficulty="easy", seed=1), "b48dadeba4b0f4a3"),
    (dict(content="shapes", cue="background", channels=3, image_size=64, difficulty="medium"), "fc9486dec553ca0d"),
    (dict(content="glyphs", cue="background", channels=1, image_size=40, difficulty="hard", seed=2),
     "abccffc3cb4c5fd0"),
    (dict(content="glyphs", cue="frame", channels=1, image_size=64, difficulty="medium"), "5a9af6fd4476ea4b"),
    (dict(content="digits", cue="frame", channels=3, image_size=72, difficulty="easy", seed=5), "98a701d6740d3f8f"),
]


def _digest(params: sp.SuiteParams) -> str:
    h = hashlib.sha256()
    for split in ("train", "test"):
        for _, ex in itertools.islice(sr.iter_split(params, split), 6):
            for a in (ex.image, ex.clean, ex.mask):
                h.update(np.ascontiguousarray(a).tobytes())
            h.update(bytes([ex.label, ex.cue_class]))
    return h.hexdigest()[:16]


@pytest.mark.parametrize("values,digest", PINNED, ids=[f"{v['cue']}-{v['content']}-{v['channels']}ch-{v['image_size']}"
                                                      for v, _ in PINNED])
def test_rendered_images_are_byte_identical_to_the_pinned_digests(values, digest):
    params = sp.SuiteParams(**values, n_train=8, n_val=4, n_test=8)
    assert _digest(params) == digest
