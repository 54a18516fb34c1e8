"""Training (or evaluating) a base classifier from a train config
(``retraining.train_config``) and writing its train result: what
``python -m exp_scripts.do_interactive_exp`` runs (``run_file``).

The run folder describes itself: ``config.json`` (resolved config), ``history.jsonl``
(one line per epoch), ``model.keras``, ``metrics.json`` (accuracy, per-class report and
confusion matrix per split), ``cams/*.png`` (CAM overlays of training images) and,
written last, ``result.json`` — the train result later tools take as their only
argument. The folder is written as one transaction (``common.runs``).
"""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import numpy as np

from classification_models import training
from classification_models.batch_norm_check import batch_norm_check, recalibrate
from classification_models.cam import cam_overlay
from classification_models.classifier import Classifier
from classification_models.feature_layers import grid_facts
from classification_models.input_convention import resolve_convention
from classification_models.model_file import load_keras_model
from classification_models.models import build_model, check_input_shape, resolve_params
from classification_models.train_result import check_model_data, load_train_result, write_train_result
from common import cluster
from common.cluster import announce_worker
from common.config import to_dict
from common.errors import UserError
from common.images import save_png
from common.io import atomic_write_json, ensure_dir
from common.paths import data_root as resolve_data_root
from common.paths import results_root
from common.runs import run_transaction
from common.seeding import set_seed
from datasets import registry
from datasets.remapped import upper_bound_view
from retraining.train_config import TrainConfig, load_train_config, smoke

log = logging.getLogger(__name__)

RESULT_FILE = "result.json"
MODEL_FILE = "model.keras"


def load_dataset(spec: dict, data_root):
    """The data set of ``spec`` via ``datasets.registry`` (tests replace this function)."""
    return registry.load(spec, data_root)


def _shape_text(shape) -> str:
    return "×".join(str(int(v)) for v in shape)


def _build_classifier(cfg: TrainConfig, source: str, dataset, stats_from, strategy):
    """A new Classifier for ``cfg.model`` or the one of ``cfg.init_from``; checks shapes."""
    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    if cfg.model_import is not None:
        with scope:
            return import_classifier(cfg, source, dataset)
    if cfg.init_from is not None:
        upstream = load_train_result(cfg.init_from)
        with scope:
            clf = upstream.load_classifier()
        clf.class_names = None  # retraining on another data set of the same shape may rename classes
        check_model_data(clf, dataset, where=f"{source}: init_from '{cfg.init_from}'")
        clf.class_names = list(dataset.class_names)
        model_info = {"init_from": str(Path(cfg.init_from).resolve()), "upstream_config": upstream.config.get("model"),
                      "upstream_resolved_model": upstream.config.get("resolved_model")}
        return clf, model_info
    params = resolve_params(cfg.model.name, cfg.model.params, source=f"{source}: model.params")
    check_input_shape(params, dataset.image_shape, model_name=f"{source}: model '{cfg.model.name}'")
    mean, std = stats_from.channel_stats()
    with scope:
        model = build_model(input_shape=dataset.image_shape, num_classes=dataset.num_classes, params=params,
                            mean=mean, std=std, seed=cfg.train.seed)
        clf = Classifier(model, dataset.class_names)
    return clf, {"name": cfg.model.name, "params": to_dict(params)}


def import_classifier(cfg: TrainConfig, source: str, dataset):
    """A Classifier around the user's ``.keras`` model of ``cfg.init_from``, checked against
    ``dataset`` (input size, channels, class count); returns ``(clf, model_info)``."""
    imp = cfg.model_import
    where = f"{source}: init_from.model '{imp.model}'"
    model = load_keras_model(imp.model)
    shape = tuple(model.inputs[0].shape[1:])
    if len(shape) != 3 or any(v is None for v in shape):
        raise UserError(f"{where}: the model takes images of shape {shape}; save it with a fixed input size "
                        f"(keras.Input(shape=({', '.join(str(v) for v in dataset.image_shape)})))")
    if tuple(shape[:2]) != tuple(dataset.image_shape[:2]):
        raise UserError(f"{where}: the model takes {_shape_text(shape[:2])} images but data set "
                        f"'{dataset.name}' has {_shape_text(dataset.image_shape[:2])}")
    convention = resolve_convention(model, scale=imp.input.scale, data_channels=int(dataset.image_shape[2]),
                                    source=where)
    clf = Classifier(model, dataset.class_names, input_convention=convention, feature_layer=imp.layers.features,
                     logits_layer=imp.layers.logits, source=where)
    if clf.num_classes != dataset.num_classes:
        raise UserError(f"{where}: Dense layer '{clf.parts.dense.name}' has {clf.num_classes} classes but data set "
                        f"'{dataset.name}' has {dataset.num_classes}")
    bn = check_batch_norm(clf, dataset, batches=imp.recalibrate_batch_norm, where=where)
    facts = grid_facts(clf)
    layer = facts["propagation_layer_for_small_cues"]
    log.info("imported %s: feature grid %s (cells of %s px)%s", imp.model, "×".join(map(str, facts["feature_grid"])),
             facts["cell_px"], "" if layer is None else
             f"; cues smaller than two cells are localised on '{layer}' (cells of {facts['smallest_cue_px']} px, "
             "the smallest cue it can represent)")
    return clf, {"imported": str(Path(imp.model).resolve()), **clf.describe(), "resolution": facts,
                 **({"batch_norm": bn} if bn is not None else {})}


