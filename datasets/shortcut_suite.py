"""A shortcut benchmark suite: image folders whose images carry a spurious, class-coded cue.

Every set is an image-folder tree that the ``image_folder`` data set reads as it is,
with the cue's exact pixels as ground-truth masks::

    ROOT/{train,val,test}/<class>/00017.png          images (gray or RGB)
    ROOT/masks/{train,val,test}/<class>/00017.png    single-channel, 0 = keep, 255 = the cue's pixels
    ROOT/suite.json                                  parameters, generator version, counts per split
    ROOT/cues.csv                                    split,class,name,label,cue_class

Contents (4 classes each; the class folder names are the class names):

* ``digits``: scikit-learn's 8×8 digits 0, 1, 4, 7, upscaled with random scale
  (50–80 % of the side), aspect, rotation, stroke width and intensity; every source
  digit is drawn several times with other jitter, and train/val/test use disjoint
  source digits;
* ``glyphs``: the letters A, E, K, R in matplotlib's bundled fonts (DejaVu Sans/Serif/
  Mono in several weights and slants, STIX), random size, aspect, position, rotation;
* ``shapes``: circle, cross, square, triangle; random size, position, rotation, filled
  or outlined.

Cues (the cue never overlaps the object; the mask is exactly the pixels it changes):

* ``patch``: a small square (10 % of the side, at least 5 px) in a random corner whose
  shade (gray) or colour (RGB) encodes the cue class;
* ``text``: a caption band along the bottom, the same for every class, carrying a serial
  number whose prefix (``SN-``, ``ID-``, ``QC-``, ``LOT-``) encodes the cue class; the
  mask is the band;
* ``background``: stripes at a class-specific orientation (0°, 45°, 90°, 135°) over
  the whole background; the mask is everything but the object (every pixel the object
  touches, edges included);
* ``frame``: a border a few pixels wide whose shade / colour encodes the cue class;
* ``barcode`` (a sticker at a fixed place, its leading bars the class), ``ruler`` (tick
  spacing) and ``watermark`` (a word in a band across the object's area): ``datasets.cues``.

Backdrops: plain, or (``backdrop: photo``) scikit-image's bundled photographs, dimmed.

The cue encodes the true class with probability ``correlation`` in train (else a
uniformly drawn other class; ``correlation: null`` = uniform over all classes,
independent of the label), with ``val_correlation`` in val (``"same"`` as train, a
number, or ``"independent"``), and independently of the label in test. Objects, layout
and test cues come from random streams that do not depend on the correlations, so a
set and its oracle (``correlation: null``) share byte-identical test images and
identical train objects.

    python -m datasets.shortcut_suite --out my_shortcut_set --content digits --cue patch --correlation 0.9
    python -m datasets.shortcut_suite --suite --out suite_data
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Optional, Union

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from common.cli import run_main
from common.errors import UserError
from common.io import ensure_dir, to_json_text
from common.logs import parse_command_line, progress_bars
from common.runs import pid_alive
from datasets.cues import CUE_FAMILIES
from datasets.suite_params import CLASSES, MAX_SIZE, MIN_SIZE, SPLITS, VAL_WORDS, SuiteParams
from datasets.suite_render import cue_description, iter_split

log = logging.getLogger(__name__)

VERSION = 2


# ============================================================================ the suite
@dataclasses.dataclass(frozen=True)
class SetSpec:
    """One named set of the benchmark suite: ``<family>-<regime>``, e.g. ``patch-digits-gray-c0.9``."""

    name: str
    family: str
    regime: str
    params: SuiteParams


#: (family name, content, cue, channels, image_size, backdrop); the last three model
#: shortcuts of real image sets (a serial-number barcode at a fixed place, a ruler, a
#: watermark across the object's area), two of them on real photographs
FAMILIES = (
    ("patch-digits-gray", "digits", "patch", 1, 64, "plain"),
    ("text-glyphs-rgb", "glyphs", "text", 3, 64, "plain"),
    ("background-shapes-rgb", "shapes", "background", 3, 64, "plain"),
    ("frame-glyphs-gray", "glyphs", "frame", 1, 64, "plain"),
    ("patch-shapes-rgb-96", "shapes", "patch", 3, 96, "plain"),
    ("barcode-shapes-photo-96", "shapes", "barcode", 3, 96, "photo"),
    ("ruler-glyphs-rgb-96", "glyphs", "ruler", 3, 96, "plain"),
    ("watermark-shapes-photo-96", "shapes", "watermark", 3, 96, "photo"),
)
#: (regime name, train correlation, val correlation)
REGIMES = (
    ("c0.9", 0.9, "same"),
    ("c1.0", 1.0, "same"),
    ("c1.0-cleanval", 1.0, "independent"),
    ("oracle", None, "independent"),
)
QUICK_FAMILIES = ("patch-digits-gray", "text-glyphs-rgb")
#: the bundled default data set of ``python -m exp_scripts.exp_backprops`` (README command (a))
DEFAULT_SET = "patch-digits-gray-c1.0"


def default_set_name(smoke: bool = False) -> str:
    """The default experiment's set name (its small CI variant with ``smoke``): also the
    name of its train-result folder (``<results>/train/<name>``) and, with ``_default``,
    of its retraining run."""
    return f"{DEFAULT_SET}-smoke" if smoke else DEFAULT_SET
ORACLE_REGIME = "oracle"


def suite_sets(quick: bool = False) -> list[SetSpec]:
    """The named sets of the benchmark suite: every family × every regime (default counts, seed 0).

    Args:
        quick: only the families in ``QUICK_FAMILIES`` (each still in every regime, with its oracle).
    """
    out = []
    for family, content, cue, channels, size, backdrop in FAMILIES:
        if quick and family not in QUICK_FAMILIES:
            continue
        for regime, corr, val_corr in REGIMES:
            params = SuiteParams(content=content, cue=cue, channels=channels, image_size=size,
                                 correlation=corr, val_correlation=val_corr, backdrop=backdrop)
            out.append(SetSpec(name=f"{family}-{regime}", family=family, regime=regime, params=params))
    return out


def oracle_name(set_name: str) -> str:
    """The name of the oracle set (cue independent of the label) of the suite set ``set_name``.

    Raises:
        UserError: ``set_name`` is not a set of the suite.
    """
    for spec in suite_sets(quick=False):
        if spec.name == set_name:
            return f"{spec.family}-{ORACLE_REGIME}"
    raise UserError(f"set_name {set_name!r} is not a set of the suite "
                    f"(e.g. {suite_sets()[0].name}; see datasets.shortcut_suite.suite_sets)")


# ============================================================================ random streams
def png_bytes(array: np.ndarray) -> bytes:
    """Deterministic PNG bytes of uint8 ``[H, W]``, ``[H, W, 1]`` or ``[H, W, 3]``."""
    arr = array[:, :, 0] if array.ndim == 3 and array.shape[2] == 1 else array
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr)).save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def params_dict(params: SuiteParams) -> dict:
    """``params`` as plain JSON-ready data; a plain ``backdrop`` (the default, added after
    version 2) is left out, so sets written before it stay valid."""
    out = dataclasses.asdict(params)
    if out.get("backdrop") == "plain":
        del out["backdrop"]
    return out


def _as_params(spec_or_params) -> SuiteParams:
    if isinstance(spec_or_params, SetSpec):
        return spec_or_params.params
    if isinstance(spec_or_params, SuiteParams):
        return spec_or_params
    if isinstance(spec_or_params, dict):
        return SuiteParams.from_dict(spec_or_params)
    raise UserError(f"expected a SetSpec, SuiteParams or dict of parameters, got {type(spec_or_params).__name__}")


def _remove_stale_partials(out: Path) -> None:
    """Removes ``<out>.partial-<pid>`` folders left by runs that no longer exist."""
    for p in out.parent.glob(f"{out.name}.partial-*"):
        pid = p.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True)


def is_complete(out_dir, params: SuiteParams) -> bool:
    """True when ``out_dir`` holds a finished set written with exactly ``params`` by this version."""
    meta = Path(out_dir) / "suite.json"
    if not meta.is_file():
        return False
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    return data.get("version") == VERSION and data.get("params") == params_dict(params)


def generate(out_dir, spec_or_params, *, overwrite: bool = False) -> Path:
    """Writes one shortcut set to ``out_dir`` (built in ``<out_dir>.partial-<pid>``, then renamed).

    Args:
        out_dir: the set's root folder; must not exist unless ``overwrite``.
        spec_or_params: a :class:`SetSpec`, :class:`SuiteParams` or a dict of its fields.
        overwrite: replace an existing ``out_dir``.

    Returns:
        ``out_dir`` as a Path.

    Raises:
        UserError: bad parameters or an existing ``out_dir`` (nothing is written then).
    """
    params = _as_params(spec_or_params)
    out = Path(out_dir).expanduser().absolute()
    if out.exists() and not overwrite:
        raise UserError(f"output folder '{out}' already exists (pass --overwrite to replace it)")
    if out.exists() and not out.is_dir():
        raise UserError(f"output path '{out}' exists and is not a folder")

    ensure_dir(out.parent)
    _remove_stale_partials(out)
    partial = out.parent / f"{out.name}.partial-{os.getpid()}"
    if partial.exists():
        shutil.rmtree(partial)
    try:
        _write_set(partial, params)
        if out.exists():
            old = out.parent / f"{out.name}.old-{os.getpid()}"
            os.replace(out, old)
            os.replace(partial, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(partial, out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return out


def _write_set(root: Path, params: SuiteParams) -> None:
    names = params.class_names
    for split in SPLITS:
        for c in names:
            (root / split / c).mkdir(parents=True, exist_ok=True)
            (root / "masks" / split / c).mkdir(parents=True, exist_ok=True)
    rows = []
    counts = {}
    for split in SPLITS:
        per_class = {c: 0 for c in names}
        matches = 0
        n = params.count(split)
        drawn = tqdm(iter_split(params, split), total=n, desc=f"{split} images", unit="img", leave=False,
                     disable=not progress_bars(log))
        for i, ex in drawn:
            cls = names[ex.label]
            fname = f"{i:05d}.png"
            (root / split / cls / fname).write_bytes(png_bytes(ex.image))
            (root / "masks" / split / cls / fname).write_bytes(png_bytes(ex.mask))
            rows.append((split, cls, fname, ex.label, ex.cue_class))
            per_class[cls] += 1
            matches += ex.label == ex.cue_class
        counts[split] = {"images": n, "per_class": per_class, "cue_matches_label": matches,
                         "cue_match_rate": round(matches / n, 4), "correlation": params.split_correlation(split)}
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["split", "class", "name", "label", "cue_class"])
    writer.writerows(rows)
    (root / "cues.csv").write_text(buf.getvalue(), encoding="utf-8")
    meta = {
        "generator": "datasets.shortcut_suite",
        "version": VERSION,
        "params": params_dict(params),
        "class_names": list(names),
        "counts": counts,
        "cue": cue_description(params),
        "layout": {"images": "<split>/<class>/<name>.png",
                   "masks": "masks/<split>/<class>/<name>.png (0 = keep, 255 = the cue's pixels)",
                   "cues": "cues.csv (label and cue_class are indices into class_names)"},
    }

    (root / "suite.json").write_text(to_json_text(meta), encoding="utf-8")


# ============================================================================ CLI
def _parse_correlation(text: str) -> Optional[float]:
    if text.strip().lower() in ("null", "none"):
        return None
    try:
        return float(text)
    except ValueError:
        raise UserError(f"correlation must be a number in [0, 1] or null, got {text!r}") from None


def _parse_val_correlation(text: str) -> Union[float, str]:
    if text.strip().lower() in VAL_WORDS:
        return text.strip().lower()
    try:
        return float(text)
    except ValueError:
        raise UserError(f"val_correlation must be a number in [0, 1], 'same' or 'independent', got {text!r}") from None


def _parse_int(name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UserError(f"{name} must be an integer, got {text!r}") from None


def run_suite(out_dir, *, quick: bool = False, overwrite: bool = False,
              sets: list[SetSpec] | None = None) -> list[Path]:
    """Writes every set of :func:`suite_sets` into ``out_dir/<set name>/``; complete sets are skipped.

    Args:
        out_dir: the suite's folder.
        quick: only the ``QUICK_FAMILIES``.
        overwrite: regenerate sets that already exist.
        sets: other sets to write instead of :func:`suite_sets` (e.g. with smaller counts).

    Returns:
        The set folders, in suite order; one line per set (written or skipped) is logged (INFO).

    Raises:
        UserError: a set folder exists with other parameters (and not ``overwrite``).
    """
    root = Path(out_dir)
    paths = []
    for spec in (suite_sets(quick) if sets is None else sets):
        target = root / spec.name
        t0 = time.perf_counter()
        if target.exists() and not overwrite:
            if not is_complete(target, spec.params):
                raise UserError(f"set folder '{target}' exists but is not this suite's '{spec.name}' "
                                f"(other parameters or version); remove it or pass --overwrite")
            log.info("%-36s exists, skipped   %s", spec.name, target)
        else:
            generate(target, spec, overwrite=overwrite)
            log.info("%-36s written in %5.1f s   %s", spec.name, time.perf_counter() - t0, target)
        paths.append(target)
    return paths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m datasets.shortcut_suite", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="the set's root folder (with --suite: the suite's folder)")
    parser.add_argument("--suite", action="store_true", help="write every named set of the suite into --out")
    parser.add_argument("--quick", action="store_true", help=f"with --suite: only {', '.join(QUICK_FAMILIES)}")
    single = {  # option: (default, help); only without --suite
        "content": ("digits", f"{' | '.join(CLASSES)} (default digits)"),
        "cue": ("patch", f"{' | '.join(CUE_FAMILIES.names())} (default patch)"),
        "correlation": ("0.9", "train: P(cue encodes the label), or null = independent (default 0.9)"),
        "val_correlation": ("same", "same | independent | a number in [0, 1] (default same)"),
        "channels": ("1", "1 (gray) or 3 (RGB) (default 1)"),
        "image_size": ("64", f"{MIN_SIZE}..{MAX_SIZE} px (default 64)"),
        "n_train": ("1600", "train images (default 1600)"),
        "n_val": ("400", "val images (default 400)"),
        "n_test": ("800", "test images (default 800)"),
        "seed": ("0", "data seed (default 0)"),
        "backdrop": ("plain", "plain | photo (scikit-image's bundled photographs, dimmed) (default plain)"),
    }
    for key, (_, text) in single.items():
        parser.add_argument("--" + key.replace("_", "-"), default=None, help=text)
    parser.add_argument("--overwrite", action="store_true", help="replace existing output folders")
    args = parse_command_line(parser, argv)
    given = [key for key in single if getattr(args, key) is not None]
    if args.suite:
        if given:
            raise UserError(f"--{given[0].replace('_', '-')} does not apply with --suite (the suite's sets are fixed)")
        run_suite(args.out, quick=args.quick, overwrite=args.overwrite)
        return 0
    if args.quick:
        raise UserError("--quick only applies with --suite")
    for key, (default, _) in single.items():
        if getattr(args, key) is None:
            setattr(args, key, default)
    params = SuiteParams(
        content=args.content, cue=args.cue, correlation=_parse_correlation(args.correlation),
        val_correlation=_parse_val_correlation(args.val_correlation),
        channels=_parse_int("channels", args.channels), image_size=_parse_int("image_size", args.image_size),
        n_train=_parse_int("n_train", args.n_train), n_val=_parse_int("n_val", args.n_val),
        n_test=_parse_int("n_test", args.n_test), seed=_parse_int("seed", args.seed), backdrop=args.backdrop,
    )
    t0 = time.perf_counter()
    out = generate(args.out, params, overwrite=args.overwrite)
    print(f"written in {time.perf_counter() - t0:.1f} s")
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
