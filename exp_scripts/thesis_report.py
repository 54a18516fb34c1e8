"""One command for every table and figure on the default data set.

Run::

    python -m exp_scripts.thesis_report                 # default runs (reused when present)
    python -m exp_scripts.thesis_report --smoke         # tiny runs, smaller analyses, PNG only: for CI
    python -m exp_scripts.thesis_report --example-datasets config_files/train_files/symbols.json

Steps: (1) the default experiment's base model (``<results>/train/<default set>``) and
(2) its retraining run (``exp_scripts.exp_backprops`` with no config, into
``<results>/backprops/<default set>_default``) are reused when their result files exist,
else run; (3) tables (``plot_utils.tables``), figures (``plot_utils.figures``,
``plot_utils.cam_figures``) and the chapter-7 analyses (``vis_exp.*``) are written into
``--out`` (default ``<results>/thesis_report``) with an ``index.md`` that shows them and
the same page as ``index.html`` (opens in a browser; the path printed last). Every step
runs in this process: the model and data set are loaded once.

Besides the tables of the runs: the base model's CAMs of the true and the predicted
class for a few validation images per class (thesis Table 3.7), example training images
per class of the run's data set and of every ``--example-datasets`` config (a train
config with a ``dataset`` block, or a bare ``{"name", "params"}`` spec; thesis Tables
6.1 / 6.5 / 6.9) and, when a retrained model is at hand, every last-conv feature's
activation change against its importance rank (thesis Fig 7.10). Optional inputs the
default runs do not produce: ``--expert FILE`` (expert filter labels, Fig 7.4),
``--after-model FILE`` (a retrained .keras model, Table 7.3 and Figs 7.6-7.10; default:
the retraining run's PASA model), ``--lambda-sweep FILE`` / ``--masks-sweep FILE``
(sweep JSON, Figs 5.1/5.2).
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

import datasets
from common.cli import quiet_tf_logs, run_main
from common.config import load_config
from common.errors import UserError
from common.io import atomic_write_json, atomic_write_text, read_json
from common.logs import muted, parse_command_line
from common.paths import results_root
from common.runs import run_transaction
from datasets.registry import parse_spec
from datasets.shortcut_suite import default_set_name
from exp_scripts.default_experiment import default_config, ensure_base_model
from exp_scripts.report_analysis import analysis_section
from plot_utils import figures, tables
from plot_utils.cam_figures import base_cams_figure, example_grid_figure
from plot_utils.figures import save_figure
from plot_utils.report_page import Page, md_figures, md_image, to_html
from plot_utils.results import load_history, load_runs
from retraining.runner import run_experiment
from retraining.train_config import TrainConfig
from vis_exp import gap_features
from vis_exp.cam_dump import true_and_predicted_cams
from vis_exp.gap_features import per_class_positions

log = logging.getLogger(__name__)

#: validation images per class in the base model's CAM figure (Table 3.7)
CAM_IMAGES_PER_CLASS = 3
#: training images per class in the example grids (Tables 6.1 / 6.5 / 6.9)
EXAMPLES_PER_CLASS = 6


# ----- the runs ----------------------------------------------------------------------
def ensure_training_run(*, smoke: bool, data_root: str | None) -> Path:
    """The default experiment's base model (``<results>/train/<default set>/result.json``),
    trained in-process when absent (``exp_scripts.default_experiment``)."""
    return ensure_base_model(smoke=smoke, data_root=data_root)


def ensure_retraining_run(*, smoke: bool, rerun: bool, data_root: str | None, page: Page | None = None) -> Path:
    """The default retraining run's folder, running the default experiment
    (``exp_scripts.exp_backprops`` with no config) in-process when absent or ``rerun``."""
    run_dir = results_root() / "backprops" / f"{default_set_name(smoke)}_default"
    if (run_dir / "summary.json").exists() and not rerun:
        log.info("reusing retraining run %s", run_dir)
        return run_dir
    if page is not None:
        page.step("python -m exp_scripts.exp_backprops" + (" --smoke" if smoke else ""))
    # the page lists the step; its own progress is muted (shown with -v)
    with muted("exp_scripts.default_experiment", "retraining.base_training", "classification_models",
               "retraining.auto_select", "retraining"):
        cfg, cfg_path = default_config(smoke=smoke, data_root=data_root, output_dir=None)
        summary = Path(run_experiment(cfg, config_path=cfg_path, data_root=data_root))
    if not summary.exists():
        raise UserError(f"retraining finished but its summary '{summary}' does not exist")
    return summary.parent


# ----- data sets ---------------------------------------------------------------------
def dataset_spec_from_file(path: str | os.PathLike) -> dict:
    """The data set spec ``{"name", "params"}`` of a config file: a train config (its
    ``dataset`` block, the whole config validated) or a bare spec.

    Raises:
        UserError: unreadable JSON, an invalid train config or spec (naming the file).
    """
    data = read_json(path, what="data set config")
    if isinstance(data, dict) and "dataset" in data:
        spec = load_config(TrainConfig, path).dataset
        return {"name": spec.name, "params": dict(spec.params)}
    try:
        name, params = parse_spec(data)
    except UserError as exc:
        raise UserError(f"{path}: {exc} (expected a train config or a data set spec {{name, params}})") from None
    return {"name": name, "params": params}


def example_images(dataset, *, split: str = "train", per_class: int = EXAMPLES_PER_CLASS,
                   seed: int = 0) -> tuple[list[np.ndarray], list[list[str]]]:
    """Up to ``per_class`` random images of every class of ``split``: ``(images per class,
    indices per class)``."""
    arr = dataset.split_view(split)
    groups = per_class_positions(arr.labels, per_class, seed)
    groups += [np.zeros(0, int)] * (dataset.num_classes - len(groups))  # classes absent from the split
    return [arr.images[g] for g in groups], [[str(i) for i in arr.indices[g]] for g in groups]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "dataset"


def example_sections(page: Page, own, own_title: str, configs: Sequence[str]) -> None:
    """Tables 6.1 / 6.5 / 6.9: example training images per class of the run's data set
    (``own``) and of every data set config in ``configs``."""
    fig_dir = page.out / "figures"
    items = [("examples", own, own_title, None)]
    used = {"examples"}
    for path in configs:
        spec = dataset_spec_from_file(path)
        name = f"examples_{_slug(Path(path).stem)}"
        while name in used:
            name += "_"
        used.add(name)
        log.info("loading data set %s of %s (generated or converted on first use)", spec["name"], path)
        items.append((name, datasets.load(spec, page.data_root), f"{spec['name']} ({Path(path).name})", str(path)))
    shown = []
    for name, ds, title, source in items:
        images, indices = example_images(ds)
        save_figure(example_grid_figure(images_by_class=images, class_names=ds.class_names,
                                        title=f"Example training images: {title}"), fig_dir, name, formats=page.formats)
        atomic_write_json(fig_dir / f"{name}.json", {
            "dataset": ds.spec, "config": source, "split": "train", "class_names": list(ds.class_names),
            "indices": indices})
        shown.append((f"figures/{name}.png", f"{title}: {len(ds.class_names)} classes (rows), "
                                             f"up to {EXAMPLES_PER_CLASS} training images each"))
    page.sections.append("## Example images per data set (thesis Tables 6.1 / 6.5 / 6.9)\n\n" + md_figures(shown))


# ----- sections ----------------------------------------------------------------------
def table_sections(page: Page, runs) -> None:
    built = tables.build_tables(runs)
    tables.save_tables(built, page.out / "tables")
    for t in built:
        page.sections.append(f"## {t.caption}\n\n[LaTeX](tables/{t.name}.tex)\n\n"
                             + t.markdown.replace("](visualisation_images/", "](tables/visualisation_images/"))


def base_cam_section(page: Page, train_result, clf, dataset) -> None:
    """Table 3.7: the base model's CAMs of the true and the predicted class."""
    cams = true_and_predicted_cams(clf, dataset, split="val", per_class=CAM_IMAGES_PER_CLASS)
    fig_dir = page.out / "figures"
    fig = base_cams_figure(images=cams["images"], labels=cams["labels"], probs=cams["probs"],
                           cams_true=cams["cams_true"], cams_pred=cams["cams_pred"], indices=cams["indices"],
                           class_names=train_result.class_names,
                           title="Base model: image | CAM of the true class | CAM of the predicted class")
    save_figure(fig, fig_dir, "base_cams", formats=page.formats)
    # the arrays the figure is drawn from, beside it
    np.savez_compressed(fig_dir / "base_cams.npz", **{k: np.asarray(v) for k, v in cams.items()})
    wrong = int((cams["probs"].argmax(axis=1) != cams["labels"]).sum())
    page.sections.append(
        "## Visualisation of the base model (thesis Table 3.7)\n\n"
        f"Up to {CAM_IMAGES_PER_CLASS} validation images per class (one row per class): the image, the CAM of "
        f"its true class and the CAM of the predicted class with their probabilities ({wrong} of "
        f"{len(cams['labels'])} misclassified, predicted class in red).\n\n" + md_image("figures/base_cams.png", "base CAMs"))


