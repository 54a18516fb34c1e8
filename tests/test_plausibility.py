"""Plausibility checks, one line each: double input scaling, Lambda layers, batches larger
than the split, warm-up longer than the run, propagation from too few masks, single-class
and many-class data sets, a full disk (a fake file system that runs out of space)."""
import errno
import logging

import numpy as np
import pytest

from classification_models.input_convention import resolve_convention
from classification_models.model_file import load_keras_model
from classification_models.propagation import CannotPropagate, leave_one_out_probability
from common.errors import UserError
from common.io import append_jsonl, atomic_path, atomic_write_json
from common.splits import stratified_split
from retraining.data import masked_set_from_items
from retraining.val_swap import cue_swapped_copy
from retraining.runner import run_retraining
from tests.fixtures_retrain import make_classifier, make_dataset, make_retrain_config, selection_items

RUN = {"name": "t", "selection": "sel.json", "iterations": 2, "eval_every": 2, "batch": {"random": 6, "selected": 2},
       "overlays": False, "save_models": False, "counterfactual_val": False, "methods": [{"name": "continued"}]}


def _model(*, rescaling: bool = True, lam: bool = False):
    import keras
    from keras import layers

    inp = keras.Input((8, 8, 3))
    x = layers.Rescaling(1 / 127.5, offset=-1, name="to_pm1")(inp) if rescaling else inp
    if lam:
        x = layers.Lambda(lambda t: t * 2.0, name="times_two")(x)
    x = layers.Conv2D(4, 3, name="conv")(x)
    return keras.Model(inp, layers.Dense(3, activation="softmax")(layers.GlobalAveragePooling2D()(x)))


def test_a_model_that_scales_itself_refuses_a_second_scale_from_the_config():
    model = _model()
    with pytest.raises(UserError) as info:
        resolve_convention(model, scale="minus1_1", data_channels=3, source="import.json")
    assert str(info.value) == (
        "import.json: input.scale is 'minus1_1' but the model scales its input itself (layer 'to_pm1' before its first "
        "convolution), so pixels would be scaled twice; drop input.scale (or set it to \"0_255\"), or remove that "
        "layer from the model")
    # the model's own layer is the one rule: no scale, or the explicit 0_255, passes pixels through
    for scale in (None, "0_255"):
        conv = resolve_convention(model, scale=scale, data_channels=3, source="import.json")
        assert conv.scale == "0_255"
    assert resolve_convention(_model(rescaling=False), scale="minus1_1", data_channels=3, source="x").scale == "minus1_1"


def test_a_lambda_layer_says_what_to_do_instead(tmp_path):
    _model(lam=True).save(tmp_path / "m.keras")
    with pytest.raises(UserError) as info:
        load_keras_model(tmp_path / "m.keras")
    msg = str(info.value)
    assert msg.startswith(f"model file '{tmp_path / 'm.keras'}' has Lambda layer(s) 'times_two': they hold Python code")
    assert "remove it and give input.scale in the config" in msg and "safe_mode" not in msg and "\n" not in msg


def test_warmup_longer_than_the_run_and_batch_larger_than_the_split(tmp_path):
    with pytest.raises(UserError, match=r"^cfg\.json: warmup 500 is not shorter than iterations 10: the learning rate "
                                        r"would never reach learning_rate 0\.001; use a warmup below 10"):
        make_retrain_config(RUN, warmup=500, iterations=10)
    assert make_retrain_config(RUN, warmup=5, iterations=10).warmup == 5
    ds, clf = make_dataset(), make_classifier()
    items, masks = selection_items(ds, 3)
    sel = masked_set_from_items(ds, items, masks)
    cfg = make_retrain_config(RUN, batch={"random": 100000, "selected": 2})
    with pytest.raises(UserError, match=r"^batch\.random 100000 is larger than the training split \(48 images\): "
                                        r"every batch would repeat images; use at most 48$"):
        run_retraining(cfg, base=clf, dataset=ds, selected=sel, heldout=sel, run_dir=tmp_path / "t")
    assert not (tmp_path / "t").exists()


