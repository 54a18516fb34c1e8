"""Runs a retraining experiment: validate everything, then train each method from the base model with the
shared loop, then write ``summary.json``, ``history.jsonl`` and CAM overlays per method, ``comparison.md`` and ``run.json``.

Order matters for "nothing half-written": the config, selection, masks, data set and
every method (parameters, generators, calibration, misclassified list) are checked and
set up *before* the run folder is touched.
"""
from __future__ import annotations

import dataclasses
import logging
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from classification_models.distributed import cluster_strategy, replicas_of
from classification_models.own_model import freeze_args, trainable_summary
from common import cluster
from common.cluster import TF_CONFIG_ENV, announce_worker
from common.config import to_dict
from common.errors import UserError
from common.io import atomic_write_json, atomic_write_text, ensure_dir
from common.run_files import (SCHEMA_VERSION, Accuracy, BaseInfo, BaseSummary, CueScores, DatasetSpec, Failure,
                              MethodInfo, MethodSummary, PerImageEnergy, RetrainSummary, RunInfo, StoppingInfo, Trainable,
                              ValSwap, WorstGroupInfo, write_file)
from common.runs import run_lock, run_transaction
from common.seeding import SEED_MAX, set_seed
from retraining.config import RetrainConfig, StopSpec
from retraining.data import MaskedSet, RetrainData, load_inputs
from retraining.failure import Progress, record_failure
from retraining.method_summary import method_role, method_summary  # noqa: F401 - method_role: part of this API
from retraining.loop import Diverged, clone_classifier, make_optimizer, run_loop
from retraining.methods import get_method
from retraining.stopping import stopping_rule
from retraining.fast import method_on_path, plan_for
from retraining.metrics import (changed_predictions, cue_metrics, cue_set, evaluate_splits, explain, fetch_shown,
                                split_images, swap_set, test_view)
from retraining.outputs import cam_arrays, comparison_table, save_method_figures, write_propagated
from retraining.groups import GroupSource, group_source, worst_group as _wg
from retraining.tracking import ALONG_FILE, make_tracker
from retraining.val_swap import ValSwapCopy, cue_swapped_copy
from plot_utils.results import CAMS_FILE, save_cams

log = logging.getLogger(__name__)
#: the comparison table of a finished run, next to ``summary.json``
COMPARISON_FILE = "comparison.md"
#: a training split above this many bytes as arrays earns a hint about ``data.stream``
STREAM_HINT_BYTES = 2 << 30


def build_methods(cfg: RetrainConfig):
    """Method instances for the config (unknown names/params, and with ``data.stream``
    methods that need the whole training split, fail before any work)."""
    out = []
    for i, spec in enumerate(cfg.methods):
        try:
            out.append(get_method(spec.name, spec.params, label=spec.key))
            if cfg.data.stream:
                out[-1].check_streaming()
        except UserError as exc:
            raise UserError(f"methods[{i}]: {exc}") from None
    return out


def method_seed(seed: int, label: str) -> int:
    """The seed of one method's run: from the config seed and the method's label, not its
    position, so adding or reordering methods never changes another method's numbers.
    Stays in the seed range of ``common.seeding``."""
    return (int(seed) + zlib.crc32(label.encode("utf-8")) % 100_000) % (SEED_MAX + 1)


