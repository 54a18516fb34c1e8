"""Verified data set caches: corrupt shards are reported with the file and a rebuild hint
(or rebuilt on request), leftovers of killed or failed builds are cleaned, complete
caches are never lost."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import datasets.registry as registry
from common.cli import run_main
from common.errors import UserError
from tests.fixtures_select import run_prepare, write_image_folder

ROOT = Path(__file__).resolve().parents[1]


def spec(images: Path, **params) -> dict:
    return {"name": "image_folder", "params": {"root": str(images), "image_size": [8, 8], "channels": 1, **params}}


@pytest.fixture()
def cache(tmp_path):
    """``(spec, data_root, dataset)``: a tiny image-folder cache (3 × 3 × 2 images of 8×8)."""
    images = write_image_folder(tmp_path / "images", n_per_class=2, hw=(8, 8))
    root = tmp_path / "data"
    s = spec(images)
    return s, root, registry.load(s, data_root=root)


def shard(ds, split="train") -> Path:
    return ds.folder / ds.manifest["files"][split][0]


def test_manifest_pins_every_shard(cache):
    from common.checksums import file_digest

    _, _, ds = cache
    pins = ds.manifest["shards"]
    names = [n for names in ds.manifest["files"].values() for n in names]
    assert sorted(pins) == sorted(names)
    for n in names:
        assert pins[n] == file_digest(ds.folder / n).to_dict()


@pytest.mark.parametrize("damage", ["truncate", "bitflip"])
def test_corrupt_shard_is_reported_with_file_and_rebuild_hint(cache, capsys, damage):
    s, root, ds = cache
    path = shard(ds)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        path.write_bytes(bytes(data[: len(data) // 2]))
    else:
        data[len(data) // 2] ^= 0x40
        path.write_bytes(bytes(data))
    code, out, err = run_prepare(s, root, capsys)
    assert code == 2 and out == "" and len(err.splitlines()) == 1, err
    assert f"data set cache '{ds.folder}' is corrupt: shard '{path}'" in err
    assert ("truncated" in err) if damage == "truncate" else ("SHA-256" in err)
    assert "--rebuild" in err and "VF_REBUILD_CORRUPT=1" in err
    assert "DataLossError" not in err

    code, out, err = run_prepare(s, root, capsys, "--rebuild")
    assert code == 0 and "data set   image_folder" in out
    rebuilt = registry.load(s, data_root=root)
    assert rebuilt.folder == ds.folder and rebuilt.manifest["content_hash"] == ds.manifest["content_hash"]


def test_env_var_rebuilds_a_corrupt_cache_on_open(cache, monkeypatch, caplog):
    s, root, ds = cache
    shard(ds).write_bytes(b"garbage")
    with pytest.raises(UserError, match="is corrupt"):
        registry.load(s, data_root=root)
    monkeypatch.setenv("VF_REBUILD_CORRUPT", "1")
    again = registry.load(s, data_root=root)
    assert "is corrupt" in caplog.text and "rebuilding it (VF_REBUILD_CORRUPT=1)" in caplog.text
    assert len(again.arrays("train")) == len(ds.arrays("train"))
    assert again.manifest["content_hash"] == ds.manifest["content_hash"]


def test_corrupt_cache_through_select_tool_auto(tmp_path, capsys):
    """The cache behind a train result is corrupt: one line, exit 2, no selection written."""
    from select_tool import auto as auto_cli
    from tests.fixtures_select import make_result

    result = make_result(tmp_path, hw=(16, 16), n_per_class=2, steps=0)
    ds = registry.load(json.loads(result.read_text())["dataset"], data_root=tmp_path / "data")
    path = shard(ds)
    path.write_bytes(path.read_bytes()[:-7])
    code = run_main(auto_cli.main, [str(result), "--n", "2", "--pick", "random", "--out", str(tmp_path / "sel")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and f"shard '{path}'" in err and "--rebuild" in err
    assert not (tmp_path / "sel").exists()


def test_failed_conversion_leaves_no_empty_cache_folder(tmp_path):
    images = write_image_folder(tmp_path / "images", n_per_class=2, hw=(8, 8))
    (images / "train" / "left" / "img_000.png").write_bytes(b"not a png")
    root = tmp_path / "data"
    with pytest.raises(UserError, match="cannot read image"):
        registry.load(spec(images), data_root=root)
    assert not (root / "image_folder").exists() or not any((root / "image_folder").iterdir())
    # an empty folder left by an older failure is swept by the next build
    stale = root / "image_folder" / "0123456789ab"
    stale.mkdir(parents=True)
    (images / "train" / "left" / "img_000.png").unlink()
    ds = registry.load(spec(images), data_root=root)
    assert not stale.exists() and ds.folder.is_dir()


KILLED_BUILD = """
import json, sys, time
from tf_records_parser import image_folder
original, seen = image_folder.load_image, [0]
def slow(*args, **kwargs):
    seen[0] += 1
    if seen[0] == 4:
        print("writing", flush=True)
        time.sleep(120)
    return original(*args, **kwargs)