def figure_section(page: Page, retrain_dir: Path, clf, dataset, args) -> dict:
    fig_dir = page.out / "figures"
    figs = []
    per_method = load_history(retrain_dir)
    for m in per_method:
        figures.save_figure(figures.loss_figure(figures.history_series(per_method, m), title=m), fig_dir,
                            f"loss_{m}", formats=page.formats)
        figs.append((f"figures/loss_{m}.png", f"Loss (CE + activation term) and selected p_true — {m}"))
    figures.save_figure(figures.pasa_surface_figure(), fig_dir, "pasa_surface", formats=page.formats)
    figs.append(("figures/pasa_surface.png", "PASA penalty surface (B=0.4, th=0.7)"))
    act = figures.act_values(clf, dataset, "train", page.n_images)
    figures.save_figure(figures.act_histogram_figure(act), fig_dir, "act_histogram", formats=page.formats)
    figs.append(("figures/act_histogram.png",
                 f"Act without masks: mean {act.mean():.3g}, min {act.min():.3g}, max {act.max():.3g}"))
    for flag, key, name, title in ((args.lambda_sweep, "lambda", "lambda_sweep", "λ sweep vs validation accuracy"),
                                   (args.masks_sweep, "n_masks", "masks_sweep", "number of masks vs validation accuracy")):
        if flag:
            x, y = figures.sweep_points(read_json(flag, what="sweep file"), key, source=flag)
            figures.save_figure(figures.sweep_figure(x, y, xlabel=key, log_x=key == "lambda"), fig_dir, name,
                                formats=page.formats)
            figs.append((f"figures/{name}.png", title))
        else:
            page.not_done.append(f"{title}: pass --{name.replace('_', '-')} SWEEP.json "
                                 "(from exp_scripts.exp_backprops --sweep)")
    page.sections.append("## Figures\n\n" + md_figures(figs))
    return per_method