def run_retraining(cfg: RetrainConfig, *, base, dataset, selected: MaskedSet, heldout: MaskedSet,
                   run_dir: str | Path, base_info: dict | None = None) -> Path:
    """Runs every method of ``cfg`` on in-memory inputs and writes the run folder.

    Args:
        cfg: the retraining config (``selection`` paths are not read here).
        base: the base ``Classifier`` (never modified).
        dataset: ``datasets.Dataset`` with train/val/test.
        selected, heldout: masked sets (``heldout`` may be empty).
        run_dir: output folder, written as one transaction (``common.runs``): locked,
            built in a private folder and swapped in when whole; an existing run is
            kept as ``<run_dir>.previous``.
        base_info: provenance for ``run.json``: ``{"train_result": path, "dataset": spec}``.

    Returns:
        Path of ``summary.json``; the comparison table is ``COMPARISON_FILE`` next to it
        (``result_lines`` gives both as a command prints them). Progress lines are logged
        (INFO, this module's and ``retraining.loop``'s logger).

    Raises:
        UserError: bad inputs (before anything is written); the folder is locked by
            another run; a method diverged (non-finite loss or weight): the run stops,
            its ``summary.json`` says ``"status": "failed"``, the failing method and the
            finished methods' results, and is kept in ``<run_dir>.failed``.
    """
    strategy = cluster_strategy()
    if strategy is not None and cfg.mode == "fast":
        raise UserError(f"mode 'fast' does not run on several workers yet (${TF_CONFIG_ENV} names "
                        f"{strategy.num_replicas_in_sync}): use \"mode\": \"full\" or run on one worker")
    h, w, k = base.grid_shape
    data = RetrainData(dataset, selected, heldout, (h, w, k),
                       {kk: v for kk, v in dataclasses.asdict(cfg.mask_resize).items()},
                       propagation=cfg.propagation,
                       shuffle_buffer=cfg.data.shuffle_buffer if cfg.data.stream else None)
    if cfg.batch.random > data.train_size():
        raise UserError(f"batch.random {cfg.batch.random} is larger than the training split ({data.train_size()} "
                        f"images): every batch would repeat images; use at most {data.train_size()}")
    methods = build_methods(cfg)
    # same seed, same machine -> bit-identical numbers (see common.seeding.set_seed)
    set_seed(cfg.seed)
    # set up every method before writing anything (calibration, variants, checks)
    for m in methods:
        # the copy draws its unseeded layers' seeds (a user's Dropout) as it is made: under
        # the method's own seed, so methods run before it do not change them
        set_seed(method_seed(cfg.seed, m.label))
        with replicas_of(strategy):  # the trained copy is mirrored on every worker
            clf = clone_classifier(base, freeze=cfg.freeze, precision=cfg.precision)
        m.setup(clf=clf, data=data,
                batch_random=cfg.batch.random, batch_selected=cfg.batch.selected,
                seed=method_seed(cfg.seed, m.label), with_replacement=cfg.batch.with_replacement)

    run_dir = Path(run_dir)
    announce_worker()
    with run_transaction(run_dir) as txn:
        progress = Progress(labels=[m.label for m in methods])
        try:
            _run_methods(cfg, methods, data=data, base=base, dataset=dataset, selected=selected,
                         heldout=heldout, tmp_dir=txn.path, base_info=base_info, txn=txn, progress=progress)
        except _Recorded:
            raise
        except BaseException as exc:  # Ctrl-C, SIGTERM, a full disk, a bug: summary.json says so
            raise record_failure(txn.path, progress, exc) from exc
    return txn.final / "summary.json"


def result_lines(summary_path: str | Path) -> list[str]:
    """What a retraining command prints when a run finished: the comparison table, then
    the path of ``summary.json`` (the last line, for scripts).

    Args:
        summary_path: the ``summary.json`` returned by ``run_retraining`` / ``run_experiment``.

    Returns:
        ``[table, path]``.

    Raises:
        UserError: the run folder has no comparison table (a failed or foreign run).
    """
    summary_path = Path(summary_path)
    table = summary_path.parent / COMPARISON_FILE
    if not table.exists():
        raise UserError(f"run '{summary_path.parent}' has no {COMPARISON_FILE} (a failed run?)")
    return [table.read_text(encoding="utf-8"), str(summary_path)]


def _cue(scores: dict | None) -> CueScores | None:
    return None if scores is None else CueScores(**scores)


def _energies(values) -> list[float | None]:
    """Per-image energies with NaN (no positive evidence) as None."""
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(values, np.float64)]


@dataclasses.dataclass
class _BaseScores:
    """What a run measures once on the base model: every method's "before", its choice criteria, its path."""

    stream: bool  # data.stream: the training split is streamed, not held as arrays
    evaluation: dict
    selected: dict  # metrics.explain of the selected images
    heldout: dict  # ... and of the held-out masked images
    cue_images: Any
    cue_swapped: Any
    cue: dict | None  # behavioural reliance on the test images with a known cue region
    val: Any  # the validation split's (images, labels), or None
    val_cf: ValSwapCopy | None  # the cue-swapped validation copy, the same for every method
    stopping: StopSpec | None  # the rule every method stops by (stopping_rule)
    class_names: list[str] | None
    fast: dict  # the run's path (retraining.fast.plan_for)
    groups: GroupSource | None  # where worst-group accuracy is measured