def check_batch_norm(clf, dataset, *, batches: int, where: str, batch_size: int = 64) -> dict | None:
    """The imported model's batch-norm statistics checked on a seeded batch of training
    images (``classification_models.batch_norm_check``); with ``batches`` > 0 replaced by
    the average batch statistics of that many training batches first. Stale statistics
    without a recalibration are reported in one warning line. Returns what ``config.json``
    records (None: the model has no batch-normalisation layer)."""
    indices, _ = dataset.index_table("train")
    if not len(indices):
        return None
    rng = np.random.default_rng(0)

    def sample() -> tuple[np.ndarray, np.ndarray]:  # a seeded batch, read without loading the split
        take = rng.choice(len(indices), size=min(batch_size, len(indices)), replace=False)
        return dataset.read_rows([str(indices[i]) for i in take])

    images, labels = sample()
    before = batch_norm_check(clf, images, labels)
    if before is None:
        return None
    out = {"before": before.to_dict()}
    if batches > 0:
        out["recalibrated_layers"] = recalibrate(clf, (sample()[0] for _ in range(batches)))
        after = batch_norm_check(clf, images, labels)
        out["after"] = after.to_dict()
        log.info("%s: batch-norm moving statistics recalibrated on %d batches of %d training images: accuracy on "
                 "one training batch %.3f -> %.3f", where, batches, batch_size, before.inference_accuracy,
                 after.inference_accuracy)
    elif before.stale:
        log.warning("%s: its batch-norm moving statistics look stale (momentum up to %g): on %d training images it "
                    "scores %.3f in inference mode against %.3f on the images' own statistics; set "
                    "\"init_from\": {\"recalibrate_batch_norm\": 50} to replace them with statistics of your data",
                    where, before.momentum, before.n, before.inference_accuracy, before.batch_accuracy)
    return out



