"""Bad inputs a demanding user tries that earlier rounds did not list: each fails with one
line naming the file and what to do, or is accepted and said — never a traceback, a silent
wrong result or Python's own advice."""
import json
import logging

import numpy as np
import pytest
from PIL import Image

import datasets
from common.errors import UserError
from common.io import ensure_dir, read_json
from retraining.data import RetrainData, masked_set_from_items
from retraining.methods import get_method
from retraining.train_config import load_train_config
from tests.fixtures_models import tiny_config
from tests.fixtures_retrain import make_classifier, make_dataset


def _config(tmp_path, text: str | bytes):
    path = tmp_path / "run.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def test_a_config_with_a_byte_order_mark_is_read_as_it_is_without(tmp_path):
    text = json.dumps(tiny_config(tmp_path))
    assert load_train_config(_config(tmp_path, "\ufeff" + text)) == load_train_config(_config(tmp_path, text))


def test_a_key_given_twice_is_refused_not_silently_overwritten(tmp_path):
    text = json.dumps(tiny_config(tmp_path))[:-1] + ', "name": "other"}'
    path = _config(tmp_path, text)
    with pytest.raises(UserError) as info:
        load_train_config(path)
    assert str(info.value) == (f"config file '{path}' gives the key 'name' twice in one object (JSON keeps only the "
                               "last value); remove one")
    nested = _config(tmp_path, '{"a": {"b": 1, "b": 2}}')
    with pytest.raises(UserError, match=r"gives the key 'b' twice"):
        read_json(nested)


@pytest.mark.parametrize("prefix", ["// my run\n", "# my run\n", "/* my run */"])
def test_comments_in_a_config_are_named_as_the_problem(tmp_path, prefix):
    path = _config(tmp_path, prefix + json.dumps(tiny_config(tmp_path)))
    with pytest.raises(UserError, match=r"is not valid JSON \(line 1, column 1: Expecting value; JSON allows no "
                                        r"comments\)$"):
        load_train_config(path)


def test_an_empty_config_says_so(tmp_path):
    path = _config(tmp_path, " \n")
    with pytest.raises(UserError) as info:
        load_train_config(path)
    assert str(info.value) == f"config file '{path}' is empty (a JSON file holds at least {{}})"


def test_a_config_that_is_not_utf8_says_so(tmp_path):
    path = _config(tmp_path, json.dumps(tiny_config(tmp_path)).encode("utf-8").replace(b'"tiny"', b'"t\xe9st"'))
    with pytest.raises(UserError) as info:
        load_train_config(path)
    assert str(info.value) == (f"cannot read config file '{path}': it is not UTF-8 text (invalid continuation "
                               "byte at byte 11); save it as UTF-8")


def test_a_file_where_a_folder_is_needed_is_named(tmp_path):
    (tmp_path / "res").write_text("x")
    with pytest.raises(UserError) as info:
        ensure_dir(tmp_path / "res" / "train" / "tiny")
    assert str(info.value) == (f"cannot create folder '{tmp_path / 'res' / 'train' / 'tiny'}': "
                               f"'{tmp_path / 'res'}' is a file, not a folder")
    with pytest.raises(UserError, match=r"'.*/res' is a file, not a folder$"):
        ensure_dir(tmp_path / "res")


def _folder(root, n=4, classes=("a", "b")):
    for c in classes:
        (root / "train" / c).mkdir(parents=True)
        for i in range(n):
            img = np.full((8, 8), 40 if c == "a" else 200, np.uint8)
            img[i % 8, 0] = 0
            Image.fromarray(img).save(root / "train" / c / f"{i:02d}.png")
    return root


def _load(root, tmp_path, **params):
    return datasets.load({"name": "image_folder", "params": {"root": str(root), "image_size": 8, "channels": 1,
                                                             **params}}, tmp_path / "data")


@pytest.mark.parametrize("content, why", [(b"", "an empty file (0 bytes)"),
                                          (b"hello", "not an image Pillow can decode (5 bytes)")])
def test_an_unreadable_image_is_named_with_the_way_out(tmp_path, content, why):
    root = _folder(tmp_path / "im", n=10)
    (root / "train" / "a" / "bad.jpg").write_bytes(content)
    with pytest.raises(UserError) as info:
        _load(root, tmp_path)
    assert str(info.value) == (f"cannot read image '{root / 'train' / 'a' / 'bad.jpg'}': {why}; remove it, or set "
                               "\"skip_corrupt\": true in the data set params to skip unreadable images")
    skipped = _load(root, tmp_path, skip_corrupt=True).manifest["skipped"]
    assert [s["file"] for s in skipped] == [str(root / "train" / "a" / "bad.jpg")]


def test_files_the_converter_never_reads_are_named(tmp_path, caplog):
    root = _folder(tmp_path / "im", n=10)
    (root / "train" / "stray.png").write_bytes((root / "train" / "a" / "00.png").read_bytes())
    (root / "train" / "a" / "2019").mkdir()
    (root / "train" / "a" / "00.png").rename(root / "train" / "a" / "2019" / "00.png")
    (root / "train" / "b" / "notes.txt").write_text("x")
    (root / "train" / "b" / ".DS_Store").write_text("x")
    with caplog.at_level(logging.WARNING):
        ds = _load(root, tmp_path)
    assert ds.manifest["split_sizes"] == {"train": 13, "val": 2, "test": 4}
    assert (f"'{root / 'train'}': 3 file(s) or folder(s) not read (images are read from train/<class>/*.png|*.jpg|"
            "*.jpeg|*.bmp|*.tif|*.tiff only, not from sub-folders): stray.png, a/2019/, b/notes.txt") in caplog.text


