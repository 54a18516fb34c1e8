"""Every command writes where docs/data_and_results.md says, never into the working
directory: each is run in-process from an empty working directory with ``$VF_RESULTS_ROOT``
and ``$VF_DATA_ROOT`` pointing at folders of their own, on the shared tiny real runs.
(Training, retraining, the report and the mask tool have their own tests:
``test_outputs_env``, ``test_report_e2e``, ``test_select_gui_signals``.)"""
import json
from pathlib import Path

import pytest

from image_generator import evaluate, preview, train_inpainter
from select_tool import auto
from tests.fixtures_runs import copy_run, edit_json
from vis_exp import cam_dump, embedding, feature_change, feature_ranking, filter_grids, mask_filters


@pytest.fixture()
def elsewhere(tmp_path, monkeypatch):
    """``(working directory, results root, data root)``, all empty; the working directory is current."""
    work, res, data = tmp_path / "wd", tmp_path / "res", tmp_path / "vf_data"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("VF_RESULTS_ROOT", str(res))
    monkeypatch.setenv("VF_DATA_ROOT", str(data))
    return work, res, data


def _ranking(runs, out: str) -> str:
    """The ranking ``mask_filters`` reads, written next to ``out``."""
    rank = Path(out).parent / "rank"
    assert feature_ranking.main([str(runs.train / "result.json"), "--out", str(rank), "--n-estimators", "10"]) == 0
    return str(rank / "ranking.json")


#: command -> (main, argv from (runs, out), what it writes under --out)
CLIS = {
    "vis_exp.cam_dump": (cam_dump.main, lambda r, o: ["--split", "test", "--out", o], "cams.json"),
    "vis_exp.embedding": (embedding.main, lambda r, o: ["--out", o, "--methods", "pca"], "embedding.json"),
    "vis_exp.feature_ranking": (feature_ranking.main, lambda r, o: ["--out", o, "--n-estimators", "10"],
                                "ranking.json"),
    "vis_exp.filter_grids": (filter_grids.main, lambda r, o: ["--out", o, "--filters", "0"], "filter_000.png"),
    "vis_exp.mask_filters": (mask_filters.main, lambda r, o: [str(r.selection), "--ranking", _ranking(r, o),
                                                              "--out", o], "mask_filters.json"),
    "vis_exp.feature_change": (feature_change.main, lambda r, o: ["--after", str(r.retrain / "pasa" / "model.keras"),
                                                                  "--out", o, "--width", "4"], "feature_002.png"),
    "select_tool.auto": (auto.main, lambda r, o: ["--n", "2", "--out", o], "selection.json"),
    "select_tool.auto --propagate": (auto.main, lambda r, o: ["--propagate", str(r.selection), "--threshold", "0.5",
                                                              "--out", o], "selection.json"),
    "image_generator.train_inpainter": (train_inpainter.main, lambda r, o: ["--out", o, "--smoke"], "inpainter.keras"),
    "image_generator.evaluate": (evaluate.main, lambda r, o: ["--n", "4", "--fills", "1", "--out", f"{o}/eval.json"],
                                 "eval.json"),
}


@pytest.mark.parametrize("command", sorted(CLIS))
def test_a_command_writes_only_under_its_out_folder(command, real_runs, tmp_path, elsewhere, capsys):
    work, res, data = elsewhere
    main, argv, wrote = CLIS[command]
    out = tmp_path / "out"
    assert main([str(real_runs.train / "result.json"), *argv(real_runs, str(out))]) == 0
    assert list(work.iterdir()) == []
    assert (out / wrote).is_file()
    # the train result's own data root exists: its caches are used, the roots stay untouched
    assert not res.exists() and not data.exists()


def test_preview_writes_its_png_only(real_runs, tmp_path, elsewhere):
    work, res, data = elsewhere
    assert preview.main([str(real_runs.selection), "--generator", "crop_replace", "--n", "1",
                         "--out", str(tmp_path / "p.png")]) == 0
    assert list(work.iterdir()) == [] and (tmp_path / "p.png").is_file() and not res.exists() and not data.exists()


def test_a_moved_data_root_and_a_bare_data_set_spec_use_the_data_root(real_runs, tmp_path, elsewhere, caplog):
    import shutil

    work, res, data = elsewhere
    # the data root the train result recorded is gone: its caches are read (and the decoded
    # copies written) under $VF_DATA_ROOT
    run = copy_run(real_runs.train, tmp_path)
    edit_json(run / "result.json", lambda r: r.update(data_root=str(tmp_path / "gone")))
    shutil.copytree(real_runs.data_root, data)
    for decoded in data.rglob("decoded"):
        shutil.rmtree(decoded)
    assert cam_dump.main([str(run / "result.json"), "--split", "test", "--out", str(tmp_path / "cams")]) == 0
    assert [p.name.split("-")[0] for p in data.rglob("decoded/*.npy")] == ["test"]
    # a data set given by its spec is converted under $VF_DATA_ROOT
    spec = json.loads((run / "result.json").read_text())["dataset"]
    spec["params"]["image_size"] = [16, 16]  # another cache than the train result's
    assert train_inpainter.main(["--dataset-spec", json.dumps(spec), "--out", str(tmp_path / "inp"), "--smoke"]) == 0
    assert len(list(data.glob("image_folder/*/dataset.json"))) == 2
    assert list(work.iterdir()) == [] and not res.exists()
