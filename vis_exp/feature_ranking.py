"""Ranking of the K GAP features and accuracy vs number of top features (thesis §7.1.1, Fig 7.1 / 7.5).

Run::

    python -m vis_exp.feature_ranking results/train_symbols/result.json --out results/analysis/ranking

Each feature (filter) is scored on the train split by mutual information with the
class, extra-trees importance and the cross-validated accuracy of a one-feature
logistic classifier; the three ranks are averaged with equal weight into one order
(best first). An L1-regularised logistic model gives a second opinion (its support).
Then the last layer is refit (multinomial logistic regression) on the top-k features
for k = 1..K and scored on validation; the *cut* is the smallest k that reaches the
full model's validation accuracy. Writes ``ranking.json`` and ``accuracy_vs_features.png/pdf``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from sklearn.ensemble import ExtraTreesClassifier
from sklearn.feature_selection import mutual_info_classif
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from common.cli import quiet_tf_logs, run_main
from common.errors import UserError
from common.io import atomic_write_json
from common.logs import parse_command_line
from plot_utils.figures import save_figure
from vis_exp.gap_features import add_common_args, load_model_and_data, out_dir, split_features


def _ranks(scores: np.ndarray) -> np.ndarray:
    """Rank 0 = highest score (ties broken by feature id, deterministic)."""
    order = np.lexsort((np.arange(len(scores)), -np.asarray(scores, float)))
    ranks = np.empty(len(scores), int)
    ranks[order] = np.arange(len(scores))
    return ranks


def rank_features(*, features: np.ndarray, labels: np.ndarray, seed: int = 0, cv: int = 3,
                  n_estimators: int = 200) -> dict:
    """Scores and the equal-weight rank average of K features.

    Args:
        features: ``[N, K]`` GAP features.
        labels: ``[N]`` int classes.
        seed: seeds extra-trees, MI and CV splits.
        cv: folds of the one-feature classifier's cross-validated accuracy.
        n_estimators: trees of the extra-trees model.

    Returns:
        dict with ``mutual_information``, ``extra_trees``, ``single_feature_accuracy``
        (each ``[K]``), ``mean_rank`` ``[K]`` and ``order`` (feature ids, best first).
    """
    x = np.asarray(features, float)
    y = np.asarray(labels, int)
    if x.ndim != 2 or len(x) != len(y) or len(x) == 0:
        raise UserError(f"features must be [N, K] with N = len(labels) > 0, got {x.shape} and {y.shape}")
    if len(np.unique(y)) < 2:
        raise UserError("the feature ranking needs at least two classes among the images")
    mi = mutual_info_classif(x, y, random_state=seed)
    et = ExtraTreesClassifier(n_estimators=n_estimators, random_state=seed, n_jobs=1).fit(x, y).feature_importances_
    folds = StratifiedKFold(n_splits=max(2, min(cv, int(np.bincount(y).min()) or 2)), shuffle=True, random_state=seed)
    single = np.array([
        cross_val_score(make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)), x[:, [k]], y, cv=folds).mean()
        for k in range(x.shape[1])
    ])
    mean_rank = (_ranks(mi) + _ranks(et) + _ranks(single)) / 3.0
    order = np.lexsort((np.arange(len(mean_rank)), mean_rank))
    return {"mutual_information": mi, "extra_trees": et, "single_feature_accuracy": single,
            "mean_rank": mean_rank, "order": order}


def l1_support(*, features: np.ndarray, labels: np.ndarray, C: float = 0.1, seed: int = 0) -> tuple[np.ndarray, object]:
    """Feature ids with a non-zero weight in an L1 logistic model (features standardised), and the model."""
    model = make_pipeline(StandardScaler(), LogisticRegression(l1_ratio=1.0, solver="saga", C=C, max_iter=5000,
                                                               random_state=seed))
    model.fit(features, labels)
    coef = model[-1].coef_
    return np.flatnonzero(np.abs(coef).max(axis=0) > 1e-8), model


def accuracy_vs_top_k(*, train_x, train_y, val_x, val_y, order, ks: Sequence[int] | None = None) -> dict:
    """Validation accuracy of the last layer refit on the top-k features, k in ``ks`` (default 1..K).

    The refit is a multinomial logistic regression (the GAP head is a linear softmax
    layer) on standardised features.

    Returns:
        ``{"k": [...], "accuracy": [...]}``.
    """
    order = np.asarray(order, int)
    ks = list(ks or range(1, len(order) + 1))
    acc = []
    for k in ks:
        cols = order[:k]
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(train_x[:, cols], train_y)
        acc.append(float((model.predict(val_x[:, cols]) == val_y).mean()))
    return {"k": ks, "accuracy": acc}


def find_cut(ks: Sequence[int], accuracies: Sequence[float], full_accuracy: float, tolerance: float = 0.0) -> int | None:
    """Smallest k whose accuracy >= ``full_accuracy - tolerance`` (None if never)."""
    for k, a in zip(ks, accuracies):
        if a >= full_accuracy - tolerance - 1e-12:
            return int(k)
    return None


def head_accuracy(features: np.ndarray, labels: np.ndarray, weights: np.ndarray, bias: np.ndarray) -> float:
    """Accuracy of the model's own linear head on GAP features."""
    return float(((features @ weights + bias).argmax(axis=1) == labels).mean())


