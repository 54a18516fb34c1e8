"""The selection and train-result contracts shared by the GUI, auto-selection and retraining."""
import json

import numpy as np
import pytest
from PIL import Image

from classification_models.train_result import load_train_result, write_train_result
from common.errors import UserError
from common.images import read_mask, write_mask
from datasets.base import ArrayDataset
from datasets.selection import SelectionItem, load_selection, save_selection


@pytest.fixture()
def two_class_arrays():
    rng = np.random.RandomState(0)
    x = rng.randint(0, 255, (6, 8, 8, 1)).astype(np.uint8)
    y = np.array([0, 1, 0, 1, 0, 1])
    return ArrayDataset(["a", "b"], {"train": (x, y), "val": (x[:2], y[:2]), "test": (x[:2], y[:2])})


def _selection(tmp_path, mask, index="train_00001", cam_class=1):
    write_mask(tmp_path / "masks" / f"{index}.png", mask)
    save_selection(tmp_path / "selection.json", "result.json",
                   [SelectionItem(index, f"masks/{index}.png", cam_class, "corner")])
    return tmp_path / "selection.json"


def test_selection_round_trip(tmp_path, two_class_arrays):
    mask = np.zeros((8, 8), np.uint8)
    mask[5:, :3] = 1
    path = _selection(tmp_path, mask)
    sel = load_selection(path, dataset=two_class_arrays)
    assert sel.indices == ["train_00001"]
    assert sel.items[0].cam_class == 1 and sel.items[0].note == "corner"
    loaded = sel.load_masks((8, 8, 1))
    assert loaded.shape == (1, 8, 8) and loaded.dtype == np.uint8
    assert np.array_equal(loaded[0], np.where(mask > 0, 255, 0))
    assert json.loads(path.read_text())["items"][0] == {
        "index": "train_00001", "mask": "masks/train_00001.png", "cam_class": 1, "note": "corner"}


def test_selection_unknown_index(tmp_path, two_class_arrays):
    path = _selection(tmp_path, np.zeros((8, 8)), index="train_00099")
    with pytest.raises(UserError, match="index 'train_00099' does not exist"):
        load_selection(path, dataset=two_class_arrays)


def test_selection_wrong_mask_size(tmp_path, two_class_arrays):
    path = _selection(tmp_path, np.zeros((6, 8)))
    with pytest.raises(UserError, match="is 6×8 but the image is 8×8"):
        load_selection(path, dataset=two_class_arrays)


def test_mask_not_binary_or_rgb(tmp_path):
    Image.fromarray(np.full((4, 4), 7, np.uint8)).save(tmp_path / "g.png")
    with pytest.raises(UserError, match="not binary"):
        read_mask(tmp_path / "g.png")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(UserError, match="single-channel"):
        read_mask(tmp_path / "rgb.png")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match="not a readable image"):
        read_mask(tmp_path / "bad.png")


def test_selection_unknown_item_key(tmp_path):
    (tmp_path / "s.json").write_text(json.dumps({"train_result": "r", "items": [
        {"index": "a", "mask": "m.png", "cam_class": 0, "colour": "red"}]}))
    with pytest.raises(UserError, match=r"unknown key 'items\[0\]\.colour'"):
        load_selection(tmp_path / "s.json", check_masks=False)


def test_train_result_paths_resolve_and_missing_model(tmp_path):
    path = write_train_result(tmp_path / "run" / "result.json", {
        "name": "t", "model_path": "model.keras", "dataset": {"name": "symbols", "params": {}},
        "class_names": ["a"], "image_shape": [8, 8, 1], "run_dir": "."})
    res = load_train_result(path)
    assert res.model_path == tmp_path / "run" / "model.keras"
    assert res.image_shape == (8, 8, 1) and res.dataset_spec == {"name": "symbols", "params": {}}
    with pytest.raises(UserError, match="model file .* does not exist"):
        res.load_classifier()


def test_train_result_not_a_result(tmp_path):
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(UserError, match=r"x.json: missing required key 'model_path' \(the file has no schema_version"):
        load_train_result(tmp_path / "x.json")