image_folder.load_image = slow
import datasets.registry as registry
registry.load(json.loads(sys.argv[1]), data_root=sys.argv[2])
"""


def test_kill_9_during_conversion_is_cleaned_by_the_next_build(cache, tmp_path):
    s, root, finished = cache
    before = {p: p.read_bytes() for p in finished.folder.iterdir()}
    other = spec(Path(s["params"]["root"]), seed=1)  # another cache under the same data root
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen([sys.executable, "-c", KILLED_BUILD, json.dumps(other), str(root)], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        parts = list((root / "image_folder").rglob(".tmp-*.part"))
        assert parts, "the killed build should have left temporary shards"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    time.sleep(0.05)
    ds = registry.load(other, data_root=root)
    assert not list((root / "image_folder").rglob(".tmp-*.part"))
    assert len(ds.arrays("train")) == len(finished.arrays("train"))
    assert {p: p.read_bytes() for p in finished.folder.iterdir()} == before  # the finished cache is intact
    assert registry.load(s, data_root=root).manifest == finished.manifest


def test_split_view_maps_decoded_images_from_disk(cache):
    """The mask tool's view of a split: the same images as ``arrays``, read from a decoded
    copy on disk (a memmap) that is written once and reused; nothing held in ``_splits``."""
    import numpy as np

    s, root, ds = cache
    view = ds.split_view("train")
    assert isinstance(view.images, np.memmap) and not view.images.flags.writeable
    assert "train" not in ds._splits
    files = sorted((ds.folder / "decoded").glob("train-*.npy"))
    assert len(files) == 1
    stamp = files[0].stat().st_mtime_ns
    again = registry.load(s, data_root=root).split_view("train")
    assert files[0].stat().st_mtime_ns == stamp  # reused, not decoded again
    full = ds.arrays("train")
    np.testing.assert_array_equal(np.asarray(view.images), full.images)
    np.testing.assert_array_equal(again.images, full.images)
    np.testing.assert_array_equal(view.labels, full.labels)
    assert list(view.indices) == list(full.indices)
    assert ds.split_view("train") is full  # in memory already: the arrays themselves


def test_split_view_of_a_truncated_decoded_copy_is_decoded_again(cache):
    import numpy as np

    s, root, ds = cache
    ds.split_view("val")
    path = next((ds.folder / "decoded").glob("val-*.npy"))
    np.save(path, np.zeros((1, 8, 8, 1), np.uint8))  # another shape: a stale or damaged copy
    view = registry.load(s, data_root=root).split_view("val")
    np.testing.assert_array_equal(np.asarray(view.images), ds.arrays("val").images)
    assert len(list((ds.folder / "decoded").glob("val-*.npy"))) == 1


def test_a_tampered_decoded_copy_is_rebuilt_from_the_verified_shards(cache, caplog):
    """Inverted pixels in the decoded copy (same shape and dtype) fail its checksum: the copy
    is rebuilt from the shards, so the mask tool, auto-selection and vis_exp never read it."""
    import numpy as np

    s, root, ds = cache
    ds.split_view("train")
    path = next((ds.folder / "decoded").glob("train-*.npy"))
    recorded = json.loads(path.with_suffix(".sha256.json").read_text())
    tampered = np.load(path)
    np.save(path, 255 - tampered)
    view = registry.load(s, data_root=root).split_view("train")
    np.testing.assert_array_equal(np.asarray(view.images), ds.arrays("train").images)
    assert f"decoded copy '{path}' does not match its checksum" in caplog.text
    assert json.loads(path.with_suffix(".sha256.json").read_text()) == recorded  # the same bytes again
    path.with_suffix(".sha256.json").unlink()  # a copy without its checksum is not trusted either
    stamp = path.stat().st_mtime_ns
    registry.load(s, data_root=root).split_view("train")
    assert path.stat().st_mtime_ns != stamp and path.with_suffix(".sha256.json").is_file()
