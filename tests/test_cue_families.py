"""The cue families of the shortcut suite (datasets.cues): pixel digests of rendered images
pinned for the built-in families (a refactor of the drawing code stays byte-identical), and
the contract of ``datasets.cues.base`` checked for every registered family."""
from __future__ import annotations

import hashlib
import itertools

import numpy as np
import pytest

from common.errors import UserError
from datasets import suite_params as sp
from datasets.cues import CUE_FAMILIES, cue_family
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


#: the ``cue`` entry of suite.json for two of the pinned sets
PINNED_DESCRIPTIONS = {
    "patch": (dict(content="digits", channels=1, image_size=64),
              {"kind": "patch", "encodes": {"0": 100, "1": 145, "4": 190, "7": 235}, "patch_px": 6,
               "corners": "random, 1 px from the border"}),
    "text": (dict(content="glyphs", channels=3, image_size=64),
             {"kind": "text", "encodes": {"A": "SN-####", "E": "ID-####", "K": "QC-####", "R": "LOT-####"},
              "band_px": 11, "where": "bottom"}),
    "frame": (dict(content="digits", channels=3, image_size=72),
              {"kind": "frame", "encodes": {"0": [230, 30, 30], "1": [30, 200, 40], "4": [40, 90, 255],
                                            "7": [250, 220, 0]}, "frame_px": 4}),
    "background": (dict(content="shapes", channels=3, image_size=64),
                   {"kind": "background", "encodes": {"circle": "stripes at 0 degrees",
                                                      "cross": "stripes at 45 degrees",
                                                      "square": "stripes at 90 degrees",
                                                      "triangle": "stripes at 135 degrees"},
                    "where": "everything but the pixels the object touches"}),
}


@pytest.mark.parametrize("cue", sorted(PINNED_DESCRIPTIONS))
def test_suite_json_cue_entry_is_pinned(cue):
    values, expected = PINNED_DESCRIPTIONS[cue]
    assert sr.cue_description(sp.SuiteParams(cue=cue, **values)) == expected


# ----------------------------------------------------------------------------- the contract, every family
def _scene_pair(name: str, channels: int):
    """Renders image 3 of a small set with cue ``name`` for cue classes 1 and 2."""
    family = CUE_FAMILIES.get(name)
    params = sp.SuiteParams(content="shapes", cue=name, channels=channels, image_size=max(64, family.min_size),
                            difficulty="medium", n_train=8, n_val=4, n_test=8)
    return [sr.render_example(params, "train", 3, label=0, cue_class=c) for c in (1, 2)]


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", CUE_FAMILIES.names())
def test_every_family_keeps_the_contract(name, channels):
    a, b = _scene_pair(name, channels)
    for ex in (a, b):
        assert ex.image.dtype == np.uint8 and ex.image.shape == ex.clean.shape
        assert ex.mask.shape == ex.image.shape[:2] and set(np.unique(ex.mask)) <= {0, 255}
        assert np.array_equal((ex.image != ex.clean).any(axis=2), ex.mask == 255)  # exactly the changed pixels
        assert 0 < (ex.mask == 255).mean() < 1
    # the cue class only changes what the cue looks like
    assert np.array_equal(a.clean, b.clean) and np.array_equal(a.mask, b.mask)
    assert not np.array_equal(a.image[a.mask == 255], b.image[b.mask == 255])


@pytest.mark.parametrize("name", CUE_FAMILIES.names())
def test_every_family_describes_each_class(name):
    family = CUE_FAMILIES.get(name)
    assert family.name == name and isinstance(family.min_size, int)
    params = sp.SuiteParams(content="glyphs", cue=name, image_size=max(64, family.min_size))
    entry = sr.cue_description(params)
    assert entry["kind"] == name and list(entry["encodes"]) == list(params.class_names)
    assert len({str(v) for v in entry["encodes"].values()}) == len(params.class_names)


def test_unknown_family_fails_listing_the_valid_ones():
    with pytest.raises(UserError) as exc:
        cue_family("stamp")
    assert str(exc.value) == f"unknown cue family 'stamp' (valid cue families: {', '.join(CUE_FAMILIES.names())})"
    with pytest.raises(UserError) as exc:
        sp.SuiteParams(cue="stamp")
    assert str(exc.value) == f"cue must be one of {', '.join(CUE_FAMILIES.names())}, got 'stamp'"
    assert {"background", "frame", "patch", "text"} <= set(CUE_FAMILIES.names())
