"""The feedback loop in the window, driven with real X events: paint, retrain (3 iterations),
see the results view, reject, cancel, retrain again, switch the main window between the base
and the run's CAMs, accept, switch back and forth; round 1's CAMs are the new model's, pixel
for pixel; a changed model file is refused with the checksum message.

Same driver as ``test_select_gui.py``. Screenshots: ``test-artifacts/select_tool_results.png``
(the results view) and ``select_tool_round2.png`` (painting on the accepted model).
"""
import json
import os
import shutil
import subprocess
import time

import numpy as np

from classification_models.cam import normalize_per_map
from classification_models.train_result import load_train_result
from tests.gui_driver import ROOT, Tool, screenshot

ART = ROOT / "test-artifacts"


def keep_shot(display, tmp_path, name):
    screenshot(display, tmp_path / name)
    ART.mkdir(exist_ok=True)
    shutil.copy(tmp_path / name, ART / name)


def click(tool, x, y):
    tool.xdo("mousemove", int(x), int(y), "sleep", 0.1, "click", "1")


def perturbed_copy_of(run_model):
    """Rewrites the run's model with its class weights rolled, so that its CAMs surely differ from the base's."""
    import keras

    model = keras.models.load_model(run_model, compile=False)
    dense = [layer for layer in model.layers if layer.get_weights() and len(layer.get_weights()[0].shape) == 2][-1]
    kernel, *rest = dense.get_weights()
    dense.set_weights([np.roll(kernel, 1, axis=1) * 3.0, *[np.roll(r, 1) for r in rest]])
    model.save(run_model)


def assert_cam_shown(shown, clf, other_clf, result):
    """The CAM the window drew (``model_shown`` event) is ``clf``'s, pixel for pixel, and not ``other_clf``'s."""
    dataset = load_train_result(result).load_dataset().arrays("train")
    pos = list(dataset.indices).index(shown["current"])
    images = dataset.images[pos:pos + 1]
    want = clf.cams(images, classes=[shown["cam_class"]], upsample=True).cams[0]
    other = other_clf.cams(images, classes=[shown["cam_class"]], upsample=True).cams[0]
    np.testing.assert_allclose(np.asarray(shown["cam"]), want, atol=1e-4)
    np.testing.assert_allclose(np.asarray(shown["drawn"]), normalize_per_map(want), atol=1e-4)
    assert not np.allclose(want, other, atol=1e-3)


def open_windows(display, name_regex):
    found = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", name_regex], capture_output=True,
                           text=True, timeout=20, env=dict(os.environ, DISPLAY=display))
    return found.stdout.split()


def switch(tool):
    tool.xdo("key", "--clearmodifiers", "w")
    return tool.wait("model_shown", timeout=60)


