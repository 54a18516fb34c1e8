"""The run-file schemas (``common.run_files``) on the files the real writers produced:
round trips, one-line errors naming file and field, schema versions."""
import json

import pytest

from common.config import from_dict, to_dict
from common.errors import UserError
from common.run_files import (SCHEMA_VERSION, HistoryRow, RetrainSummary, RunInfo, checked_dict, load_history_file,
                              load_run_info, load_summary)
from common.train_files import TrainResultFile, load_train_result_file
from tests.fixtures_runs import copy_run, edit_json


def _written_run_files(real_runs):
    return {RetrainSummary: (real_runs.retrain / "summary.json", load_summary),
            RunInfo: (real_runs.retrain / "run.json", load_run_info),
            TrainResultFile: (real_runs.train / "result.json", load_train_result_file)}


@pytest.mark.parametrize("cls", [RetrainSummary, RunInfo, TrainResultFile])
def test_written_files_round_trip(real_runs, cls):
    path, load = _written_run_files(real_runs)[cls]
    raw = json.loads(path.read_text())
    obj = load(path)
    assert raw["schema_version"] == SCHEMA_VERSION == obj.schema_version
    assert to_dict(obj) == raw  # every key the writer wrote is a field, nothing is dropped
    assert from_dict(cls, checked_dict(obj), source="x") == obj


def test_history_rows_round_trip(real_runs):
    path = real_runs.retrain / "pasa" / "history.jsonl"
    raw = [json.loads(line) for line in path.read_text().splitlines()]
    rows = load_history_file(path)
    assert [to_dict(r) for r in rows] == raw and all(r["schema_version"] == SCHEMA_VERSION for r in raw)
    assert [r.iteration for r in rows] == [1, 2] and rows[1].val_accuracy is not None
    stopped = HistoryRow(iteration=3, stopped="method pasa diverged")
    assert from_dict(HistoryRow, checked_dict(stopped), source="x") == stopped


def test_summary_values_match_the_run(real_runs):
    s, info = load_summary(real_runs.retrain), load_run_info(real_runs.retrain)
    assert s.status == "complete" and s.failure is None and list(s.methods) == list(info.methods) == ["continued", "pasa"]
    assert [m.role for m in s.methods.values()] == ["baseline", "feedback"]
    assert set(s.methods["pasa"].selected_probabilities) == set(info.selected)
    assert s.base.cue is not None and s.base.cue.n > 0  # the image folder has a masks tree
    assert info.base.dataset.name == "image_folder" and info.base.train_result.endswith("result.json")
    assert info.methods["pasa"].params["base"] == 0.4 and info.stopping is None


@pytest.mark.parametrize("change, message", [
    (lambda s: s["methods"]["pasa"].update(colour="red"), "unknown key 'methods.pasa.colour'"),
    (lambda s: s["methods"]["pasa"]["accuracy"].update(test="high"), "methods.pasa.accuracy.test must be a number, got 'high'"),
    (lambda s: s["base"].pop("accuracy"), "missing required key 'base.accuracy'"),
    (lambda s: s["methods"]["continued"].update(role="teacher"), "methods.continued.role must be one of"),
])
def test_bad_summary_is_one_line_naming_file_and_field(real_runs, tmp_path, change, message):
    run = copy_run(real_runs.retrain, tmp_path)
    edit_json(run / "summary.json", change)
    with pytest.raises(UserError) as err:
        load_summary(run)
    text = str(err.value)
    assert text.startswith(f"{run / 'summary.json'}: ") and message in text and "\n" not in text
    from plot_utils.results import load_run

    with pytest.raises(UserError, match="summary.json: "):  # every reader goes through the schema
        load_run(run)


def test_bad_history_row_names_file_and_row(real_runs, tmp_path):
    run = copy_run(real_runs.retrain, tmp_path)
    path = run / "pasa" / "history.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[1]["ce"] = "low"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(UserError, match=rf"^{path} row 2: ce must be a number, got 'low'$"):
        load_history_file(path)


@pytest.mark.parametrize("version, hint", [(2, "update this tool"), (0, "re-run"), ("1", "re-run")])
def test_other_schema_version_is_refused(real_runs, tmp_path, version, hint):
    run = copy_run(real_runs.retrain, tmp_path)
    edit_json(run / "run.json", lambda s: s.update(schema_version=version))
    with pytest.raises(UserError) as err:
        load_run_info(run)
    text = str(err.value)
    assert text.startswith(f"{run / 'run.json'}: schema_version {json.dumps(version)} is not supported "
                           f"(this version reads {SCHEMA_VERSION}); ") and hint in text and "\n" not in text


def test_files_without_a_version(real_runs, tmp_path):
    """Written before files carried schema_version: read when they match the schema,
    else the error says to re-run."""
    run = copy_run(real_runs.retrain, tmp_path)
    edit_json(run / "summary.json", lambda s: s.pop("schema_version"))
    assert load_summary(run) == load_summary(real_runs.retrain)
    edit_json(run / "summary.json", lambda s: [m.pop("iterations") for m in s["methods"].values()])
    with pytest.raises(UserError, match=r"summary.json: missing required key 'methods.continued.iterations' \(the file "
                                        r"has no schema_version: it was written by an older version of this tool; "
                                        r"re-run that step to rewrite it\)$"):
        load_summary(run)


def test_train_result_is_checked_when_read_and_written(real_runs, tmp_path):
    from classification_models.train_result import load_train_result, write_train_result

    train = copy_run(real_runs.train, tmp_path)
    res = load_train_result(train / "result.json")
    assert res.file.model_file is not None and res.metrics["test"].n == 12
    edit_json(train / "result.json", lambda r: r.update(image_shape="24x24"))
    with pytest.raises(UserError, match=r"result.json: image_shape must be a list, got '24x24'$"):
        load_train_result(train / "result.json")
    with pytest.raises(UserError, match="unknown key 'model'"):
        write_train_result(tmp_path / "new.json", {"model": "m.keras", "model_path": "m.keras",
                                                   "dataset": {"name": "symbols"}, "class_names": ["a"],
                                                   "image_shape": [8, 8, 1]})
    assert not (tmp_path / "new.json").exists()