def save_cam_overlays(clf, dataset, folder: Path, count: int) -> list[str]:
    """CAMs (true class) of the first ``count`` training images as PNGs; returns relative paths."""
    if count <= 0:
        return []
    first = [(i.numpy(), x.numpy(), y.numpy()) for i, x, y in dataset.split("train", batch_size=count).take(1)]
    if not first:
        return []
    indices, images, labels = first[0]
    images = np.clip(images, 0, 255).astype(np.uint8)
    indices = [v.decode() if isinstance(v, bytes) else str(v) for v in indices]
    n = len(labels)
    batch = clf.cams(images, classes=labels, upsample=True)
    maps = np.asarray(batch.cams)
    h = images.shape[1]
    scale = max(1, 160 // max(h, 1))
    ensure_dir(folder)
    written = []
    names = clf.class_names or [str(c) for c in range(clf.num_classes)]
    for i in range(n):
        pred = int(batch.probs[i].argmax())
        label = int(labels[i])
        name = f"{indices[i]}_true-{names[label]}_pred-{names[pred]}.png"
        save_png(folder / name, cam_overlay(images[i], maps[i]).repeat(scale, axis=0).repeat(scale, axis=1))
        written.append(f"{folder.name}/{name}")
    return written


def _evaluate(clf, dataset, splits) -> dict:
    sizes = dataset.manifest.get("split_sizes", {})
    return {s: clf.evaluate(dataset, s) for s in splits if sizes.get(s, 0)}


def run(cfg: TrainConfig, *, source: str, data_root=None, output_dir=None) -> Path:
    """Runs ``cfg`` and returns the path of the written train result.

    Raises:
        UserError: bad config values, unknown names, missing files, shape mismatch,
            a non-finite loss or weight (the attempt, with the last good model, is kept in
            ``<run>.failed``; no result is written), a run folder locked by another run.

    The run is a transaction (``common.runs``): built in a private folder, swapped in
    only when complete; an existing run is moved to ``<run>.previous``. In a
    multi-worker cluster (``$TF_CONFIG``) only the chief writes there; the path returned
    on another worker is its temporary copy, removed when the process exits.
    """
    strategy = training.make_strategy(cfg.train.distribute)  # before TF runs any op (multi_worker)
    announce_worker()
    set_seed(cfg.train.seed)
    root = resolve_data_root(data_root).resolve()
    run_dir = Path(output_dir or cfg.output_dir or results_root() / "train" / cfg.name)
    # the whole run is built in a private folder and swapped in when complete: a crash, a
    # non-finite loss or a second run into the same folder never costs the finished run
    with run_transaction(run_dir) as txn:
        work = txn.path
        dataset = load_dataset({"name": cfg.dataset.name, "params": dict(cfg.dataset.params)}, root)
        if len(dataset.class_names) < 2:
            raise UserError(f"{source}: data set '{cfg.dataset.name}' has a single class "
                            f"({', '.join(map(repr, dataset.class_names))}): a classifier needs at least two classes "
                            "(for an image folder, one sub-folder per class under train/)")

        train_view, split_info = dataset, None
        if cfg.upper_bound is not None:
            train_view, split_info = upper_bound_view(dataset, test_fraction=cfg.upper_bound.test_fraction,
                                                      seed=cfg.train.seed)
        clf, model_info = _build_classifier(cfg, source, dataset, train_view, strategy)
        gh, gw = clf.grid_shape[:2]
        if min(gh, gw) < 2:  # a mask is painted on CAM cells: one cell holds the whole image
            log.warning("%s: the CAM grid is %d×%d for %d×%d images: a mask cannot tell one region of an image from "
                        "another, and the feedback methods have nothing to act on; use a larger image_size or a "
                        "model with fewer pooling steps", source, gh, gw, *dataset.image_shape[:2])

        resolved = to_dict(cfg)
        resolved.update({
            "mode": cfg.mode,
            "dataset": dataset.spec,
            "data_root": str(root),
            "resolved_model": model_info,
            "source_config": str(Path(source).resolve()) if Path(source).exists() else source,
            **cluster.record(),
        })
        atomic_write_json(work / "config.json", resolved)
        if split_info is not None:
            atomic_write_json(work / "upper_bound_split.json", split_info)

        fit_result = None
        if not cfg.eval_only:
            t = cfg.train
            options = training.FitOptions(
                epochs=t.epochs, batch_size=t.batch_size, learning_rate=t.learning_rate, optimizer=t.optimizer,
                momentum=t.momentum, seed=t.seed, augment=t.augmentation, max_steps_per_epoch=t.max_steps_per_epoch,
            )
            val_split = None if cfg.upper_bound is not None else "val"
            fit_result = training.fit(clf, train_view, options, val_split=val_split,
                                      history_path=work / "history.jsonl", strategy=strategy,
                                      label=f"{cfg.mode} training")
        model_path = clf.save(work / MODEL_FILE)
        if fit_result is not None and fit_result.stopped:
            raise UserError(f"{fit_result.stopped}; the attempt is kept in '{txn.failed}' ({model_path.name}: those "
                            f"weights; history.jsonl ends with the stop; no {RESULT_FILE} written); "
                            f"'{run_dir}' is unchanged")

        if cfg.upper_bound is not None:
            metrics = _evaluate(clf, train_view, ["train", "test"])  # test = held-out rest only
        else:
            metrics = _evaluate(clf, dataset, dataset.available_splits())
        atomic_write_json(work / "metrics.json", metrics)
        overlays = save_cam_overlays(clf, dataset, work / "cams", cfg.cam_overlays)

        payload = {
            "name": cfg.name,
            "mode": cfg.mode,
            "model_path": MODEL_FILE,
            "dataset": dataset.spec,
            "data_root": str(root),
            "class_names": list(dataset.class_names),
            "image_shape": list(dataset.image_shape),
            "input": clf.input_convention.to_dict(),
            "model_parts": clf.parts.describe(),
            "metrics": metrics,
            "run_dir": ".",
            "config": resolved,
            "files": {"config": "config.json", "metrics": "metrics.json", "history": "history.jsonl",
                      "cam_overlays": overlays,
                      **({"upper_bound_split": "upper_bound_split.json"} if split_info is not None else {})},
            "training": None if fit_result is None else {
                "epochs_completed": fit_result.epochs_completed, "steps": fit_result.steps,
                "seconds": fit_result.seconds,
            },
        }

        write_train_result(work / RESULT_FILE, payload)
    return txn.final / RESULT_FILE


def run_file(config_path: str | Path, *, data_root=None, output_dir=None, smoke_preset: bool = False) -> Path:
    """What the command does, without the command line (for tools that train in-process):
    loads the train config file, applies the ``--smoke`` preset if asked, runs it.

    Args:
        config_path: a train config JSON.
        data_root: the data cache root (default $VF_DATA_ROOT or ./data).
        output_dir: the run folder (default: the config's ``output_dir`` or
            ``<results root>/train/<name>``).
        smoke_preset: 1 epoch of 3 steps (``--smoke``).

    Returns:
        The path of the written train result.

    Raises:
        UserError: see ``run``.
    """
    cfg = load_train_config(config_path)
    if smoke_preset:
        cfg = smoke(cfg)
    return run(cfg, source=str(config_path), data_root=data_root, output_dir=output_dir)


def summary_line(result_path: Path) -> str:
    """One line on a train result: name, mode, training time and accuracy per split."""
    res = load_train_result(result_path)
    parts = [f"{s} {float('nan') if m.accuracy is None else m.accuracy:.4f} (n={m.n})" for s, m in res.metrics.items()]
    took = f" in {res.file.training.seconds:.1f}s" if res.file.training is not None else ""
    return f"{res.name} [{res.file.mode}]{took}: accuracy " + ", ".join(parts)
