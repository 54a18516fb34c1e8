"""2-D embedding of the GAP features (PCA and t-SNE), coloured by class, misclassified marked.

Run::

    python -m vis_exp.embedding results/train_symbols/result.json --split val --out results/analysis/embedding

Writes ``embedding_pca.png/pdf``, ``embedding_tsne.png/pdf`` and ``embedding.json``
(coordinates, labels, predictions, indices).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from sklearn.preprocessing import StandardScaler

from common.cli import quiet_tf_logs, run_main
from common.errors import UserError
from common.io import atomic_write_json
from common.logs import parse_command_line
from plot_utils.figures import save_figure
from vis_exp.gap_features import add_common_args, load_model_and_data, out_dir, split_features


def embed(*, features: np.ndarray, method: str, seed: int = 0, tsne_iter: int = 1000) -> np.ndarray:
    """``[N, 2]`` coordinates by ``"pca"`` or ``"tsne"`` (scikit-learn; standardised features)."""

    x = StandardScaler().fit_transform(np.asarray(features, float))
    if method == "pca":
        return PCA(n_components=2, random_state=seed).fit_transform(x)
    if method == "tsne":
        perplexity = float(min(30.0, max(2.0, (len(x) - 1) / 3.0)))
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed,
                    max_iter=tsne_iter).fit_transform(x)
    raise UserError(f"unknown embedding '{method}' (valid: pca, tsne)")


def embedding_figure(coords: np.ndarray, labels: np.ndarray, preds: np.ndarray, class_names: Sequence[str], title: str):
    matplotlib.use("Agg")

    fig, ax = plt.subplots(figsize=(6, 5))
    cmap = plt.get_cmap("tab10")
    for c, name in enumerate(class_names):
        ok = (labels == c) & (preds == labels)
        bad = (labels == c) & (preds != labels)
        ax.scatter(coords[ok, 0], coords[ok, 1], s=10, color=cmap(c % 10), label=name, alpha=0.7)
        ax.scatter(coords[bad, 0], coords[bad, 1], s=30, color=cmap(c % 10), marker="x", linewidths=1.2)
    ax.scatter([], [], marker="x", color="k", label="misclassified")
    ax.legend(fontsize=7)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def write_embedding(train_result, clf, dataset, *, out, split: str = "val", methods: Sequence[str] = ("pca", "tsne"),
                    max_images: int | None = 2000, seed: int = 0, tsne_iter: int = 1000, formats: Sequence[str] = ("png", "pdf")) -> dict:
    """``embedding_<method>`` figures (in ``formats``) and ``embedding.json`` in ``out``; returns the JSON payload."""
    sf = split_features(clf, dataset, split, max_images, seed)
    out = out_dir(out)
    payload = {"indices": sf.indices.tolist(), "labels": sf.labels.tolist(), "predictions": sf.predictions.tolist(),
               "class_names": train_result.class_names, "split": split}
    for m in methods:
        coords = embed(features=sf.features, method=m, seed=seed, tsne_iter=tsne_iter)
        payload[m] = coords.tolist()
        save_figure(embedding_figure(coords, sf.labels, sf.predictions, train_result.class_names,
                                     f"{m.upper()} of GAP features ({split})"), out, f"embedding_{m}",
                    formats=formats)
    atomic_write_json(out / "embedding.json", payload)
    return payload


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vis_exp.embedding", description=__doc__.split("\n\n")[0])
    add_common_args(parser)
    parser.add_argument("--split", default="val")
    parser.add_argument("--methods", nargs="+", default=["pca", "tsne"], choices=["pca", "tsne"])
    parser.add_argument("--tsne-iter", type=int, default=1000, help="t-SNE iterations (>= 250)")
    args = parse_command_line(parser, argv)
    quiet_tf_logs()
    tr, clf, ds = load_model_and_data(args.result, args.data_root)
    write_embedding(tr, clf, ds, out=args.out, split=args.split, methods=args.methods, max_images=args.max_images,
                    seed=args.seed, tsne_iter=args.tsne_iter)
    print(Path(args.out) / "embedding.json")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
