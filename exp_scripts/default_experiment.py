"""The default experiment (README command (a)): what the tool is for, on a bundled data set.

A set of the shortcut benchmark suite (``datasets.shortcut_suite.DEFAULT_SET``) is
written as an image folder under the data root, a base model is trained on it to
convergence through the generic ``image_folder`` path, 1 % of its training images are
masked from the set's ground-truth cue masks (the default pick: misclassified first, in
turns from each class; plus 20 held-out masked test images) and every method runs with
its default parameters. The set's
training images carry their class's cue with probability 1, so no training image
contradicts the cue: plain continued training or reweighting the errors cannot remove
the shortcut, only the feedback can — the comparison's verdict line says how much it did.

The base model is trained once and reused (``<results>/train/<set>``).
"""
from __future__ import annotations

import logging
import math
from pathlib import Path

from classification_models.train_result import load_train_result
from common.config import from_dict
from common.errors import UserError
from common.io import atomic_write_json
from common.paths import data_root as default_data_root
from common.paths import results_root
from datasets.shortcut_suite import DEFAULT_SET, default_set_name
from retraining import base_training, suite_configs
from retraining.auto_select import DEFAULT_PICK, HELDOUT_FILE, auto_select
from retraining.config import RetrainConfig

log = logging.getLogger(__name__)

#: the methods of the default comparison (``config_files/default_experiment/default.json``):
#: no-feedback baselines, the thesis's PAS and PASA, RRR, and the recommended default
#: (``swap``, masks propagated) with its wrong-masks control. The other thesis methods are
#: one config away.
METHODS = suite_configs.default_experiment_methods(smoke=False)


def set_name(smoke: bool) -> str:
    return default_set_name(smoke)


def ensure_data(*, smoke: bool, data_root) -> tuple[Path, object]:
    """The default set's image folder (written on first use) and its suite spec."""
    spec = suite_configs.get_set(DEFAULT_SET)
    if smoke:
        spec = suite_configs.smoke_spec(spec)
    root = default_data_root(data_root)
    return suite_configs.ensure_set(root / "suite", spec), spec


def base_result_path(smoke: bool) -> Path:
    return results_root() / "train" / set_name(smoke) / base_training.RESULT_FILE


def ensure_base_model(*, smoke: bool, data_root) -> Path:
    """The default base model's train result: reused when present, else trained in-process
    (progress and the trainer's summary line logged at INFO).

    Raises:
        UserError: the training failed (its error, or no train result written).
    """
    result = base_result_path(smoke)
    if result.exists():
        log.info("reusing the base model %s", result)
        return result
    folder, spec = ensure_data(smoke=smoke, data_root=data_root)
    cfg = suite_configs.train_config(set_name(smoke), folder, spec, seed=0)
    epochs = suite_configs.default_experiment(smoke).epochs
    if epochs is not None:
        cfg["train"]["epochs"] = epochs
    out = result.parent
    cfg_path = out.parent / f"{out.name}_train_config.json"
    atomic_write_json(cfg_path, cfg)
    log.info("training the default base model on %s into %s (once; reused afterwards)", folder, out)
    written = base_training.run_file(cfg_path, data_root=data_root, output_dir=out)
    if not result.exists():
        raise UserError(f"training the default base model wrote '{written}', not '{result}'; run "
                        f"python -m exp_scripts.do_interactive_exp {cfg_path} to see why")
    log.info("%s", base_training.summary_line(result))
    log.info("%s", result)
    return result


def default_config(*, smoke: bool, data_root, output_dir: str | None):
    """Builds the default experiment (base model, auto selection) and returns ``(config, config_path)``;
    what it does is logged at INFO."""

    result = ensure_base_model(smoke=smoke, data_root=data_root)
    tr = load_train_result(result)
    n_train = len(tr.load_dataset(data_root).arrays("train"))
    out = Path(output_dir) if output_dir else results_root() / "backprops"
    name = f"{set_name(smoke)}_default"
    sel_dir = out / f"{name}_selection_{DEFAULT_PICK}"
    exp = suite_configs.default_experiment(smoke)
    n_sel = max(1, int(math.floor(suite_configs.suite_methods().masked_share * n_train + 1e-9)))
    sel = auto_select(tr, n=n_sel, out_dir=sel_dir, pick=DEFAULT_PICK, mask_from="ground_truth",
                      heldout=exp.heldout, heldout_split="test", seed=0, data_root=data_root)
    held = sel.parent / HELDOUT_FILE
    retrain = dict(exp.retrain)
    batch = dict(retrain.pop("batch"))
    raw = {
        "name": name,
        "selection": str(sel.resolve()),
        "heldout_selection": str(held.resolve()) if held.exists() else None,
        "methods": [dict(m) for m in suite_configs.default_experiment_methods(smoke)],
        **retrain,
        # fewer masked images than batch slots (small sets, smoke): drawn with replacement, said so
        "batch": {**batch, "with_replacement": n_sel < batch["selected"]},
        "output_dir": str(out),
    }
    if data_root:
        raw["data_root"] = str(data_root)
    path = sel_dir / "retrain_config.json"
    atomic_write_json(path, raw)
    return from_dict(RetrainConfig, raw, source=str(path)), path