def test_retrain_reject_cancel_accept_and_round_two(xdisplay, result, tmp_path):
    session, out = tmp_path / "session", tmp_path / "out"
    tool = Tool(xdisplay, result, "--session", session, "--out", out, "--retrain-iterations", "3", start="all")
    try:
        ready = tool.wait("ready", timeout=90)
        assert ready["round"] == 0
        painted = []
        for _ in range(2):
            tool.key("r", action="rect")
            painted.append(tool.drag(ready, [(24, 1), (30, 8)], pane=0)["index"])
            tool.key("d", action="next")
        # 1. Retrain: a config file in the work folder, progress, a second Retrain refused
        tool.xdo("key", "--clearmodifiers", "ctrl+r")
        started = tool.wait("retrain_started", timeout=20)
        cfg = json.loads(open(started["config"]).read())
        assert cfg["methods"] == [{"name": "swap"}] and cfg["iterations"] == 3
        assert cfg["selection"] == str((out / "selection.json").resolve())
        tool.wait("key", timeout=10, action="retrain")  # (the event of the first Ctrl+R)
        ev = tool.key("ctrl+r", action="retrain")
        assert "already running" in ev["message"]
        finished = tool.wait("retrain_finished", timeout=240)
        assert sorted(finished["tiles"]) == sorted(painted)
        assert finished["verdict"].startswith("swap: test ") and any("kept" in d for d in finished["details"])
        time.sleep(1.5)
        keep_shot(xdisplay, tmp_path, "select_tool_results.png")
        # 2. Reject keeps the current model
        click(tool, *finished["buttons"]["reject"])
        assert tool.wait("rejected", timeout=20)["round"] == 0
        assert not (session / "rounds").exists()

        # 3. Cancel while it prepares: no run folder, no partial or failed folder
        tool.xdo("key", "--clearmodifiers", "ctrl+r")
        second = tool.wait("retrain_started", timeout=20)
        tool.wait("retrain_progress", timeout=30)
        assert tool.key("b", action="brush")["mode"] == "brush"  # the tool answers while the run prepares
        x, y, w, h = ready["cancel_button"]
        click(tool, x + w / 2, y + h / 2)
        cancelled = tool.wait("retrain_cancelled", timeout=30)
        assert cancelled["run"] == second["run"] and not cancelled["run_exists"] and cancelled["leftovers"] == []

        # 4. Retrain again and Accept (Return in the results view)
        tool.xdo("key", "--clearmodifiers", "ctrl+r")
        third = tool.wait("retrain_started", timeout=20)
        finished = tool.wait("retrain_finished", timeout=240)
        run_model = f"{third['run']}/swap/model.keras"
        perturbed_copy_of(run_model)
        base_clf = load_train_result(result).load_classifier()
        run_clf = load_train_result(result).load_classifier(run_model)
        # before Accept, the "Base ↔ new" button shows the run's CAM in the main window, pixel for pixel
        x, y, w, h = ready["switch_button"]
        click(tool, x + w / 2, y + h / 2)
        shown = tool.wait("model_shown", timeout=60)
        run_name = third["run"].rsplit("/", 1)[-1]
        assert shown["model"] == "other" and shown["label"] == f"new model ({run_name})"
        assert shown["label"] in shown["pane_label"] and shown["label"] in shown["title"]
        assert_cam_shown(shown, run_clf, base_clf, result)
        click(tool, *finished["buttons"]["accept"])
        accepted = tool.wait("accepted", timeout=60)
        assert accepted["round"] == 1
        again = tool.wait("ready", timeout=90, round=1)
        new = load_train_result(accepted["result"])
        assert new.file.config["round"] == 1 and new.file.config["parent_run"] == third["run"]
        # round 2 shows the new model's CAM of the image on screen, pixel for pixel
        pos = list(new.load_dataset().arrays("train").indices).index(again["current"])
        images = new.load_dataset().arrays("train").images[pos:pos + 1]
        want = new.load_classifier().cams(images, classes=[again["cam_class"]], upsample=True).cams[0]
        base = base_clf.cams(images, classes=[again["cam_class"]], upsample=True).cams[0]
        np.testing.assert_allclose(np.asarray(again["cam"]), want, atol=1e-4)
        assert not np.allclose(want, base, atol=1e-3)
        # after Accept, W switches the image on screen to the base model's CAM and back
        shown = switch(tool)
        assert shown["model"] == "other" and shown["label"] == "base model (round 0)"
        assert_cam_shown(shown, base_clf, run_clf, result)
        shown = switch(tool)
        assert shown["model"] == "current" and shown["label"] == "new model (round 1)"
        assert_cam_shown(shown, new.load_classifier(), base_clf, result)
        tool.key("d", action="next")
        time.sleep(2.0)
        assert open_windows(xdisplay, "^select_tool — retraining") == []  # no results window left behind
        keep_shot(xdisplay, tmp_path, "select_tool_round2.png")
        rounds = json.loads((session / "rounds.json").read_text())
        assert rounds["current"] == 1 and [r["number"] for r in rounds["rounds"]] == [0, 1]
        assert rounds["rounds"][1]["masks"] == 2 and rounds["rounds"][1]["method"] == "swap"
        tool.xdo("key", "--clearmodifiers", "ctrl+q")
        assert tool.proc.wait(timeout=30) == 0
    finally:
        tool.stop()

    # 5. the accepted model's file changed on disk: refused with the checksum message, round 0 shown
    with open(session / "rounds" / "round_1" / "model.keras", "ab") as fh:
        fh.write(b"changed")
    reopened = Tool(xdisplay, result, "--session", session, "--out", out, start="all")
    try:
        ready = reopened.wait("ready", timeout=90)
        assert ready["round"] == 0
        assert any("round 1 not loaded" in p and "SHA-256" in p for p in ready["load_problems"])
    finally:
        reopened.stop()