def _accuracy_cf(clf, cf: ValSwapCopy | None) -> float | None:
    return None if cf is None else float((clf.predict_proba(cf.images).argmax(1) == cf.labels).mean())


def _score_base(cfg: RetrainConfig, *, data, base, dataset, selected, heldout) -> _BaseScores:
    log.info("evaluating the base model (%d selected, %d held-out masked images)", len(selected), len(heldout))
    stream = data.streaming
    evaluation = evaluate_splits(base, dataset, stream=stream)
    if not stream and dataset.arrays("train").images.nbytes > STREAM_HINT_BYTES:
        log.warning("the training split holds %.1f GB as arrays; \"data\": {\"stream\": true} keeps retraining "
                    "memory bounded", dataset.arrays("train").images.nbytes / 1e9)
    cue_images = cue_set(dataset, split="test", seed=cfg.seed, stream=stream)
    cue_swapped = None if cue_images is None else swap_set(
        images=cue_images.images, labels=cue_images.labels, masks=cue_images.masks, seed=cfg.seed)
    val = split_images(dataset, "val", stream=stream) if "val" in dataset.available_splits() else None
    # the user's validation split usually carries the cue: score models on a cue-swapped
    # copy too (the expert's feedback marks the cue), the criterion for choosing; built
    # once and used unchanged for every method, controls included
    val_cf = cue_swapped_copy(base, data, split="val", seed=cfg.seed) if cfg.counterfactual_val and len(selected) else None
    why = None if val_cf is not None else (
        "the dataset has no validation split" if val is None else
        "counterfactual_val is false" if not cfg.counterfactual_val else
        "the selection has no masked image" if not len(selected) else
        "the propagated masks mark no cue cell on the validation images of two classes")
    stopping = stopping_rule(cfg.stopping, has_val=val is not None, has_val_swap=val_cf is not None,
                             why_no_val_swap=why, iterations=cfg.iterations)
    return _BaseScores(stream=stream, evaluation=evaluation, selected=explain(base, selected), heldout=explain(base, heldout),
                       cue_images=cue_images, cue_swapped=cue_swapped,
                       cue=cue_metrics(base, cue_images, seed=cfg.seed, swapped=cue_swapped), val=val, val_cf=val_cf,
                       stopping=stopping, fast=plan_for(cfg, base, val_cf if cfg.mode == "full" or val_cf is None else
                                                        cue_swapped_copy(base, data, seed=cfg.seed, donors="any")),
                       class_names=list(base.class_names or dataset.class_names or []) or None,
                       groups=group_source(cfg.worst_group, dataset=dataset, val_cf=val_cf))


def _train(cfg: RetrainConfig, m, before: _BaseScores, *, selected, mdir: Path, val_cf, stopping, dataset):
    """Runs method ``m``'s loop; returns ``(LoopResult, the selected images' grid CAMs at
    every check)``; with ``track_test`` writes the test accuracy at every check to
    ``ALONG_FILE``. Raises ``Diverged``."""
    along: dict[str, list] = {"iterations": [], "cams": [], "p_true": []}
    tracker = make_tracker(dataset, before.groups, stream=before.stream) if cfg.track_test else None

    def record_cams(it, clf=m.clf):
        if tracker is not None:
            tracker(clf, it)
        if len(selected):
            cb = clf.cams(selected.images, classes=selected.labels, upsample=False)
            along["iterations"].append(it)
            along["cams"].append(np.asarray(cb.cams, np.float32))
            along["p_true"].append(cb.probs[np.arange(len(selected)), selected.labels].astype(np.float32))

    set_seed(method_seed(cfg.seed, m.label))  # each method's TF/Keras randomness, independent of order
    run, val, val_swap = method_on_path(m, before.fast, val=before.val, val_cf=val_cf, cache_dir=cfg.fast.cache_dir)
    strategy = cluster_strategy()
    with replicas_of(strategy):
        optimizer = make_optimizer(cfg.optimizer, cfg.learning_rate, warmup=cfg.warmup)
    try:
        res = run_loop(run, iterations=cfg.iterations, optimizer=optimizer, strategy=strategy,
                       seed=method_seed(cfg.seed, m.label), eval_every=cfg.eval_every, val=val, val_swap=val_swap,
                       history_path=mdir / "history.jsonl", stopping=stopping, on_check=record_cams,
                       bn_batches=cfg.bn_recalibration)
    finally:
        run.release()
    if tracker is not None:
        tracker.save(mdir / ALONG_FILE)
    return res, along