def test_propagation_from_too_few_or_fully_masked_images_says_so(caplog):
    from retraining.data import RetrainData

    rng = np.random.default_rng(0)
    acts = rng.random((2, 4, 4, 3))
    grid = np.zeros((2, 4, 4))
    grid[0, :2] = 1  # the second image has no masked cell: its fold has nothing to contrast
    with caplog.at_level(logging.WARNING):
        leave_one_out_probability(activations=acts, grid_masks=grid)
    assert "propagation: 1 of 2 masked image(s) cannot be held out" in caplog.text
    assert "mask at least 3 images for a held-out calibration" in caplog.text
    ds, clf = make_dataset(), make_classifier()
    items, _ = selection_items(ds, 2)
    full = np.full((2, 16, 16), 255, np.uint8)
    where = "selection '/runs/sel/selection.json'"
    data = RetrainData(ds, masked_set_from_items(ds, items, full, where), masked_set_from_items(ds, [], []),
                       tuple(clf.grid_shape), {"mode": "area", "threshold": 0.25})
    with pytest.raises(CannotPropagate) as info:
        cue_swapped_copy(clf, data)
    assert str(info.value) == (
        "selection '/runs/sel/selection.json': propagation needs unmasked cells to contrast with; every cell of the 2 "
        "masked image(s) is masked (all-255 "
        "masks?); the cue-swapped val copy (\"counterfactual_val\": true, the default) needs the masks propagated: "
        "leave part of each masked image unmasked, or set \"counterfactual_val\": false")


def test_many_classes_are_summarised_not_dumped():
    with pytest.raises(UserError) as info:
        stratified_split(np.arange(1000), val_fraction=0.1, test_fraction=0.2, seed=0, what="images of 'x'")
    msg = str(info.value)
    assert "(1000 classes, 1 to 1 items each; 1000 with a single item, e.g. 0, 1, 2)" in msg and len(msg) < 500


class _FullDisk:
    """A file that accepts ``room`` bytes and then fails as a full disk does."""

    def __init__(self, path, mode, room, **kw):
        self.fh, self.room = open(path, mode, **kw), room

    def write(self, data):
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return self.fh.write(data)

    def __getattr__(self, name):
        return getattr(self.fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.fh.close()


def test_a_full_disk_is_one_line_naming_the_file_and_the_space(tmp_path, monkeypatch):
    import common.io as io

    monkeypatch.setattr(io, "open", lambda path, mode="r", **kw: _FullDisk(path, mode, 10, **kw), raising=False)
    with pytest.raises(UserError) as info:
        atomic_write_json(tmp_path / "summary.json", {"x": "y" * 100})
    msg = str(info.value)
    assert msg.startswith(f"cannot write '{tmp_path / 'summary.json'}': no space left on the disk (")
    assert f"free in '{tmp_path}'; it needed 114 bytes); free some space or write elsewhere" in msg
    with pytest.raises(UserError, match=r"history\.jsonl': no space left on the disk \(.*; it needed 2\d bytes\)"):
        append_jsonl(tmp_path / "history.jsonl", {"iteration": 1, "ce": 0.5})
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left
    with pytest.raises(UserError, match=r"model\.keras': no space left .*; 5 bytes of it were written when space ran"):
        with atomic_path(tmp_path / "model.keras") as tmp:
            tmp.write_bytes(b"12345")
            raise OSError(errno.ENOSPC, "No space left on device")


def test_a_single_class_data_set_is_refused_before_training(tmp_path, cli_datasets, capsys):
    from datasets.base import ArrayDataset
    from exp_scripts import do_interactive_exp as cli
    from tests.fixtures_models import tiny_config, write_config

    x = np.zeros((6, 24, 24, 1), np.uint8)
    cli_datasets["arrays"] = ArrayDataset(["cat"], {s: (x, np.zeros(6, np.int64)) for s in ("train", "val", "test")})
    path = write_config(tmp_path / "one.json", tiny_config(tmp_path))
    assert cli.run_main(cli.main, [str(path), "--quiet", "--data-root", str(tmp_path / "data")]) == 2
    assert capsys.readouterr().err == (
        f"error: {path}: data set 'arrays' has a single class ('cat'): a classifier needs at least two classes (for an "
        "image folder, one sub-folder per class under train/)\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.json"]  # nothing written


def test_the_data_set_summary_of_many_classes_is_short_and_names_the_conversion():
    from datasets.prepare import format_summary

    names = [f"c{i:04d}" for i in range(1000)]
    s = {"name": "image_folder", "cache": "data/x", "class_names": names, "image_shape": [8, 8, 1],
         "split_sizes": {"train": 1000}, "counts_per_class": {"train": {n: 1 for n in names}},
         "shortcut_match_rate": None, "channel_mean": [1.0], "channel_std": [2.0], "content_hash": "ab" * 8,
         "skipped": 0, "masks": 0, "params": {}, "conversion": {"rule": "the rule", "source_modes": {"I;16": 1000}}}
    lines = format_summary(s).splitlines()
    assert lines[1] == "classes    1000 classes: c0000, c0001, c0002, c0003, c0004, ..., c0999"
    assert lines[3] == "train      1000 images (1 to 1 per class)"
    assert "conversion the rule (files by mode: I;16 1000)" in lines and max(map(len, lines)) < 120