def test_too_few_images_to_split_off_val_and_test_is_said(tmp_path, caplog):
    root = _folder(tmp_path / "im", n=1)
    with caplog.at_level(logging.WARNING):
        ds = _load(root, tmp_path)
    assert ds.manifest["split_sizes"] == {"train": 2}
    assert (f"'{root / 'train'}' has 2 image(s): too few to split off val (10%) and test (20%); the data set has no "
            "such split (add ROOT/val and ROOT/test, or more images)") in caplog.text


def test_an_empty_selection_is_named(tmp_path):
    ds, clf = make_dataset(), make_classifier()
    where = f"selection '{tmp_path / 'selection.json'}'"
    empty = masked_set_from_items(ds, [], [], where)
    data = RetrainData(ds, empty, empty, tuple(clf.grid_shape), {"mode": "area", "threshold": 0.25})
    with pytest.raises(UserError) as info:
        get_method("pasa").setup(clf=clf, data=data, batch_random=4, batch_selected=2, seed=0)
    assert str(info.value) == f"method 'pasa' needs a selection with at least one masked image; {where} is empty"


def test_a_file_of_another_kind_is_named_as_such(real_runs, tmp_path):
    from common.config import load_config
    from retraining.config import RetrainConfig

    result = real_runs.train / "result.json"
    with pytest.raises(UserError) as info:
        load_config(RetrainConfig, result)
    assert str(info.value).startswith(f"{result}: this is a train result (written by exp_scripts.do_interactive_exp), "
                                      "not a config this command reads (unknown key(s) ")
    with pytest.raises(UserError) as info:
        load_train_config(real_runs.retrain / "config.json")
    assert str(info.value).startswith(f"{real_runs.retrain / 'config.json'}: this is a retraining config (for "
                                      "python -m exp_scripts.exp_backprops), not a config this command reads")
    with pytest.raises(UserError, match=r"this is a selection \(a retraining config names it in \"selection\"\)"):
        load_train_config(real_runs.selection)


def test_images_too_small_for_a_cam_grid_are_warned_about(tmp_path, cli_datasets, caplog):
    from datasets.base import ArrayDataset
    from retraining import base_training

    rng = np.random.default_rng(0)
    split = (rng.integers(0, 255, (12, 2, 2, 1)).astype(np.uint8), np.resize(np.arange(3), 12))
    cli_datasets.update(arrays=ArrayDataset(["a", "b", "c"], {"train": split, "val": split, "test": split}))
    cfg = tiny_config(tmp_path, cam_overlays=0, train={"epochs": 1, "batch_size": 4})
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(cfg))
    with caplog.at_level(logging.WARNING):
        base_training.run_file(path, data_root=tmp_path / "data")
    assert (f"{path}: the CAM grid is 1×1 for 2×2 images: a mask cannot tell one region of an image from another, "
            "and the feedback methods have nothing to act on; use a larger image_size or a model with fewer pooling "
            "steps") in caplog.text


def test_a_photo_stored_sideways_is_turned_as_viewers_show_it(tmp_path):
    from tf_records_parser.image_folder import load_image

    stored = np.zeros((24, 24), np.uint8)
    stored[:4] = 255  # a bar along the top of the stored pixels
    img = Image.fromarray(stored)
    exif = img.getexif()
    exif[0x0112] = 6  # orientation 6: viewers turn it 90° clockwise, the bar on the right
    img.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    shown = load_image(tmp_path / "phone.jpg", (24, 24), 1)[..., 0]
    assert shown[:, -4:].mean() > 200 and shown[:, :18].mean() < 30
    Image.fromarray(stored).save(tmp_path / "plain.jpg", quality=95)  # no tag: as stored
    assert load_image(tmp_path / "plain.jpg", (24, 24), 1)[:4, :, 0].mean() > 200


def test_ground_truth_masks_asked_of_a_data_set_without_them_says_what_to_do(tmp_path):
    from retraining.auto_select import auto_select
    from tests.fixtures_select import make_result

    result = make_result(tmp_path, hw=(16, 16), n_per_class=3, steps=1)
    with pytest.raises(UserError) as info:
        auto_select(result, n=2, out_dir=tmp_path / "sel", mask_from="ground_truth")
    assert str(info.value) == (
        "data set 'image_folder' has no ground-truth masks (for an image folder: ROOT/masks/<split>/<class>/<image "
        "stem>.png); make masks from the model with --mask-from cam or filter, or paint them with python -m "
        "select_tool.main")


def test_a_mask_named_in_another_case_is_pointed_at(tmp_path):
    root = _folder(tmp_path / "im", n=10)
    (root / "masks" / "train" / "a").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "masks" / "train" / "a" / "03.PNG")
    with pytest.raises(UserError) as info:
        _load(root, tmp_path)
    mask = root / "masks" / "train" / "a" / "03.PNG"
    assert str(info.value) == (f"mask '{mask}' has no image: expected ROOT/<split>/"
                               f"<class>/<same stem>.{{png,jpg,jpeg,bmp,tif,tiff}} under '{root}' ('03.png' would "
                               "match: names are case-sensitive)")