def accuracy_figure(curve: dict, full_accuracy: float, cut: int | None, l1_accuracy: float | None = None):
    """Accuracy vs number of top-ranked features, full model line and the cut (Fig 7.1)."""
    matplotlib.use("Agg")

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(curve["k"], curve["accuracy"], "o-", ms=3, label="last layer refit on top-k features")
    ax.axhline(full_accuracy, color="tab:red", ls="--", label=f"full model {full_accuracy:.3f}")
    if l1_accuracy is not None:
        ax.axhline(l1_accuracy, color="tab:green", ls=":", label=f"L1 model {l1_accuracy:.3f}")
    if cut is not None:
        ax.axvline(cut, color="tab:gray", ls="-.", label=f"cut k={cut}")
    ax.set_xlabel("number of top-ranked features")
    ax.set_ylabel("validation accuracy")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def analyse(*, train_x, train_y, val_x, val_y, full_accuracy: float, seed: int = 0, l1_c: float = 0.1,
            n_estimators: int = 200) -> dict:
    """The whole analysis on feature arrays (no model, no files): ranking, L1 support, curve, cut."""
    ranking = rank_features(features=train_x, labels=train_y, seed=seed, n_estimators=n_estimators)
    support, l1_model = l1_support(features=train_x, labels=train_y, C=l1_c, seed=seed)
    curve = accuracy_vs_top_k(train_x=train_x, train_y=train_y, val_x=val_x, val_y=val_y, order=ranking["order"])
    cut = find_cut(curve["k"], curve["accuracy"], full_accuracy)
    return {
        "order": ranking["order"].tolist(),
        "mean_rank": ranking["mean_rank"].tolist(),
        "scores": {k: ranking[k].tolist() for k in ("mutual_information", "extra_trees", "single_feature_accuracy")},
        "l1": {"C": l1_c, "support": support.tolist(), "n_support": int(len(support)),
               "val_accuracy": float((l1_model.predict(val_x) == val_y).mean())},
        "curve": curve,
        "full_accuracy": float(full_accuracy),
        "cut": cut,
        "relevant": ranking["order"][: cut if cut is not None else len(ranking["order"])].tolist(),
    }


def write_ranking(clf, dataset, *, out, fit_split: str = "train", eval_split: str = "val",
                  max_images: int | None = 2000, seed: int = 0, l1_c: float = 0.1, n_estimators: int = 200,
                  train_result: str = "", formats: Sequence[str] = ("png", "pdf")) -> dict:
    """The analysis on a loaded model and data set, written to ``out`` (``ranking.json``,
    ``accuracy_vs_features`` in ``formats``); returns the ranking dict (as ``analyse`` plus the inputs)."""
    fit = split_features(clf, dataset, fit_split, max_images, seed)
    ev = split_features(clf, dataset, eval_split, max_images, seed)
    w, b = clf.head_weights()
    result = analyse(train_x=fit.features, train_y=fit.labels, val_x=ev.features, val_y=ev.labels,
                     full_accuracy=head_accuracy(ev.features, ev.labels, w, b), seed=seed, l1_c=l1_c,
                     n_estimators=n_estimators)
    result.update({"train_result": str(train_result), "fit_split": fit_split, "eval_split": eval_split,
                   "n_fit": int(len(fit.labels)), "n_eval": int(len(ev.labels))})
    out = out_dir(out)
    fig = accuracy_figure(result["curve"], result["full_accuracy"], result["cut"], result["l1"]["val_accuracy"])
    save_figure(fig, out, "accuracy_vs_features", formats=formats)
    atomic_write_json(out / "ranking.json", result)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vis_exp.feature_ranking", description=__doc__.split("\n\n")[0])
    add_common_args(parser)
    parser.add_argument("--fit-split", default="train")
    parser.add_argument("--eval-split", default="val")
    parser.add_argument("--l1-c", type=float, default=0.1, help="inverse L1 strength of the sparse model")
    parser.add_argument("--n-estimators", type=int, default=200, help="extra-trees size")
    args = parse_command_line(parser, argv)
    quiet_tf_logs()
    _, clf, ds = load_model_and_data(args.result, args.data_root)
    result = write_ranking(clf, ds, out=args.out, fit_split=args.fit_split, eval_split=args.eval_split,
                           max_images=args.max_images, seed=args.seed, l1_c=args.l1_c,
                           n_estimators=args.n_estimators, train_result=args.result)
    print(f"cut: {result['cut']} of {len(result['order'])} features reach the full model's "
          f"{args.eval_split} accuracy {result['full_accuracy']:.3f}; L1 support {result['l1']['n_support']}")
    print(Path(args.out) / "ranking.json")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
