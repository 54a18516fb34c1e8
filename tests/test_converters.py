"""Converters (image folders + masks, QuickDraw .npy, CIFAR-10 binary) on data the tests make."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import datasets
from common.errors import UserError
from tf_records_parser import converters, image_folder


def _img(path, value, size=(10, 12), mode="RGB", fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.full((size[1], size[0], 3), value, np.uint8)
    arr[0, 0] = (value + 50) % 256
    img = Image.fromarray(arr)
    if mode == "L":
        img = img.convert("L")
    img.save(path, format=fmt)
    return arr


def _tree(root, with_val=True):
    for split, n in (("train", 4), ("val", 2)) if with_val else (("train", 10),):
        for c, base in (("cat", 40), ("dog", 160)):
            for k in range(n):
                ext = "png" if k % 2 == 0 else "jpg"
                _img(root / split / c / f"img {k:02d}.{ext}", base + k)
    return root


def test_image_folder_round_trip_values_indices_and_masks(tmp_path):
    root = _tree(tmp_path / "src")
    mask = np.zeros((12, 10), np.uint8)
    mask[:, :5] = 255
    (root / "masks" / "train" / "cat").mkdir(parents=True)
    Image.fromarray(mask).save(root / "masks" / "train" / "cat" / "img 00.png")
    ds = datasets.load({"name": "image_folder", "params": {"root": str(root), "image_size": [6, 5],
                                                           "channels": 3, "test_fraction": 0.0}}, tmp_path / "data")
    assert ds.class_names == ["cat", "dog"] and ds.image_shape == (6, 5, 3)
    assert ds.manifest["split_sizes"] == {"train": 8, "val": 4} and ds.available_splits() == ["train", "val"]
    img, label = ds.get("train/cat/img_00")  # index = sanitised relative path without extension
    assert label == 0
    want = np.asarray(Image.open(root / "train/cat/img 00.png").convert("RGB").resize((5, 6), Image.BILINEAR))
    np.testing.assert_array_equal(img, want)
    img, label = ds.get("val/dog/img_01")  # a JPEG: values close to the constant 161
    assert label == 1 and abs(float(np.median(img)) - 161) <= 3
    m = ds.irrelevant_mask("train/cat/img_00")
    assert m.shape == (6, 5) and set(np.unique(m)) == {0, 255}
    assert (m[:, :2] == 255).all() and (m[:, 3:] == 0).all()  # nearest resize keeps the left half
    assert ds.irrelevant_mask("train/cat/img_02") is None and ds.has_ground_truth_masks


def test_image_folder_stratified_seeded_split_when_val_test_missing(tmp_path):
    root = _tree(tmp_path / "src", with_val=False)
    params = {"root": str(root), "image_size": 4, "channels": 1, "val_fraction": 0.2, "test_fraction": 0.3, "seed": 5}
    ds = datasets.load({"name": "image_folder", "params": params}, tmp_path / "data")
    m = ds.manifest
    assert m["counts_per_class"] == {"train": {"cat": 5, "dog": 5}, "val": {"cat": 2, "dog": 2},
                                     "test": {"cat": 3, "dog": 3}}
    again = datasets.load({"name": "image_folder", "params": params}, tmp_path / "data2")
    assert list(again.arrays("test").indices) == list(ds.arrays("test").indices)
    assert again.manifest["content_hash"] == m["content_hash"]
    other = datasets.load({"name": "image_folder", "params": dict(params, seed=6)}, tmp_path / "data2")
    assert set(other.arrays("test").indices) != set(ds.arrays("test").indices)
    # indices keep the source path: an image moved to val still says train/...
    assert all(i.startswith("train/") for i in ds.arrays("val").indices)


def test_image_folder_corrupt_file_error_or_skip(tmp_path):
    root = _tree(tmp_path / "src")
    bad = root / "train" / "dog" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    params = {"root": str(root), "image_size": 4, "test_fraction": 0.0}
    with pytest.raises(UserError, match="broken.png"):
        datasets.load({"name": "image_folder", "params": params}, tmp_path / "data")
    ds = datasets.load({"name": "image_folder", "params": dict(params, skip_corrupt=True)}, tmp_path / "data")
    assert [s["file"] for s in ds.manifest["skipped"]] == [str(bad.resolve())]
    assert ds.manifest["split_sizes"]["train"] == 8 and not ds.has_index("train/dog/broken")


def test_image_folder_source_change_triggers_reconversion(tmp_path):
    root = _tree(tmp_path / "src")
    params = {"root": str(root), "image_size": 4, "test_fraction": 0.0}
    ds = datasets.load({"name": "image_folder", "params": params}, tmp_path / "data")
    _img(root / "train" / "cat" / "new.png", 99)
    ds2 = datasets.load({"name": "image_folder", "params": params}, tmp_path / "data")
    assert ds2.folder == ds.folder and ds2.manifest["split_sizes"]["train"] == 9


def test_image_folder_bad_trees(tmp_path):
    root = _tree(tmp_path / "src")
    (root / "val" / "bird").mkdir()
    (root / "train" / "bird").mkdir()
    with pytest.raises(UserError, match=r"class folder '.*train.bird' contains no images"):
        image_folder.scan_image_folder(root)
    (root / "train" / "bird" / "a.png").write_bytes(b"")
    _img(root / "train" / "bird" / "a.png", 3)
    _img(root / "train" / "fish" / "a.png", 3)
    with pytest.raises(UserError, match=r"class 'fish' is missing from split folder '.*val'"):
        image_folder.scan_image_folder(root)
    with pytest.raises(UserError, match="does not exist"):
        image_folder.scan_image_folder(tmp_path / "nowhere")
    with pytest.raises(UserError, match="train"):
        image_folder.scan_image_folder(tmp_path)


def _npy(root, name, n, seed):
    root.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, size=(n, 784), dtype=np.uint8)
    np.save(root / f"{name}.npy", arr)
    return arr


def test_quickdraw_selection_limits_split_and_values(tmp_path):
    src = tmp_path / "qd"
    bus = _npy(src, "bus", 20, 0)
    _npy(src, "car", 30, 1)
    _npy(src, "airplane", 5, 2)
    params = {"root": str(src), "classes": ["bus", "car"], "per_class_limit": 10, "image_size": 32,
              "val_fraction": 0.2, "test_fraction": 0.3}
    ds = datasets.load({"name": "quickdraw", "params": params}, tmp_path / "data")
    assert ds.class_names == ["bus", "car"] and ds.image_shape == (32, 32, 1)
    assert ds.manifest["counts_per_class"] == {"train": {"bus": 5, "car": 5}, "val": {"bus": 2, "car": 2},
                                               "test": {"bus": 3, "car": 3}}
    idx = next(i for i in ds.arrays("train").indices if i.startswith("train/bus/"))
    row = int(idx.rsplit("/", 1)[1])
    want = np.asarray(Image.fromarray(bus[row].reshape(28, 28)).resize((32, 32), Image.BILINEAR))
    np.testing.assert_array_equal(ds.get(idx)[0][:, :, 0], want)
    again = datasets.load({"name": "quickdraw", "params": params}, tmp_path / "data2")
    assert again.manifest["content_hash"] == ds.manifest["content_hash"]


def test_quickdraw_bad_files(tmp_path):
    src = tmp_path / "qd"
    src.mkdir()
    np.save(src / "bus.npy", np.zeros((4, 28, 28), np.uint8))
    with pytest.raises(UserError, match=r"bus.npy' has shape \(4, 28, 28\), expected \(N, 784\)"):
        converters.convert_quickdraw(src, tmp_path / "out")
    (src / "car.npy").write_bytes(b"garbage")
    with pytest.raises(UserError, match="car.npy"):
        converters.convert_quickdraw(src, tmp_path / "out", classes=["car"])
    with pytest.raises(UserError, match=r"truck.npy' does not exist"):
        converters.convert_quickdraw(src, tmp_path / "out", classes=["truck"])


def _cifar(root, n=3, names=True, skip=None):
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    made = {}
    for fname in [f"data_batch_{k}.bin" for k in range(1, 6)] + ["test_batch.bin"]:
        if fname == skip:
            continue
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        pix = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
        data = np.concatenate([labels[:, None], pix.reshape(n, -1)], axis=1)
        data.tofile(root / fname)
        made[fname] = (labels, pix.transpose(0, 2, 3, 1))
    if names:
        (root / "batches.meta.txt").write_text("\n".join(f"c{k}" for k in range(10)) + "\n\n")
    return made


def test_cifar10_batches_map_to_splits_with_exact_pixels(tmp_path):
    made = _cifar(tmp_path / "cifar")
    ds = datasets.load({"name": "cifar10", "params": {"root": str(tmp_path / "cifar")}}, tmp_path / "data")
    assert ds.class_names == [f"c{k}" for k in range(10)] and ds.image_shape == (32, 32, 3)
    assert ds.manifest["split_sizes"] == {"train": 12, "val": 3, "test": 3}
    labels, pix = made["data_batch_2.bin"]
    img, label = ds.get("train_00003")  # first image of batch 2 (3 per batch)
    np.testing.assert_array_equal(img, pix[0])
    assert label == labels[0]
    np.testing.assert_array_equal(ds.arrays("val").images, made["data_batch_5.bin"][1])
    np.testing.assert_array_equal(ds.arrays("test").labels, made["test_batch.bin"][0])


def test_cifar10_default_names_missing_and_bad_batches(tmp_path):
    _cifar(tmp_path / "ok", names=False)
    m = converters.convert_cifar10(tmp_path / "ok", tmp_path / "out")
    assert m["class_names"] == converters.CIFAR10_CLASSES
    _cifar(tmp_path / "missing", skip="data_batch_3.bin")
    with pytest.raises(UserError, match=r"data_batch_3.bin' does not exist"):
        converters.convert_cifar10(tmp_path / "missing", tmp_path / "out2")
    assert not (tmp_path / "out2" / "dataset.json").exists()
    _cifar(tmp_path / "short")
    with open(tmp_path / "short" / "test_batch.bin", "ab") as fh:
        fh.write(b"\x00" * 10)
    with pytest.raises(UserError, match=r"test_batch.bin' has 9229 bytes, not a positive multiple of 3073"):
        converters.convert_cifar10(tmp_path / "short", tmp_path / "out3")
    assert not (tmp_path / "out3" / "dataset.json").exists()
