"""Image-folder data sets: strict 0/255 masks (or an opt-in threshold), orphan masks,
the matched-mask count in the summary, unique stable indices for any Unicode names."""
from __future__ import annotations

import unicodedata
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import datasets.registry as registry
from tests.fixtures_select import run_prepare, write_image_folder


def _folder_spec(images: Path, **params) -> dict:
    """The spec of the 8×8 gray image-folder data set of ``images``."""
    return {"name": "image_folder", "params": {"root": str(images), "image_size": 8, "channels": 1, **params}}


def put_mask(images: Path, rel: str, arr: np.ndarray) -> Path:
    path = images / "masks" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


@pytest.fixture()
def images(tmp_path):
    return write_image_folder(tmp_path / "images", n_per_class=1, hw=(8, 8))


def test_binary_masks_are_counted_in_the_summary(images, tmp_path, capsys):
    box = np.zeros((8, 8), np.uint8)
    box[:4] = 255
    put_mask(images, "train/left/img_000.png", box)
    put_mask(images, "test/middle/img_001.png", 255 - box)
    code, out, err = run_prepare(_folder_spec(images), tmp_path / "data", capsys)
    assert code == 0, err
    assert "masks      2 matched to their images" in out
    ds = registry.load(_folder_spec(images), data_root=tmp_path / "data")
    assert np.array_equal(ds.irrelevant_mask("train/left/img_000"), box)


@pytest.mark.parametrize("kind", ["gradient", "rgb"])
def test_gray_or_colour_masks_fail_unless_thresholded(images, tmp_path, capsys, kind):
    grad = np.tile(np.linspace(0, 255, 8).astype(np.uint8), (8, 1))
    arr = grad if kind == "gradient" else np.stack([grad, grad, grad], axis=-1)
    path = put_mask(images, "train/left/img_000.png", arr)
    code, out, err = run_prepare(_folder_spec(images), tmp_path / "data", capsys)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert f"'{path}'" in err and "mask_threshold" in err
    assert ("is not binary" in err) if kind == "gradient" else ("must be a single-channel PNG" in err)
    assert not list((tmp_path / "data").rglob("dataset.json"))

    code, out, err = run_prepare(_folder_spec(images, mask_threshold=128), tmp_path / "data", capsys)
    assert code == 0 and "masks      1 matched" in out, err
    ds = registry.load(_folder_spec(images, mask_threshold=128), data_root=tmp_path / "data")
    assert np.array_equal(ds.irrelevant_mask("train/left/img_000"), np.where(grad >= 128, 255, 0))


def test_orphan_mask_fails_naming_the_file(images, tmp_path, capsys):
    path = put_mask(images, "train/left/img_999.png", np.zeros((8, 8), np.uint8))
    code, out, err = run_prepare(_folder_spec(images), tmp_path / "data", capsys)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert f"mask '{path}' has no image" in err
    assert not list((tmp_path / "data").rglob("dataset.json"))


def test_unicode_class_names_give_unique_stable_indices(tmp_path, capsys):
    nfc = unicodedata.normalize("NFC", "été")
    nfd = unicodedata.normalize("NFD", "été")
    classes = [nfc, nfd, "êtê", "ëtè", "plain"]  # été, êtê, ëtè all sanitise to _t_
    images = tmp_path / "images"
    rng = np.random.default_rng(0)
    for split in ("train", "val", "test"):
        for c in classes:
            d = images / split / c
            d.mkdir(parents=True)
            Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(d / "1.png")
    box = np.zeros((8, 8), np.uint8)
    box[2:5] = 255
    put_mask(images, f"train/{nfd}/1.png", box)
    code, out, err = run_prepare(_folder_spec(images), tmp_path / "data", capsys)
    assert code == 0, err
    spec = _folder_spec(images)
    ds = registry.load(spec, data_root=tmp_path / "data")
    indices = [str(i) for s in ("train", "val", "test") for i in ds.arrays(s).indices]
    assert len(indices) == len(set(indices)) == 15
    assert "train/plain/1" in indices  # names that collide with nothing keep the plain form
    train = dict(zip(ds.arrays("train").indices, ds.arrays("train").labels))
    assert sorted(train.values()) == [0, 1, 2, 3, 4]
    nfd_index = next(i for i, y in train.items() if ds.class_names[y] == nfd)
    assert np.array_equal(ds.irrelevant_mask(nfd_index), box)
    again = registry.load(spec, data_root=tmp_path / "other", rebuild=True)
    assert [str(i) for s in ("train", "val", "test") for i in again.arrays(s).indices] == indices