def _score_method(cfg: RetrainConfig, m, res, along: dict, before: _BaseScores, *, dataset, selected, heldout,
                  mdir: Path, val_cf, started: float):
    """Scores the retrained ``m`` and writes its ``cams.npz`` and figures into ``mdir``;
    returns ``(MethodSummary, MethodInfo, extra comparison cells)``."""
    ev = evaluate_splits(m.clf, dataset, stream=before.stream)
    if cfg.save_models:
        # the retrained model, for the before/after feature analyses (vis_exp.feature_change)
        m.clf.save(mdir / "model.keras")
    sel_after, held_after = explain(m.clf, selected), explain(m.clf, heldout)
    cue_after = cue_metrics(m.clf, before.cue_images, seed=cfg.seed, swapped=before.cue_swapped)
    extras = {}
    if len(selected):
        rows = np.arange(len(selected))
        extras = {"p_true_before": float(before.selected["probs"][rows, selected.labels].mean()),
                  "p_true_after": float(sel_after["probs"][rows, selected.labels].mean())}
    cam_sets = {"selected": cam_arrays(selected, before.selected, sel_after),
                "heldout": cam_arrays(heldout, before.heldout, held_after)}
    if along["iterations"]:
        # grid-size CAMs at every check (image size would grow with image area)
        cam_sets["along"] = {"iterations": np.asarray(along["iterations"]), "cams": np.stack(along["cams"]),
                             "p_true": np.stack(along["p_true"]),
                             "kept": np.asarray(res.best["iteration"] if res.best else res.iterations_run)}
    test_changes = None
    test = test_view(dataset, stream=before.stream) if "test" in ev["preds"] else None
    if test is not None:
        test_changes = changed_predictions(labels=test.labels, before=before.evaluation["preds"]["test"],
                                           after=ev["preds"]["test"])
    summary = method_summary(
        m, cfg, res, ev=ev, val_swap=_accuracy_cf(m.clf, val_cf),
        worst_group=(_wg(before.groups, m.clf, ev["preds"]) or {}).get("accuracy"), selected=selected, explained=(
            ("selected", before.selected, sel_after), ("heldout", before.heldout, held_after)),
        cue=(before.cue, cue_after), test_changes=test_changes)
    save_cams(mdir / CAMS_FILE, cam_sets)
    if cfg.overlays:
        if test_changes is not None and (test_changes["fixed"] or test_changes["broken"]):
            fetch_shown(dataset, test, test_changes)
        save_method_figures(mdir, m.label, cam_sets, class_names=before.class_names, test=test,
                            test_changes=test_changes, before=before.evaluation["preds"].get("test"),
                            after=ev["preds"].get("test"))
    info = MethodInfo(
        **m.describe(), seconds=time.perf_counter() - started, batch_seconds=res.batch_seconds,
        trainable=Trainable(**trainable_summary(m.clf.model, **freeze_args(cfg.freeze))),
        changed_test=None if test_changes is None else {
            k: [str(test.indices[i]) for i in v] for k, v in test_changes.items()},
        per_image_energy=PerImageEnergy(selected=_energies(sel_after["energy"]), heldout=_energies(held_after["energy"])))
    log.info("  %s: test acc %.3f (base %.3f), step %.0f ms", m.label, ev["accuracy"].get("test", float("nan")),
             before.evaluation["accuracy"].get("test", float("nan")), res.step_seconds * 1000)
    return summary, info, extras


class _Recorded(UserError):
    """A divergence whose failed ``summary.json`` and ``run.json`` are already written."""


