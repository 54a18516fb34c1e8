"""A model meets a data set: class count, image size, channels, class names, the pinned
model file, unreadable model files, missing layers, selections of another data set
variant, a vanished data root — one line and exit code 2 from every entry point,
nothing written."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from common.cli import run_main
from tests.fixtures_select import make_result


@pytest.fixture(scope="module")
def base_result(tmp_path_factory) -> Path:
    """One real train result (image_folder 24×24×1, 3 classes) shared read-only by the tests."""
    return make_result(tmp_path_factory.mktemp("base"), hw=(24, 24), n_per_class=2, steps=0)


def copy_result(base: Path, tmp_path: Path) -> Path:
    """A private copy of the run folder (the data cache stays shared)."""
    run = tmp_path / "run"
    shutil.copytree(base.parent, run)
    return run / base.name


def other_model(path: Path, *, shape=(24, 24, 1), classes=3) -> None:
    from classification_models.models import ModelParams, build_model

    model = build_model(input_shape=shape, num_classes=classes,
                        params=ModelParams(filters=(4, 8), convs_per_block=1, last_conv_filters=8), seed=1)
    path.unlink()
    model.save(path)


def forget_pin(result: Path) -> None:
    """Makes ``result`` look like one written before model files were pinned."""
    data = json.loads(result.read_text())
    data.pop("model_file")
    result.write_text(json.dumps(data))


def auto(result: Path, tmp_path: Path, capsys, *extra) -> tuple[int, str]:
    """``select_tool.auto`` on ``result``: ``(exit code, stderr)``; a run that succeeds wrote a
    selection, one that fails wrote none."""
    from select_tool import auto as auto_cli

    out = tmp_path / "sel"
    code = run_main(auto_cli.main, [str(result), "--n", "2", "--pick", "random", "--mask-from", "cam",
                                    "--out", str(out), *extra])
    err = capsys.readouterr().err.strip()
    wrote = out.exists() and any(out.rglob("selection.json"))
    assert wrote == (code == 0), f"exit code {code} but a selection {'was' if wrote else 'was not'} written"
    return code, err


def test_result_pins_the_model_file(base_result):
    from common.checksums import file_digest

    pin = json.loads(base_result.read_text())["model_file"]
    digest = file_digest(base_result.parent / "model.keras")
    assert pin == {"sha256": digest.sha256, "size": digest.size} and digest.size > 1000


def test_swapped_model_is_refused_naming_both_files(base_result, tmp_path, capsys):
    result = copy_result(base_result, tmp_path)
    model = result.parent / "model.keras"
    other_model(model, classes=10)
    code, err = auto(result, tmp_path, capsys)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert f"model file '{model}' is not the model train result '{result}' was written with" in err
    assert "restore the model or retrain" in err


def test_ten_class_model_on_three_class_data(base_result, tmp_path, capsys):
    result = copy_result(base_result, tmp_path)
    other_model(result.parent / "model.keras", classes=10)
    forget_pin(result)
    code, err = auto(result, tmp_path, capsys)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert (f"error: train result '{result}': model file '{result.parent / 'model.keras'}' has 10 classes "
            f"but data set 'image_folder' has 3 (left, middle, right)") == err


def test_rgb_32_model_on_gray_24_data_in_retraining(base_result, tmp_path, capsys):
    from common.images import write_mask
    from datasets.selection import SelectionItem, save_selection
    from exp_scripts import exp_backprops

    result = copy_result(base_result, tmp_path)
    other_model(result.parent / "model.keras", shape=(32, 32, 3))
    forget_pin(result)
    sel_dir = tmp_path / "sel"
    write_mask(sel_dir / "masks" / "m.png", np.zeros((24, 24), np.uint8))
    from classification_models.train_result import load_train_result

    first = load_train_result(result).load_dataset().arrays("train").indices[0]
    save_selection(sel_dir / "selection.json", str(result), [SelectionItem(str(first), "masks/m.png", 0)])
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"name": "t", "selection": str(sel_dir / "selection.json"), "iterations": 1,
                               "eval_every": 1, "batch": {"random": 2, "selected": 1},
                               "methods": [{"name": "continued"}], "output_dir": str(tmp_path / "out")}))
    code = run_main(exp_backprops.main, [str(cfg), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "takes 32×32×3 images but data set 'image_folder' has 24×24×1" in err
    assert str(result.parent / "model.keras") in err
    assert not (tmp_path / "out").exists()


def test_gray_data_into_rgb_model_is_accepted_and_rgb_into_gray_refused():
    from classification_models.classifier import Classifier
    from classification_models.models import ModelParams, build_model
    from classification_models.input_convention import InputConvention
    from classification_models.train_result import check_model_data
    from common.errors import UserError
    from datasets.base import ArrayDataset

    params = ModelParams(filters=(4,), convs_per_block=1, last_conv_filters=4)
    rgb = build_model(input_shape=(8, 8, 3), num_classes=2, params=params, seed=0)
    gray = ArrayDataset(["a", "b"], {"train": (np.zeros((2, 8, 8, 1), np.uint8), [0, 1])})
    clf = Classifier(rgb, ["a", "b"], input_convention=InputConvention(data_channels=1, model_channels=3))
    check_model_data(clf, gray)  # the gray channel is repeated
    assert clf.predict_proba(gray.arrays("train").images).shape == (2, 2)
    gray_model = Classifier(build_model(input_shape=(8, 8, 1), num_classes=2, params=params, seed=0),
                            ["a", "b"], source="model file 'g.keras'")
    rgb_data = ArrayDataset(["a", "b"], {"train": (np.zeros((2, 8, 8, 3), np.uint8), [0, 1])})
    with pytest.raises(UserError, match="model file 'g.keras' takes 1-channel images but data set 'arrays' "
                                        "has 3 channel"):
        check_model_data(gray_model, rgb_data)
    renamed = ArrayDataset(["a", "z"], {"train": (np.zeros((2, 8, 8, 1), np.uint8), [0, 1])})
    with pytest.raises(UserError, match=r"trained on classes \['a', 'b'\] but data set 'arrays' has \['a', 'z'\]"):
        check_model_data(gray_model, renamed)


@pytest.mark.parametrize("damage, reason", [
    ("empty", "the file is empty (0 bytes)"),
    ("truncated", "not a .keras (zip) archive"),
])
def test_unreadable_model_file_says_cannot_be_read(base_result, tmp_path, capsys, damage, reason):
    result = copy_result(base_result, tmp_path)
    model = result.parent / "model.keras"
    data = model.read_bytes()
    model.write_bytes(b"" if damage == "empty" else data[: len(data) // 2])
    code, err = auto(result, tmp_path, capsys)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert f"error: model file '{model}' cannot be read: {reason}" in err
    assert "File not found" not in err


def test_missing_layer_names_the_model_file(base_result, tmp_path, capsys):
    result = copy_result(base_result, tmp_path)
    data = json.loads(result.read_text())
    data["model_parts"] = {"feature_layer": "no_such_layer"}
    result.write_text(json.dumps(data))
    code, err = auto(result, tmp_path, capsys)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert f"model file '{result.parent / 'model.keras'}': feature layer 'no_such_layer' does not exist" in err
    assert "functional" not in err.split("does not exist")[0]


def test_select_tool_loader_refuses_a_mismatched_model(base_result, tmp_path):
    from common.errors import UserError
    from select_tool.model.loader import open_result

    result = copy_result(base_result, tmp_path)
    other_model(result.parent / "model.keras", shape=(16, 16, 1))
    forget_pin(result)
    with pytest.raises(UserError, match=r"takes 16×16×1 images but data set 'image_folder' has 24×24×1"):
        open_result(result)


def retrain_config(tmp_path: Path, selection: Path) -> Path:
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"name": "t", "selection": str(selection), "iterations": 1, "eval_every": 1,
                               "batch": {"random": 2, "selected": 1}, "methods": [{"name": "continued"}],
                               "output_dir": str(tmp_path / "out")}))
    return cfg


def test_selections_carry_provenance_and_are_refused_on_another_variant(base_result, tmp_path, capsys):
    from datasets.selection import dataset_provenance, load_selection
    from exp_scripts import exp_backprops

    result = copy_result(base_result, tmp_path)
    code, err = auto(result, tmp_path, capsys)
    assert code == 0, err
    spec = json.loads(result.read_text())["dataset"]
    sel = load_selection(tmp_path / "sel" / "selection.json")
    assert sel.provenance == dataset_provenance(spec) and sel.provenance["dataset"] == "image_folder"

    data = json.loads(result.read_text())
    data["dataset"]["params"]["seed"] = 7  # the result now stands for another variant of the data set
    result.write_text(json.dumps(data))
    code = run_main(exp_backprops.main, [str(retrain_config(tmp_path, tmp_path / "sel" / "selection.json")),
                                         "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    old, new = dataset_provenance(spec)["params_hash"], dataset_provenance(data["dataset"])["params_hash"]
    assert (f"selection '{tmp_path / 'sel' / 'selection.json'}' was made on data set 'image_folder' "
            f"(parameters {old}) but train result '") in err
    assert f"run/train_result.json' uses data set 'image_folder' (parameters {new})" in err
    assert not (tmp_path / "out").exists()


def test_old_selections_without_provenance_still_load(tmp_path):
    from common.images import write_mask
    from datasets.selection import load_selection

    write_mask(tmp_path / "m.png", np.zeros((4, 4), np.uint8))
    (tmp_path / "selection.json").write_text(json.dumps(
        {"train_result": "gone.json", "items": [{"index": "train_00000", "mask": "m.png", "cam_class": 0}]}))
    sel = load_selection(tmp_path / "selection.json")
    assert sel.provenance is None
    sel.check_provenance({"name": "symbols", "params": {"x": 1}}, "train result 'r'")  # nothing to compare


def test_gui_export_records_provenance(base_result, tmp_path):
    from datasets.selection import SelectionItem, load_selection, result_provenance
    from select_tool.export.exporter import write_export

    out = tmp_path / "export"
    rel = str(Path("..") / base_result.parent.name / base_result.name)
    (tmp_path / base_result.parent.name).symlink_to(base_result.parent)
    path, _ = write_export(out, rel, [SelectionItem("i", "masks/i.png", 0)], [],
                           {"i": np.zeros((4, 4), np.uint8)})
    assert load_selection(path).provenance == result_provenance(base_result) is not None


def test_vanished_data_root_honours_the_environment(base_result, tmp_path, monkeypatch, caplog):
    from classification_models.train_result import load_train_result

    result = copy_result(base_result, tmp_path)
    data = json.loads(result.read_text())
    data["data_root"] = str(tmp_path / "gone")
    result.write_text(json.dumps(data))
    monkeypatch.setenv("VF_DATA_ROOT", str(base_result.parent.parent / "data"))
    ds = load_train_result(result).load_dataset()
    assert ds.folder.is_relative_to(base_result.parent.parent / "data")
    assert not (tmp_path / "gone").exists()
    assert f"data root '{tmp_path / 'gone'}' does not exist; using $VF_DATA_ROOT" in caplog.text
