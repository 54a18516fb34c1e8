"""The thesis report's chapter-7 sections (feature ranking, filter grids, top filters in
the masks, feature change after retraining with Fig 7.10, embedding): each analysis of
``vis_exp`` called in this process on the already-loaded model and data set."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from common.io import atomic_write_json, read_json
from plot_utils.figures import feature_criteria_figure, save_figure
from plot_utils.report_page import Page, md_image
from vis_exp import cam_dump, embedding, expert_labels, feature_change, feature_ranking, filter_grids, mask_filters


def after_model_of(retrain_dir: Path, given: str | None) -> str | None:
    """The retrained model of the chapter-7.1.4 analyses: ``given``, else the retraining
    run's PASA model (the thesis's case), else its PAS model, else None."""
    if given:
        return given
    for method in ("pasa", "pas"):
        if (retrain_dir / method / "model.keras").exists():
            return str(retrain_dir / method / "model.keras")
    return None


def feature_change_sections(page: Page, result: Path, train_result, clf, dataset, *, after_model: str | None,
                            ranking: dict, in_masks: Sequence[int]) -> list[str]:
    """Table 7.3 (the feature change after retraining) and Fig 7.10 (every feature under
    several criteria) as page sections; with no retrained model, none, and a "not
    produced" line that says what to pass."""
    if not after_model:
        page.not_done.append("feature change before/after and features under several criteria (Table 7.3, "
                             "Figs 7.6-7.10): the retraining run kept no pas/pasa model (save_models false); "
                             "pass --after-model MODEL.keras")
        return []
    ana, shown_ana = page.out / "analysis", page.final / "analysis"
    small, n_img, order = page.analysis_sizes, page.n_images, ranking["order"]
    page.step(f"python -m vis_exp.feature_change {result} --after {after_model} --out {shown_ana / 'feature_change'} "
              f"--max-images {n_img} --top {small['top_changes']}")
    change = feature_change.write_feature_change(train_result, clf, dataset, after=after_model,
                                                 out=ana / "feature_change", max_images=n_img,
                                                 top=small["top_changes"], formats=page.formats)
    criteria = feature_change.feature_criteria(change=np.asarray(change["change"]), order=order,
                                               cut=ranking["cut"], in_masks=in_masks)
    atomic_write_json(ana / "feature_change" / "feature_criteria.json", criteria)
    labelled = change["largest_increase"] + change["largest_decrease"]
    save_figure(feature_criteria_figure(criteria, label=labelled,
                                        title=f"Features under several criteria ({Path(after_model).parent.name} "
                                              "vs base)"), ana / "feature_change", "feature_criteria",
                formats=page.formats)
    counts = criteria["counts"]
    return [
        "### Feature change after retraining (thesis Table 7.3)\n\n" + change["markdown"] + "\n"
        + md_image("analysis/feature_change/feature_change_grid.png", "change grid"),
        "### Features under several criteria (thesis Fig 7.10)\n\n"
        f"Each of the {len(order)} last-conv features: its mean activation change after retraining against "
        "its importance rank in the base model (relevant = within the ranking's cut; ringed = among the top "
        "filters inside the selected masks; labelled = the largest increases and decreases). Rose: "
        f"{counts['relevant']['up']} relevant, {counts['irrelevant']['up']} irrelevant; fell: "
        f"{counts['relevant']['down']} relevant, {counts['irrelevant']['down']} irrelevant; Spearman ρ "
        f"(importance rank vs change) {criteria['spearman']:.2f}.\n\n"
        + md_image("analysis/feature_change/feature_criteria.png", "features under several criteria")]


