"""README command (a) in its CI size: the bundled shortcut set, the base model, the
auto-selection and every default method, ending with the verdict line and the summary path."""
import json
import logging
from pathlib import Path

from exp_scripts import exp_backprops
from exp_scripts.default_experiment import METHODS


def test_default_experiment_smoke_prints_verdict_then_summary(tmp_path, monkeypatch, capsys, caplog):
    monkeypatch.setenv("VF_RESULTS_ROOT", str(tmp_path / "results"))
    monkeypatch.setenv("VF_DATA_ROOT", str(tmp_path / "data"))
    assert exp_backprops.main(["--smoke", "--quiet"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.strip()]
    summary_path = Path(lines[-1])
    assert summary_path.name == "summary.json" and summary_path.exists()
    # tiny smoke training: the line may open with "feedback did NOT beat ..." and its causes
    assert lines[-2].startswith("Verdict: ") and "best feedback method " in lines[-2]
    assert "vs the best no-feedback baseline" in lines[-2] and "cue flip rate on test" in lines[-2]
    summary = json.loads(summary_path.read_text())
    assert list(summary["methods"]) == [m.get("label", m["name"]) for m in METHODS]
    roles = {k: m["role"] for k, m in summary["methods"].items()}
    assert roles["continued"] == roles["misclassified"] == "baseline" and roles["swap"] == "feedback"
    assert roles["swap_random_masks"] == "control"
    # the bundled set has ground-truth cue masks on its test images: reliance is measured
    assert summary["base"]["cue"]["n"] > 0 and 0 <= summary["base"]["cue"]["flip_rate"] <= 1
    assert (tmp_path / "data" / "suite" / "patch-digits-gray-c1.0-smoke" / "suite.json").exists()
    # a second run reuses the base model and the data (the retraining itself is tested above)
    from exp_scripts.default_experiment import ensure_base_model

    before = (tmp_path / "results").stat().st_mtime_ns
    caplog.set_level(logging.INFO, logger="exp_scripts.default_experiment")
    result = ensure_base_model(smoke=True, data_root=None)
    assert f"reusing the base model {result}" in caplog.messages
    assert result.exists() and (tmp_path / "results").stat().st_mtime_ns == before