def _run_methods(cfg, methods, *, data, base, dataset, selected, heldout, tmp_dir: Path, base_info, txn,
                 progress: Progress) -> str | None:
    """The body of ``run_retraining``: scores the base, trains and scores every method,
    writes the whole run into ``tmp_dir`` (the comparison table as ``COMPARISON_FILE``) and
    returns that table."""
    h, w, k = base.grid_shape
    atomic_write_json(tmp_dir / "config.json", {**to_dict(cfg), **cluster.record()})
    before = _score_base(cfg, data=data, base=base, dataset=dataset, selected=selected, heldout=heldout)
    base_wg = _wg(before.groups, base, before.evaluation["preds"])
    base_summary = BaseSummary(accuracy=Accuracy(**before.evaluation["accuracy"], val_swap=_accuracy_cf(base, before.val_cf),
                                                 worst_group=(base_wg or {}).get("accuracy")), cue=_cue(before.cue))
    progress.base = base_summary
    results: dict[str, MethodSummary] = progress.results
    extras, described = {}, {}
    failure = None
    for m in methods:
        log.info("method %s (%s%s): up to %d iterations%s", m.label, m.name, ", " + m.letter if m.letter else "",
                 cfg.iterations, f", stopping on {before.stopping.on} accuracy" if before.stopping else "")
        progress.current = m.label
        mdir = ensure_dir(tmp_dir / m.label)
        started = time.perf_counter()
        try:
            res, along = _train(cfg, m, before, selected=selected, mdir=mdir, val_cf=before.val_cf, stopping=before.stopping,
                                dataset=dataset)
        except Diverged as exc:
            failure = exc
            break
        results[m.label], described[m.label], extras[m.label] = _score_method(
            cfg, m, res, along, before, dataset=dataset, selected=selected, heldout=heldout, mdir=mdir, val_cf=before.val_cf,
            started=started)

    if data._propagated is not None:
        write_propagated(tmp_dir / "propagated", data, train_result=str((base_info or {}).get("train_result", "")),
                         sync=False)
    summary = RetrainSummary(
        schema_version=SCHEMA_VERSION, status="complete" if failure is None else "failed", base=base_summary,
        methods=results, failure=None if failure is None else Failure(
            reason=str(failure), method=failure.method, not_run=[m.label for m in methods[len(results) + 1:]]))
    table = None if failure is not None else comparison_table(
        summary, {k: v for k, v in extras.items() if v}, propagated=None if data._propagated is None else data._propagated.describe())
    info = dict(base_info or {})
    if info.get("dataset") is not None:
        info["dataset"] = DatasetSpec(**info["dataset"])
    write_file(tmp_dir / "run.json", RunInfo(
        schema_version=SCHEMA_VERSION, name=cfg.name,
        base=BaseInfo(**info, report=before.evaluation["report"],
                      per_image_energy=PerImageEnergy(selected=_energies(before.selected["energy"]),
                                                      heldout=_energies(before.heldout["energy"]))),
        methods=described, grid=[h, w, k], mask_resize=data.mask_resize,
        selected=list(selected.indices), heldout=list(heldout.indices),
        share_of_train_masked=len(selected) / max(data.train_size(), 1),
        propagated=None if data._propagated is None else data._propagated.describe(),
        val_swap=None if before.val_cf is None else ValSwap(
            n=before.val_cf.n, share_marked=before.val_cf.share_marked, n_complete=before.val_cf.n_complete,
            margin_px=before.val_cf.margin_px, digest=before.val_cf.digest(), note=before.val_cf.note()),
        stopping=None if before.stopping is None else StoppingInfo(**dataclasses.asdict(before.stopping)),
        mask_grid_kept=data.grid_report() or None,
        worst_group=None if base_wg is None else WorstGroupInfo(**before.groups.describe(base_wg))))
    write_file(tmp_dir / "summary.json", summary)
    if failure is not None:
        # the finished methods stay readable in the failed attempt; the last finished run stays in place
        raise _Recorded(f"{failure}; the run is marked failed in '{txn.failed / 'summary.json'}' "
                        f"({len(results)} finished method(s) kept there; '{txn.final}' is unchanged)")
    atomic_write_text(tmp_dir / COMPARISON_FILE, table)
    return table


def run_experiment(cfg: RetrainConfig, *, config_path=None, data_root=None) -> Path:
    """Loads the inputs named by ``cfg`` and runs it (see ``run_retraining``); returns the
    path of ``summary.json``."""
    build_methods(cfg)  # fail fast on unknown methods/params before loading models
    cluster_strategy()  # a multi-worker run's strategy comes before any TensorFlow op
    run_dir = Path(cfg.output_dir) / cfg.name
    with run_lock(run_dir):  # a second run into the same folder fails before loading anything
        tr, base, dataset, selected, heldout = load_inputs(cfg, config_path=config_path, data_root=data_root)
        return run_retraining(cfg, base=base, dataset=dataset, selected=selected, heldout=heldout, run_dir=run_dir,
                              base_info={"train_result": str(tr.path), "dataset": tr.dataset_spec})
