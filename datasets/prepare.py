"""Generate or convert a data set into the cache and print its summary.

    python -m datasets.prepare
    python -m datasets.prepare --data-root data --name symbols --params '{"train_correlation": 0.9}'
    python -m datasets.prepare --name decoy_digits --params '{"clean": true}'
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from common.cli import json_object, quiet_tf_logs, run_main
from common.logs import parse_command_line
from datasets.registry import DEFAULT_DATASET, REGISTRY, load


def summary(ds) -> dict:
    """Plain-data summary of a loaded data set (what ``main`` prints)."""
    m = ds.manifest
    return {
        "name": ds.name,
        "cache": str(getattr(ds, "folder", "")),
        "class_names": ds.class_names,
        "image_shape": list(ds.image_shape),
        "split_sizes": m.get("split_sizes"),
        "counts_per_class": m.get("counts_per_class"),
        "shortcut_match_rate": m.get("spurious_match_rate"),
        "channel_mean": m.get("channel_mean"),
        "channel_std": m.get("channel_std"),
        "content_hash": m.get("content_hash"),
        "skipped": len(m.get("skipped", [])),
        "masks": m.get("n_masks"),
        "conversion": m.get("conversion"),
        "params": ds.params,
    }


#: more classes than this are summarised in the printed summary (a per-class list would be unreadable)
LISTED_CLASSES = 20


def _classes_text(names: list[str]) -> str:
    if len(names) <= LISTED_CLASSES:
        return ", ".join(names)
    return f"{len(names)} classes: {', '.join(names[:5])}, ..., {names[-1]}"


def _counts_text(counts: dict) -> str:
    if len(counts) <= LISTED_CLASSES:
        return ", ".join(f"{c} {k}" for c, k in counts.items())
    values = list(counts.values())
    return f"{min(values)} to {max(values)} per class"


def format_summary(s: dict) -> str:
    """Human-readable text of :func:`summary`."""
    lines = [
        f"data set   {s['name']}  ({s['cache']})",
        f"classes    {_classes_text(list(s['class_names']))}",
        f"shape      {'x'.join(str(v) for v in s['image_shape'])}",
    ]
    for split, n in (s["split_sizes"] or {}).items():
        counts = _counts_text((s["counts_per_class"] or {}).get(split, {}))
        rate = (s["shortcut_match_rate"] or {}).get(split)
        rate_text = "" if rate is None else f"; shortcut matches class in {rate:.1%}"
        lines.append(f"{split:<10} {n} images ({counts}){rate_text}")
    lines.append(f"mean/std   {[round(v, 2) for v in s['channel_mean']]} / {[round(v, 2) for v in s['channel_std']]}")
    lines.append(f"hash       {s['content_hash'][:16]}   skipped files: {s['skipped']}")
    if s.get("masks") is not None:
        lines.append(f"masks      {s['masks']} matched to their images")
    if s.get("conversion"):
        modes = ", ".join(f"{k} {v}" for k, v in s["conversion"]["source_modes"].items())
        lines.append(f"conversion {s['conversion']['rule']} (files by mode: {modes})")
    lines.append(f"params     {json.dumps(s['params'], sort_keys=True)}")
    return "\n".join(lines)


def main(argv=None) -> int:
    quiet_tf_logs()

    parser = argparse.ArgumentParser(prog="python -m datasets.prepare", description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None, help="cache root (default $VF_DATA_ROOT or ./data)")
    parser.add_argument("--name", default=DEFAULT_DATASET, choices=sorted(REGISTRY))
    parser.add_argument("--params", default="{}", help="JSON object of data set parameters")
    parser.add_argument("--rebuild", action="store_true", help="regenerate even if cached")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parse_command_line(parser, argv)
    params = json_object(args.params, "--params")
    t0 = time.perf_counter()
    ds = load({"name": args.name, "params": params}, args.data_root, rebuild=args.rebuild)
    s = summary(ds)
    if args.json:
        print(json.dumps(s, indent=2))
    else:
        print(format_summary(s))
        print(f"ready in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
