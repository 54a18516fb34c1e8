"""Sweeps (thesis §5.1.1 Fig 5.1, §5.1.2 Fig 5.2, §5.2 B×th): each runs the shared loop
per candidate from the same base model and writes ``sweep_<kind>.csv``, ``.md`` and
``.png`` (validation accuracy per candidate; test accuracy and in-mask energy listed).

* ``lambda``: PAS with the thesis's 9 candidates around ``base`` = the calibrated λ
  (base, base·2^i, base/5^i, i = 1..4);
* ``masks``: PAS (calibrated) with the first n selected images, n in 9 increments;
* ``pasa``: PASA over B ∈ {0.2, 0.4, 0.8, 2, 5} × th ∈ {0.3, 0.7, 1, 2}.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path


from classification_models.losses import pas_lambda_candidates, thesis_pas_lambda
from common.io import atomic_write_text
from exp_scripts.retrain.config import MethodSpec
from exp_scripts.retrain.data import MaskedSet
from exp_scripts.retrain.methods.pas import CALIBRATED_SCALE
from exp_scripts.retrain.runner import load_inputs, run_retraining

PASA_B = (0.2, 0.4, 0.8, 2.0, 5.0)
PASA_TH = (0.3, 0.7, 1.0, 2.0)


def _subset(m: MaskedSet, n: int) -> MaskedSet:
    return MaskedSet(m.indices[:n], m.images[:n], m.labels[:n], m.masks[:n], m.cam_classes[:n])


def _rows_from_summary(path: Path, keys: dict) -> list[dict]:
    import json

    s = json.loads(Path(path).read_text())
    rows = []
    for label, m in s["methods"].items():
        e = m["in_mask_cam_energy"]
        rows.append({**keys[label], "val": m["accuracy"].get("val"), "test": m["accuracy"].get("test"),
                     "energy_selected": e["selected"]["after"], "energy_heldout": e["heldout"]["after"]})
    return rows


def table_markdown(rows: list[dict]) -> str:
    cols = list(rows[0])
    fmt = lambda v: "–" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))  # noqa: E731
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def table_csv(rows: list[dict]) -> str:
    import csv
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def plot(rows: list[dict], x: str, kind: str, path: Path, y: str = "val", series: str | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from common.io import atomic_path

    fig, ax = plt.subplots(figsize=(5, 3.5))
    groups = sorted({r[series] for r in rows}) if series else [None]
    for g in groups:
        rs = [r for r in rows if series is None or r[series] == g]
        ax.plot([r[x] for r in rs], [r[y] for r in rs], marker="o", label=None if g is None else f"{series}={g}")
    if kind == "lambda":
        ax.set_xscale("log")
    ax.set_xlabel(x)
    ax.set_ylabel(f"{y} accuracy")
    ax.set_title(f"sweep: {kind}")
    if series:
        ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


def run_sweep(kind: str, cfg, *, config_path=None, data_root=None, quiet=False, out=print) -> Path:
    """Runs sweep ``kind`` for ``cfg``'s selection; returns the Markdown table path."""
    tr, base, dataset, selected, heldout = load_inputs(cfg, config_path=config_path, data_root=data_root)
    h, w, k = base.grid_shape
    root = Path(cfg.output_dir) / f"{cfg.name}_sweep_{kind}"
    if kind == "lambda":
        lam0 = CALIBRATED_SCALE * thesis_pas_lambda(h=h, w=w, k=k)
        specs, keys = [], {}
        for lam in pas_lambda_candidates(base=lam0):
            label = f"pas_{lam / thesis_pas_lambda(h=h, w=w, k=k):.4g}x"
            specs.append(MethodSpec("pas", {"lam": lam}, label))
            keys[label] = {"lam": lam, "x_thesis": lam / thesis_pas_lambda(h=h, w=w, k=k)}
        runs = [(specs, selected)]
        x, series = "lam", None
    elif kind == "pasa":
        specs, keys = [], {}
        for b in PASA_B:
            for th in PASA_TH:
                label = f"pasa_B{b:g}_th{th:g}"
                specs.append(MethodSpec("pasa", {"base": b, "threshold": th}, label))
                keys[label] = {"B": b, "th": th}
        runs = [(specs, selected)]
        x, series = "th", "B"
    else:
        n = len(selected)
        counts = sorted({max(1, int(round(n * i / 9))) for i in range(1, 10)})
        runs, keys = [], {}
        for c in counts:
            label = f"pas_{c}_masks"
            runs.append(([MethodSpec("pas", {}, label)], _subset(selected, c)))
            keys[label] = {"n_masks": c, "share_of_train": c / len(dataset.arrays("train"))}
        x, series = "n_masks", None
    rows = []
    for i, (specs, sel) in enumerate(runs):
        sub = dataclasses.replace(cfg, methods=list(specs), name=f"{cfg.name}_sweep_{kind}", overlays=False)
        path = run_retraining(sub, base=base, dataset=dataset, selected=sel, heldout=heldout,
                              run_dir=root / f"run{i}", quiet=quiet, out=(lambda s: None) if quiet else out)
        rows += _rows_from_summary(path, keys)
    md = root / f"sweep_{kind}.md"
    atomic_write_text(md, table_markdown(rows))
    atomic_write_text(root / f"sweep_{kind}.csv", table_csv(rows))
    plot(rows, x, kind, root / f"sweep_{kind}.png", series=series)
    best = max(rows, key=lambda r: (r["val"] if r["val"] is not None else -1))
    out(table_markdown(rows))
    out(f"best on validation: {best}")
    out(str(md))
    return md