def per_method_section(page: Page, retrain_dir: Path, methods) -> None:
    """Per method: CAMs before/after, along the run, and the test images that changed class."""
    rel_run = os.path.relpath(retrain_dir.resolve(), page.final.resolve())
    per = []
    for m in methods:
        shown = [(f"{rel_run}/{m}/{name}.png", caption) for name, caption in (
            ("cams_selected", "selected images: CAM before → after"),
            ("cams_iterations", "selected images: CAM along the run"),
            ("cams_heldout", "held-out masked test images: CAM before → after"),
            ("changed_test", "test images whose prediction changed")) if (retrain_dir / m / f"{name}.png").exists()]
        if shown:
            per.append(f"### {m}\n\n" + md_figures(shown))
    if per:
        page.sections.append("## Retraining, per method\n\n" + "\n\n".join(per))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m exp_scripts.thesis_report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=None, help="report folder (default <results>/thesis_report[_smoke])")
    parser.add_argument("--smoke", action="store_true", help="tiny runs and few images (CI)")
    parser.add_argument("--rerun", action="store_true",
                        help="run the retraining again even if its summary exists (the base model is reused)")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--train-run", default=None, help="use this training run folder instead of the default")
    parser.add_argument("--retrain-run", default=None, help="use this retraining run folder instead of the default")
    parser.add_argument("--example-datasets", nargs="+", default=[], metavar="CONFIG",
                        help="also show example images of these data sets (train configs or {name, params} specs)")
    parser.add_argument("--expert", default=None, help="expert filter labels JSON (Fig 7.4)")
    parser.add_argument("--after-model", default=None, help="retrained .keras model (Table 7.3, Figs 7.6-7.10)")
    parser.add_argument("--lambda-sweep", default=None, help="λ sweep JSON (Fig 5.1)")
    parser.add_argument("--masks-sweep", default=None, help="number-of-masks sweep JSON (Fig 5.2)")
    args = parse_command_line(parser, argv)
    quiet_tf_logs()
    for path in args.example_datasets:  # a bad config fails before any run starts
        dataset_spec_from_file(path)
    final = Path(args.out or results_root() / ("thesis_report_smoke" if args.smoke else "thesis_report"))
    # the report folder is one transaction (common.runs): built privately, swapped in when whole
    with run_transaction(final) as txn:
        page = Page(out=txn.path, final=final, smoke=args.smoke, data_root=args.data_root)
        if args.train_run:
            result = Path(args.train_run) / "result.json"
            if not result.exists():
                raise UserError(f"--train-run '{args.train_run}' has no result.json")
        else:
            result = ensure_training_run(smoke=args.smoke, data_root=args.data_root)
        train_dir = result.parent
        retrain_dir = Path(args.retrain_run) if args.retrain_run else ensure_retraining_run(
            smoke=args.smoke, rerun=args.rerun, data_root=args.data_root, page=page)

        runs = load_runs([train_dir, retrain_dir])
        train_result, clf, dataset = gap_features.load_model_and_data(result, args.data_root)
        table_sections(page, runs)
        base_cam_section(page, train_result, clf, dataset)
        example_sections(page, dataset, f"{train_result.name} (the report's data set)", args.example_datasets)
        methods = figure_section(page, retrain_dir, clf, dataset, args)
        per_method_section(page, retrain_dir, methods)
        analysis_section(page, result, train_result, clf, dataset, runs[1], args)

        again = "python -m exp_scripts.thesis_report" + (" --smoke" if args.smoke else "")
        if args.example_datasets:
            again += " --example-datasets " + " ".join(args.example_datasets)
        header = (f"# Thesis report (default experiment{' smoke' if args.smoke else ''})\n\n"
                  f"Training run: `{train_dir}`; retraining run: `{retrain_dir}`.\n"
                  f"Regenerate with `{again}`.\n")
        footer = "## Not produced in this report\n\n" + ("\n".join(f"- {n}" for n in page.not_done) or "- (nothing)")
        footer += ("\n\n## Steps run\n\nEach step as the command that does it on its own:\n\n"
                   + ("\n".join(f"- `{c}`" for c in page.steps) or "- (all reused)"))
        text = "\n\n".join([header, *page.sections, footer]) + "\n"
        atomic_write_text(page.out / "index.md", text)
        atomic_write_text(page.out / "index.html", to_html(text, title="Thesis report", base_dir=page.out))
    print(final / "index.html")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
