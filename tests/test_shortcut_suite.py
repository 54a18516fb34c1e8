"""The shortcut benchmark suite generator (datasets.shortcut_suite): cue rates, exact cue
masks, determinism, base/oracle sharing, bad input, and the generic image_folder path."""
from __future__ import annotations

import csv
import dataclasses
import itertools
import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from common.errors import UserError
from datasets.cues import CUE_FAMILIES
from datasets import shortcut_suite as ss
from datasets import suite_objects as so
from datasets import suite_params as sp
from datasets import suite_render as sr

ROOT = Path(__file__).resolve().parents[1]
TINY = {"n_train": 80, "n_val": 20, "n_test": 40}
FAMILY_PARAMS = {
    "patch": {"content": "digits", "cue": "patch", "channels": 1},
    "text": {"content": "glyphs", "cue": "text", "channels": 3},
    "background": {"content": "shapes", "cue": "background", "channels": 3},
    "frame": {"content": "glyphs", "cue": "frame", "channels": 1},
}


def _params(cue: str, **kw) -> sp.SuiteParams:
    return sp.SuiteParams(**{**FAMILY_PARAMS[cue], **TINY, **kw})


def _file_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _cues_csv(root: Path) -> list[dict]:
    with open(root / "cues.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """One tiny set per cue family (correlation 0.9, validation like train)."""
    base = tmp_path_factory.mktemp("sets")
    return {cue: ss.generate(base / cue, _params(cue)) for cue in FAMILY_PARAMS}


# ----------------------------------------------------------------------------- cue rates
def test_cue_rate_follows_the_correlation_per_split():
    n = 400
    sd = (0.9 * 0.1 / n) ** 0.5
    p = sp.SuiteParams(n_train=n, n_val=n, n_test=n, correlation=0.9)
    labels, cues = sr.split_plan(p, "train")
    assert abs((labels == cues).mean() - 0.9) < 4 * sd
    mism = cues[labels != cues]
    assert len(np.unique(mism)) == 4  # the other classes, not a fixed one
    labels, cues = sr.split_plan(p, "val")  # "same": like train
    assert abs((labels == cues).mean() - 0.9) < 4 * sd
    labels, cues = sr.split_plan(dataclasses.replace(p, correlation=1.0), "train")
    assert (labels == cues).all()
    sd4 = (0.25 * 0.75 / n) ** 0.5
    for params, split in ((dataclasses.replace(p, correlation=None), "train"),
                          (dataclasses.replace(p, val_correlation="independent"), "val"), (p, "test")):
        labels, cues = sr.split_plan(params, split)
        assert abs((labels == cues).mean() - 0.25) < 4 * sd4, (params, split)
        assert np.bincount(cues, minlength=4).min() > n / 4 - 4 * n * sd4
    labels, _ = sr.split_plan(p, "train")
    assert np.bincount(labels).tolist() == [100] * 4  # balanced


@pytest.mark.parametrize("cue", sorted(FAMILY_PARAMS))
def test_written_set_layout_cues_csv_and_counts(written, cue):
    root = written[cue]
    p = _params(cue)
    meta = json.loads((root / "suite.json").read_text())
    assert meta["version"] == ss.VERSION and meta["params"] == ss.params_dict(p)
    rows = _cues_csv(root)
    assert list(rows[0]) == ["split", "class", "name", "label", "cue_class"]
    for split in sp.SPLITS:
        srows = [r for r in rows if r["split"] == split]
        labels, cues = sr.split_plan(p, split)
        assert [int(r["label"]) for r in srows] == labels.tolist()
        assert [int(r["cue_class"]) for r in srows] == cues.tolist()
        assert meta["counts"][split]["images"] == len(srows) == p.count(split)
        assert meta["counts"][split]["cue_matches_label"] == int((labels == cues).sum())
        for r in srows:
            assert r["class"] == p.class_names[int(r["label"])]
            assert (root / split / r["class"] / r["name"]).is_file()
            assert (root / "masks" / split / r["class"] / r["name"]).is_file()
    n_images = sum(1 for _ in root.glob("*/*/*.png"))
    assert n_images == len(rows) == sum(TINY.values())
    assert not list(root.parent.glob("*.partial-*"))


# ----------------------------------------------------------------------------- masks
AREA = {  # share of the image the mask may cover, at 64 px
    "patch": (36 / 4096, 36 / 4096),
    "frame": (1 - (58 / 64) ** 2, 1 - (58 / 64) ** 2),
    "text": (11 / 64, 11 / 64),
    "background": (0.35, 0.95),
}


@pytest.mark.parametrize("cue", sorted(FAMILY_PARAMS))
def test_mask_is_exactly_the_pixels_the_cue_changes(written, cue):
    p = _params(cue)
    lo, hi = AREA[cue]
    for split in ("train", "test"):
        checked = []
        for i, ex in itertools.islice(sr.iter_split(p, split), 12):
            checked.append(i)
            changed = (ex.image != ex.clean).any(axis=2)
            assert np.array_equal(changed, ex.mask == 255), (cue, split, i)
            assert set(np.unique(ex.mask)) <= {0, 255}
            assert lo - 1e-9 <= (ex.mask == 255).mean() <= hi + 1e-9, (cue, (ex.mask == 255).mean())
            # what is on disk is what was rendered
            cls = p.class_names[ex.label]
            img = np.asarray(Image.open(written[cue] / split / cls / f"{i:05d}.png"))
            img = img[:, :, None] if img.ndim == 2 else img
            assert np.array_equal(img, ex.image)
            assert np.array_equal(np.asarray(Image.open(written[cue] / "masks" / split / cls / f"{i:05d}.png")),
                                  ex.mask)
        assert checked == list(range(12))  # the first 12 images of the split


@pytest.mark.parametrize("cue", ["patch", "frame", "text", "background"])
def test_cue_depends_on_the_cue_class_only_through_its_code(cue):
    """Same image, other cue class: same object, same mask, other cue pixels."""
    p = _params(cue)
    source = None
    if p.content == "digits":
        images, _ = so.digit_images()
        source = images[so.digit_sources(seed=0, split="train")[1][0]]
    a = sr.render_example(p, "train", 3, label=1, cue_class=1, source=source)
    b = sr.render_example(p, "train", 3, label=1, cue_class=2, source=source)
    assert np.array_equal(a.clean, b.clean) and np.array_equal(a.mask, b.mask)
    assert np.array_equal(a.image[a.mask == 0], b.image[b.mask == 0])
    assert not np.array_equal(a.image, b.image)


# ----------------------------------------------------------------------------- determinism
def test_same_seed_same_bytes_other_seed_other_images(tmp_path, written):
    again = ss.generate(tmp_path / "again", _params("text"))
    assert _file_bytes(again) == _file_bytes(written["text"])
    other = ss.generate(tmp_path / "other", _params("text", seed=1))
    a, b = _file_bytes(written["text"]), _file_bytes(other)
    differing = [k for k in a if k.endswith(".png") and not k.startswith("masks") and a[k] != b.get(k)]
    assert len(differing) > 0.9 * sum(TINY.values())


def test_base_and_oracle_share_test_images_and_train_objects(tmp_path, written):
    base = written["patch"]
    oracle = ss.generate(tmp_path / "oracle", _params("patch", correlation=None, val_correlation="independent"))
    fb, fo = _file_bytes(base), _file_bytes(oracle)
    test_files = [k for k in fb if k.startswith(("test/", "masks/test/"))]
    assert test_files and all(fb[k] == fo[k] for k in test_files)
    rb, ro = _cues_csv(base), _cues_csv(oracle)
    assert [r for r in rb if r["split"] == "test"] == [r for r in ro if r["split"] == "test"]
    assert [r["label"] for r in rb] == [r["label"] for r in ro]  # same labels everywhere
    train_cues = [[r["cue_class"] for r in rows if r["split"] == "train"] for rows in (rb, ro)]
    assert train_cues[0] != train_cues[1]
    pb, po = _params("patch"), _params("patch", correlation=None, val_correlation="independent")
    train_b = dict(sr.iter_split(pb, "train"))
    train_o = dict(sr.iter_split(po, "train"))
    for i in train_b:
        assert np.array_equal(train_b[i].clean, train_o[i].clean)  # identical object images
        assert np.array_equal(train_b[i].mask, train_o[i].mask)  # the cue sits at the same place
    # the clean-validation variant changes val only
    clean_val = ss.generate(tmp_path / "cleanval", _params("patch", val_correlation="independent"))
    fc = _file_bytes(clean_val)
    assert all(fc[k] == fb[k] for k in fb if k.startswith(("train/", "test/", "masks/")))


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("field,value", [("correlation", 1.5), ("cue", "stamp"), ("image_size", 8),
                                         ("content", "faces"), ("channels", 2), ("val_correlation", "clean"),
                                         ("n_train", 2)])
def test_bad_parameter_is_a_one_line_error_naming_it_and_nothing_is_written(tmp_path, field, value):
    with pytest.raises(UserError) as exc:
        ss.generate(tmp_path / "out", {**FAMILY_PARAMS["patch"], **TINY, field: value})
    msg = str(exc.value)
    assert field in msg and repr(value) in msg and "\n" not in msg
    assert list(tmp_path.iterdir()) == []


def test_image_size_too_small_for_the_cue_names_both():
    with pytest.raises(UserError, match=r"image_size 40 .*cue 'text'"):
        sp.SuiteParams(cue="text", content="glyphs", image_size=40)
    sp.SuiteParams(cue="patch", image_size=40)  # a patch fits


def test_cli_exit_code_2_with_one_line(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "datasets.shortcut_suite", "--out", str(out), "--cue", "stamp"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: cue must be one of {', '.join(CUE_FAMILIES.names())}, "
                                                "got 'stamp'"]
    assert not out.exists()


def test_cli_writes_a_set_and_refuses_to_overwrite(tmp_path, capsys):
    from common.cli import run_main

    out = tmp_path / "set"
    args = ["--out", str(out), "--content", "shapes", "--cue", "frame", "--correlation", "1.0",
            "--val-correlation", "independent", "--channels", "3", "--n-train", "8", "--n-val", "4", "--n-test", "4"]
    assert run_main(ss.main, args) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(out)
    meta = json.loads((out / "suite.json").read_text())
    assert meta["params"]["val_correlation"] == "independent" and meta["params"]["channels"] == 3
    assert meta["counts"]["train"]["cue_match_rate"] == 1.0
    before = _file_bytes(out)
    assert run_main(ss.main, args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already exists" in err[0] and "--overwrite" in err[0]
    assert _file_bytes(out) == before
    assert run_main(ss.main, args + ["--overwrite"]) == 0
    assert _file_bytes(out) == before and not list(tmp_path.glob("set.*"))
    assert run_main(ss.main, ["--out", str(tmp_path / "x"), "--correlation", "high"]) == 2
    assert "correlation" in capsys.readouterr().err and not (tmp_path / "x").exists()
    assert run_main(ss.main, ["--suite", "--out", str(tmp_path / "s"), "--cue", "text"]) == 2
    assert "--cue does not apply with --suite" in capsys.readouterr().err and not (tmp_path / "s").exists()


# ----------------------------------------------------------------------------- the suite
def test_suite_names_regimes_and_oracles():
    sets = ss.suite_sets(quick=False)
    names = [s.name for s in sets]
    assert len(names) == len(set(names)) == len(ss.FAMILIES) * len(ss.REGIMES)
    assert {s.params.cue for s in sets} == set(CUE_FAMILIES.names())
    assert {s.params.content for s in sets} == set(sp.CLASSES)
    assert {s.params.channels for s in sets} == {1, 3}
    assert all(64 <= s.params.image_size <= 96 for s in sets)
    assert {"patch-digits-gray-c0.9", "patch-digits-gray-c1.0", "patch-digits-gray-c1.0-cleanval",
            "patch-digits-gray-oracle", "text-glyphs-rgb-c0.9", "background-shapes-rgb-oracle",
            "frame-glyphs-gray-c1.0"} <= set(names)
    by_name = {s.name: s for s in sets}
    for s in sets:
        oracle = by_name[ss.oracle_name(s.name)]
        assert oracle.params.correlation is None and oracle.params.split_correlation("val") is None
        assert dataclasses.replace(oracle.params, correlation=s.params.correlation,
                                   val_correlation=s.params.val_correlation) == s.params
    assert by_name["patch-digits-gray-c1.0-cleanval"].params.split_correlation("val") is None
    assert by_name["patch-digits-gray-c0.9"].params.split_correlation("val") == 0.9
    quick = ss.suite_sets(quick=True)
    assert {s.regime for s in quick} == {r[0] for r in ss.REGIMES}
    assert len(quick) < len(sets) and all(ss.oracle_name(s.name) in {q.name for q in quick} for s in quick)
    with pytest.raises(UserError, match="set_name 'nope'"):
        ss.oracle_name("nope")


def test_run_suite_is_resumable(tmp_path, caplog):
    sets = [dataclasses.replace(s, params=dataclasses.replace(s.params, n_train=8, n_val=4, n_test=4))
            for s in ss.suite_sets(quick=True)[:2]]
    caplog.set_level(logging.INFO, logger="datasets.shortcut_suite")

    def lines():
        return [r.getMessage() for r in caplog.records if r.name == "datasets.shortcut_suite"]

    paths = ss.run_suite(tmp_path, sets=sets)
    assert [p.name for p in paths] == [s.name for s in sets]
    assert len(lines()) == len(sets) and all("written" in x for x in lines())
    stamp = (paths[0] / "suite.json").stat().st_mtime_ns
    caplog.clear()
    ss.run_suite(tmp_path, sets=sets)
    assert len(lines()) == len(sets) and all("skipped" in x for x in lines())
    assert (paths[0] / "suite.json").stat().st_mtime_ns == stamp
    other = [dataclasses.replace(sets[0], params=dataclasses.replace(sets[0].params, seed=3))]
    with pytest.raises(UserError, match="exists but is not"):
        ss.run_suite(tmp_path, sets=other)


# ----------------------------------------------------------------------------- generic user path
def test_image_folder_data_set_reads_a_generated_set_with_its_masks(tmp_path, written):
    import datasets

    root = written["frame"]
    p = _params("frame")
    ds = datasets.load({"name": "image_folder", "params": {"root": str(root), "image_size": 64, "channels": 1}},
                       tmp_path / "data")
    assert ds.class_names == list(p.class_names) and ds.image_shape == (64, 64, 1)
    assert ds.manifest["split_sizes"] == {"train": 80, "val": 20, "test": 40}
    assert ds.has_ground_truth_masks and ds.manifest["n_masks"] == 140
    for r in _cues_csv(root)[:: 17]:
        index = f"{r['split']}/{r['class']}/{Path(r['name']).stem}"
        img, label = ds.get(index)
        assert label == int(r["label"])
        assert np.array_equal(img[:, :, 0], np.asarray(Image.open(root / r["split"] / r["class"] / r["name"])))
        want = np.asarray(Image.open(root / "masks" / r["split"] / r["class"] / r["name"]))
        assert np.array_equal(ds.irrelevant_mask(index), want)


def test_generator_imports_no_deep_learning_stack():
    code = ("import sys, datasets.shortcut_suite as s; s.SuiteParams(); "
            "print(sorted(m for m in ('tensorflow', 'keras', 'exp_scripts', 'select_tool') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stderr


def test_difficulty_dims_the_object_and_adds_clutter_but_not_on_the_cue():
    import itertools

    from datasets.suite_params import SuiteParams
    from datasets.suite_render import iter_split

    contrast = {}
    for level in ("easy", "medium", "hard"):
        p = SuiteParams(content="glyphs", cue="patch", correlation=1.0, n_train=8, n_val=4, n_test=4, difficulty=level)
        ex = [e for _, e in itertools.islice(iter_split(p, "train"), 8)]
        # the brightest non-cue pixel above the background's median: the object's (or clutter's) ink
        contrast[level] = np.mean([np.percentile(e.clean[e.mask == 0], 99.5) - np.median(e.clean) for e in ex])
        for e in ex:  # the cue's pixels are exactly the mask, whatever the clutter
            assert ((e.image != e.clean).any(axis=-1) == (e.mask > 0)).all()
    assert contrast["easy"] > contrast["medium"] > contrast["hard"] > 0
    with pytest.raises(UserError, match="difficulty must be one of easy, medium, hard, got 'brutal'"):
        SuiteParams(difficulty="brutal")