def analysis_section(page: Page, result: Path, train_result, clf, dataset, run, args) -> None:
    """The chapter-7 analyses (``vis_exp.*``), in this process on the loaded model."""
    ana = page.out / "analysis"
    n_img = page.n_images
    small = page.analysis_sizes
    shown_ana = page.final / "analysis"  # where the stand-alone commands would write
    page.step(f"python -m vis_exp.feature_ranking {result} --out {shown_ana / 'ranking'} --max-images {n_img} "
              f"--n-estimators {small['n_estimators']}")
    ranking = feature_ranking.write_ranking(clf, dataset, out=ana / "ranking", max_images=n_img,
                                            n_estimators=small["n_estimators"], train_result=str(result),
                                            formats=page.formats)
    order = ranking["order"]
    each = small["filters_per_end"]
    show = sorted(set(order[:each] + order[-each:]))
    page.step(f"python -m vis_exp.filter_grids {result} --out {shown_ana / 'filters'} --max-images {n_img} "
              f"--filters {' '.join(map(str, show))}")
    filter_grids.write_filter_grids(clf, dataset, out=ana / "filters", filters=show, max_images=n_img,
                                    formats=page.formats)
    text = [f"## Chapter 7 analyses\n\n### Feature ranking\n\ncut: **{ranking['cut']}** of {len(order)} features "
            f"reach the full model's validation accuracy {ranking['full_accuracy']:.3f}; L1 support "
            f"{ranking['l1']['n_support']} features (val acc {ranking['l1']['val_accuracy']:.3f}).\n\n"
            + md_image("analysis/ranking/accuracy_vs_features.png", "accuracy vs features"),
            f"### Filter grids ({each} best and {each} worst ranked filters)\n\n"
            + "\n\n".join(md_image(f"analysis/filters/filter_{f:03d}.png", f"filter {f}") for f in show)]
    if args.expert:
        page.step(f"python -m vis_exp.expert_labels {shown_ana / 'ranking' / 'ranking.json'} {args.expert} "
                  f"--out {shown_ana / 'expert'}")
        rep = expert_labels.write_expert_report(ranking, read_json(args.expert, what="expert labels"),
                                                out=ana / "expert", expert_source=args.expert)
        text.append("### Expert labels vs ranking\n\n" + rep["markdown"])
    else:
        page.not_done.append("expert labels vs ranking (Fig 7.4): needs an expert's labels, pass --expert FILE")
    in_masks: list[int] = []
    sel = run.selection_path
    if sel is not None and sel.exists():
        page.step(f"python -m vis_exp.mask_filters {result} {sel} --ranking {shown_ana / 'ranking' / 'ranking.json'} "
                  f"--out {shown_ana / 'mask_filters'}")
        masked = mask_filters.write_mask_filters(train_result, clf, dataset, selection=sel, ranking=ranking,
                                                 out=ana / "mask_filters")
        in_masks = sorted({t["filter"] for item in masked["items"] for t in item["top"]})
        text.append("### Top filters inside the selected masks\n\n" + masked["markdown"])
    else:
        page.not_done.append(f"top filters in masks (Table 7.2): the retraining run names no readable selection ({sel})")
    text += feature_change_sections(page, result, train_result, clf, dataset,
                                    after_model=after_model_of(run.path, args.after_model), ranking=ranking,
                                    in_masks=in_masks)
    page.step(f"python -m vis_exp.embedding {result} --split val --out {shown_ana / 'embedding'} --max-images {n_img} "
              f"--tsne-iter {small['tsne_iter']}")
    embedding.write_embedding(train_result, clf, dataset, out=ana / "embedding", split="val", max_images=n_img,
                              tsne_iter=small["tsne_iter"], formats=page.formats)
    text.append("### GAP feature embedding (validation)\n\n" + md_image("analysis/embedding/embedding_pca.png", "PCA")
                + "\n" + md_image("analysis/embedding/embedding_tsne.png", "t-SNE"))
    n_cams = 50 if page.smoke else 500
    page.step(f"python -m vis_exp.cam_dump {result} --split test --out {shown_ana / 'cams_test'} --max-images {n_cams}")
    cam_dump.write_cam_dump(train_result, clf, dataset, out=ana / "cams_test", split="test", max_images=n_cams)
    text.append("### CAM dump\n\n[test split CAM overlays](analysis/cams_test/) (cams.json lists them)")
    page.sections.append("\n\n".join(text))


# ----- the command -------------------------------------------------------------------
