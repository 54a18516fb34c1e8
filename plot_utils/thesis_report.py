"""One command for every table and figure on the default data set.

Run::

    python -m plot_utils.thesis_report                 # default runs (reused when present)
    python -m plot_utils.thesis_report --smoke         # tiny runs, for CI (seconds to minutes)

Steps: (1) the default experiment's training run (``<results>/train/<default set>``) and
(2) its retraining run (``exp_scripts.exp_backprops`` with no config, into
``<results>/backprops/<default set>_default``) are reused when their result files exist,
else run; (3) tables (``plot_utils.tables``), figures (``plot_utils.figures``) and the
chapter-7 analyses (``vis_exp.*``) are written into ``--out`` (default
``<results>/thesis_report``) with an ``index.md`` that shows them and the same page as
``index.html`` (opens in a browser; the path printed last).

``plot_utils`` sits below ``exp_scripts`` and ``vis_exp`` in the layer order
(tests/test_layering.py), so those steps run as subprocesses (``python -m ...``), never
as imports. Optional inputs the default runs do not produce: ``--expert FILE`` (expert
filter labels, Fig 7.4), ``--after-model FILE`` (a retrained .keras model, Table 7.3 and
Figs 7.6-7.9), ``--lambda-sweep FILE`` / ``--masks-sweep FILE`` (sweep JSON, Figs 5.1/5.2).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from common.cli import quiet_tf_logs, run_main
from common.errors import UserError
from common.io import atomic_write_text, read_json
from common.paths import results_root
from common.runs import run_transaction

TRAIN_CONFIG = Path("config_files/train_files/symbols.json")


def run_module(module: str, args: Sequence[str], *, log: list[str], env: dict | None = None) -> str:
    """Runs ``python -m module args`` and returns its stdout; a failure is a UserError with stderr's last line."""
    cmd = [sys.executable, "-m", module, *[str(a) for a in args]]
    log.append(" ".join(cmd[1:]))
    print("$ python " + " ".join(cmd[1:]), flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        last = lines[-1] if lines else f"exit code {proc.returncode}"
        raise UserError(f"'python -m {module}' failed: {last}")
    return proc.stdout


def ensure_training_run(smoke: bool, rerun: bool, data_root: str | None, log: list[str]) -> Path:
    """The default experiment's base model (``<results>/train/<default set>/result.json``);
    the default experiment (``exp_scripts.exp_backprops`` with no config) trains it when absent."""
    from datasets.shortcut_suite import default_set_name

    result = results_root() / "train" / default_set_name(smoke) / "result.json"
    if result.exists() and not rerun:
        print(f"reusing training run {result.parent}")
        return result
    ensure_retraining_run(smoke, True, data_root, log)
    if not result.exists():
        raise UserError(f"the default experiment finished but '{result}' was not written")
    return result


def ensure_retraining_run(smoke: bool, rerun: bool, data_root: str | None, log: list[str]) -> Path:
    """The default retraining run's folder, running ``exp_scripts.exp_backprops`` when absent."""
    from datasets.shortcut_suite import default_set_name

    run_dir = results_root() / "backprops" / f"{default_set_name(smoke)}_default"
    if (run_dir / "summary.json").exists() and not rerun:
        print(f"reusing retraining run {run_dir}")
        return run_dir
    args = ["--quiet"] + (["--smoke"] if smoke else []) + (["--data-root", data_root] if data_root else [])
    stdout = run_module("exp_scripts.exp_backprops", args, log=log)
    last = [ln for ln in stdout.splitlines() if ln.strip()][-1:]
    summary = Path(last[0].strip()) if last else run_dir / "summary.json"
    if not summary.exists():
        raise UserError(f"retraining finished but printed no existing summary path (last line: {last})")
    return summary.parent


def _md_image(rel: str, alt: str) -> str:
    return f"![{alt}]({rel})"


HTML_STYLE = """body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;line-height:1.4}
table{border-collapse:collapse;margin:1em 0;font-size:90%}th,td{border:1px solid #bbb;padding:3px 6px}
th{background:#eee}img{max-width:100%}code{background:#f4f4f4;padding:0 3px}"""


def to_html(markdown_text: str, *, title: str) -> str:
    """The report as one HTML page (Markdown tables rendered; images stay relative
    links, so the page opens in a browser from the report folder)."""
    import html

    import markdown

    body = markdown.markdown(markdown_text, extensions=["tables"])
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{HTML_STYLE}</style></head>\n<body>\n{body}\n</body></html>\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m plot_utils.thesis_report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=None, help="report folder (default <results>/thesis_report[_smoke])")
    parser.add_argument("--smoke", action="store_true", help="tiny runs and few images (CI)")
    parser.add_argument("--rerun", action="store_true", help="run training and retraining even if results exist")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--train-run", default=None, help="use this training run folder instead of the default")
    parser.add_argument("--retrain-run", default=None, help="use this retraining run folder instead of the default")
    parser.add_argument("--expert", default=None, help="expert filter labels JSON (Fig 7.4)")
    parser.add_argument("--after-model", default=None, help="retrained .keras model (Table 7.3, Figs 7.6-7.9)")
    parser.add_argument("--lambda-sweep", default=None, help="λ sweep JSON (Fig 5.1)")
    parser.add_argument("--masks-sweep", default=None, help="number-of-masks sweep JSON (Fig 5.2)")
    args = parser.parse_args(argv)
    quiet_tf_logs()
    log: list[str] = []
    final = Path(args.out or results_root() / ("thesis_report_smoke" if args.smoke else "thesis_report"))
    # the report folder is one transaction (common.runs): built privately, swapped in when whole
    with run_transaction(final) as txn:
        out = txn.path
        if not (Path.cwd() / TRAIN_CONFIG).exists() and not args.train_run:
            raise UserError(f"run from the repository root: '{TRAIN_CONFIG}' not found in {Path.cwd()}")
        result = Path(args.train_run) / "result.json" if args.train_run else ensure_training_run(
            args.smoke, args.rerun, args.data_root, log)
        train_dir = result.parent
        retrain_dir = Path(args.retrain_run) if args.retrain_run else ensure_retraining_run(
            args.smoke, args.rerun, args.data_root, log)
        n_img = "200" if args.smoke else "2000"
        dr = ["--data-root", args.data_root] if args.data_root else []
        sections: list[str] = []
        not_done: list[str] = []

        # tables (same layer: in-process)
        from plot_utils import figures, tables
        from plot_utils.results import load_history, load_runs

        runs = load_runs([train_dir, retrain_dir])
        built = tables.build_tables(runs)
        tables.save_tables(built, out / "tables")
        for t in built:
            sections.append(f"## {t.caption}\n\n[LaTeX](tables/{t.name}.tex)\n\n"
                            + t.markdown.replace("](visualisation_images/", "](tables/visualisation_images/"))

        # figures
        fig_dir = out / "figures"
        figs = []
        per_method = load_history(retrain_dir)
        for m in per_method:
            figures.save_figure(figures.loss_figure(figures.history_series(per_method, m), title=m), fig_dir,
                                f"loss_{m}")
            figs.append((f"figures/loss_{m}.png", f"Loss (CE + activation term) and selected p_true — {m}"))
        figures.save_figure(figures.pasa_surface_figure(), fig_dir, "pasa_surface")
        figs.append(("figures/pasa_surface.png", "PASA penalty surface (B=0.4, th=0.7)"))
        act = figures.compute_act_values(result, "train", int(n_img), data_root=args.data_root)
        figures.save_figure(figures.act_histogram_figure(act), fig_dir, "act_histogram")
        figs.append(("figures/act_histogram.png", f"Act without masks: mean {act.mean():.3g}, min {act.min():.3g}, max {act.max():.3g}"))
        for flag, key, name, title in ((args.lambda_sweep, "lambda", "lambda_sweep", "λ sweep vs validation accuracy"),
                                       (args.masks_sweep, "n_masks", "masks_sweep", "number of masks vs validation accuracy")):
            if flag:
                x, y = figures.sweep_points(read_json(flag, what="sweep file"), key, source=flag)
                figures.save_figure(figures.sweep_figure(x, y, xlabel=key, log_x=key == "lambda"), fig_dir, name)
                figs.append((f"figures/{name}.png", title))
            else:
                not_done.append(f"{title}: pass --{name.replace('_', '-')} SWEEP.json (from exp_scripts.exp_backprops --sweep)")
        sections.append("## Figures\n\n" + "\n\n".join(f"**{t}**\n\n{_md_image(p, t)}" for p, t in figs))

        # per method: CAMs before/after, along the run, and the test images that changed class
        rel_run = os.path.relpath(retrain_dir.resolve(), final.resolve())
        per = []
        for m in per_method:
            shown = [(f"{rel_run}/{m}/{name}.png", caption) for name, caption in (
                ("cams_selected", "selected images: CAM before → after"),
                ("cams_iterations", "selected images: CAM along the run"),
                ("cams_heldout", "held-out masked test images: CAM before → after"),
                ("changed_test", "test images whose prediction changed")) if (retrain_dir / m / f"{name}.png").exists()]
            if shown:
                per.append(f"### {m}\n\n" + "\n\n".join(f"**{c}**\n\n{_md_image(p, c)}" for p, c in shown))
        if per:
            sections.append("## Retraining, per method\n\n" + "\n\n".join(per))

        # chapter-7 analyses (higher layer: subprocesses)
        ana = out / "analysis"
        run_module("vis_exp.feature_ranking", [result, "--out", ana / "ranking", "--max-images", n_img, *dr], log=log)
        ranking = read_json(ana / "ranking" / "ranking.json", what="ranking")
        order = ranking["order"]
        show = sorted(set(order[:3] + order[-3:]))
        run_module("vis_exp.filter_grids", [result, "--out", ana / "filters", "--max-images", n_img,
                                            "--filters", *show, *dr], log=log)
        text = [f"## Chapter 7 analyses\n\n### Feature ranking\n\ncut: **{ranking['cut']}** of {len(order)} features "
                f"reach the full model's validation accuracy {ranking['full_accuracy']:.3f}; L1 support "
                f"{ranking['l1']['n_support']} features (val acc {ranking['l1']['val_accuracy']:.3f}).\n\n"
                + _md_image("analysis/ranking/accuracy_vs_features.png", "accuracy vs features"),
                "### Filter grids (3 best and 3 worst ranked filters)\n\n"
                + "\n\n".join(_md_image(f"analysis/filters/filter_{f:03d}.png", f"filter {f}") for f in show)]
        if args.expert:
            run_module("vis_exp.expert_labels", [ana / "ranking" / "ranking.json", args.expert, "--out", ana / "expert"],
                       log=log)
            text.append("### Expert labels vs ranking\n\n" + (ana / "expert" / "expert_report.md").read_text())
        else:
            not_done.append("expert labels vs ranking (Fig 7.4): needs an expert's labels, pass --expert FILE")
        sel = runs[1].selection_path
        if sel is not None and sel.exists():
            run_module("vis_exp.mask_filters", [result, sel, "--ranking", ana / "ranking" / "ranking.json",
                                                "--out", ana / "mask_filters", *dr], log=log)
            text.append("### Top filters inside the selected masks\n\n" + (ana / "mask_filters" / "mask_filters.md").read_text())
        else:
            not_done.append(f"top filters in masks (Table 7.2): the retraining run names no readable selection ({sel})")
        after_model = args.after_model
        if after_model is None:
            # the retraining run keeps each method's model; PASA's is the thesis's Table 7.3 case
            for method in ("pasa", "pas"):
                if (retrain_dir / method / "model.keras").exists():
                    after_model = str(retrain_dir / method / "model.keras")
                    break
        if after_model:
            run_module("vis_exp.feature_change", [result, "--after", after_model, "--out", ana / "feature_change",
                                                  "--max-images", n_img, *dr], log=log)
            text.append("### Feature change after retraining\n\n" + (ana / "feature_change" / "feature_change.md").read_text()
                        + "\n" + _md_image("analysis/feature_change/feature_change_grid.png", "change grid"))
        else:
            not_done.append("feature change before/after (Table 7.3, Figs 7.6-7.9): the retraining run kept no "
                            "pas/pasa model (save_models false); pass --after-model MODEL.keras")
        run_module("vis_exp.embedding", [result, "--split", "val", "--out", ana / "embedding", "--max-images", n_img, *dr],
                   log=log)
        text.append("### GAP feature embedding (validation)\n\n" + _md_image("analysis/embedding/embedding_pca.png", "PCA")
                    + "\n" + _md_image("analysis/embedding/embedding_tsne.png", "t-SNE"))
        run_module("vis_exp.cam_dump", [result, "--split", "test", "--out", ana / "cams_test",
                                        "--max-images", "50" if args.smoke else "500", *dr], log=log)
        text.append("### CAM dump\n\n[test split CAM overlays](analysis/cams_test/) (cams.json lists them)")
        sections.append("\n\n".join(text))

        header = (f"# Thesis report (default experiment{' smoke' if args.smoke else ''})\n\n"
                  f"Training run: `{train_dir}`; retraining run: `{retrain_dir}`.\n"
                  "Regenerate with `python -m plot_utils.thesis_report" + (" --smoke" if args.smoke else "") + "`.\n")
        footer = "## Not produced in this report\n\n" + ("\n".join(f"- {n}" for n in not_done) or "- (nothing)")
        footer += "\n\n## Commands run\n\n" + ("\n".join(f"- `python {c}`" for c in log) or "- (all reused)")
        text = "\n\n".join([header, *sections, footer]) + "\n"
        atomic_write_text(out / "index.md", text)
        atomic_write_text(out / "index.html", to_html(text, title="Thesis report"))
    print(final / "index.html")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
