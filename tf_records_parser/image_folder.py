"""Image-folder converter: ``ROOT/{train,val,test}/<class>/*.{png,jpg,jpeg,bmp}`` to TFRecords.

Optional ground-truth masks ``ROOT/masks/<split>/<class>/<stem>.png`` (255 =
irrelevant) are stored with their images, and optional cue values ``ROOT/cues.csv``
(columns ``split,class,name`` and ``cue``, a class name, or ``cue_class`` with ``label``:
the class each image's cue stands for) as the records' ``spurious`` field — the ImageNet subset (§3.2.1), the X-ray
data (§6.3) and any user's images. Returns the manifest written by
:class:`tf_records_parser.writer.RecordWriter`; bad input raises one
:class:`common.errors.UserError` naming the file and the problem.

    python -m datasets.prepare --name image_folder --params '{"root": "my_images", "image_size": 224}'
"""
from __future__ import annotations

import csv
import hashlib
import logging
import time
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm.auto import tqdm

from common.errors import UserError
from common.images import read_mask
from common.logs import progress_bars
from common.splits import stratified_split
from tf_records_parser.converters import SPLITS, require_dir, sanitize_index
from tf_records_parser.features import Record
from tf_records_parser.image_depth import ConversionRefused, DepthRule, source_mode, to_8bit
from tf_records_parser.writer import RecordWriter

log = logging.getLogger(__name__)

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
#: without a terminal, conversion progress lines are at least this many seconds apart
PROGRESS_SECONDS = 10.0


def file_indices(root: Path, files: Sequence[Path]) -> dict[Path, str]:
    """Unique, stable indices of image files: the sanitised relative path without extension
    (``train/cat/img_01``); names that would coincide (``été/1.png`` and ``ête/1.png`` both
    give ``train/_t_/1``; NFC and NFD spellings; ``a.png`` next to ``a.jpg``) all get a
    suffix hashed from their exact relative path (``train/_t_/1-5f0c2a9e``).

    The result depends only on the set of files, never on their order.
    """
    groups: dict[str, list[Path]] = {}
    for f in files:
        groups.setdefault(sanitize_index(f.relative_to(root).with_suffix("").as_posix()), []).append(f)
    out: dict[Path, str] = {}
    for plain, members in groups.items():
        if len(members) == 1:
            out[members[0]] = plain
            continue
        for f in members:
            raw = f.relative_to(root).as_posix().encode("utf-8", "surrogateescape")
            out[f] = f"{plain}-{hashlib.sha256(raw).hexdigest()[:8]}"
    return out


def load_image(path: Path, size_hw: tuple[int, int], channels: int, rule: DepthRule | None = None,
               modes: dict | None = None) -> np.ndarray:
    """uint8 ``[H, W, channels]``: ``path`` decoded, brought to 8 bits by ``rule``
    (``tf_records_parser.image_depth``), converted and resized (bilinear).

    Args:
        modes: if given, counts the files per source mode (``{"I;16": 12, "RGB": 3}``).

    Raises:
        UserError: naming ``path`` when it cannot be decoded, or when the rule would clip
            or flatten it (naming its mode).
    """
    try:
        with Image.open(path) as img:
            mode = source_mode(img)
            img.load()
            # a phone photo stores its pixels sideways with an EXIF orientation tag: use them as
            # every viewer (and the expert painting masks elsewhere) shows them
            img = ImageOps.exif_transpose(img)
            img, mode = to_8bit(img, path, rule or DepthRule(), mode)
            img = img.convert("L" if channels == 1 else "RGB")
            img = img.resize((size_hw[1], size_hw[0]), Image.Resampling.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        size = path.stat().st_size if path.is_file() else 0
        undecodable = isinstance(exc, UnidentifiedImageError)
        why = ("an empty file (0 bytes)" if not size else
               f"not an image Pillow can decode ({size} bytes)" if undecodable else str(exc))
        raise UserError(f"cannot read image '{path}': {why}") from exc
    if modes is not None:
        modes[mode] = modes.get(mode, 0) + 1
    return arr[:, :, None] if arr.ndim == 2 else arr


def load_mask(path: Path, size_hw: tuple[int, int], image_path: Path | None = None,
              threshold: int | None = None) -> np.ndarray:
    """uint8 ``[H, W]`` in {0, 255} from a mask PNG, resized with nearest neighbour.

    Args:
        path: the mask PNG: single-channel with values 0 and 255 only (255 = irrelevant),
            the format of the selection tool's masks.
        size_hw: the data set's image size.
        image_path: the image the mask belongs to; its size on disk must equal the
            mask's (a mask of another size is not aligned with its image).
        threshold: opt-in (data set param ``mask_threshold``) for gray or colour masks:
            the mask is converted to gray and values >= ``threshold`` become 255.

    Raises:
        UserError naming the mask (and image) when unreadable, of the wrong size, or
        (without ``threshold``) not a 0/255 single-channel image.
    """

    if threshold is None:
        try:
            arr = read_mask(path, what="image-folder mask")
        except UserError as exc:
            raise UserError(f"{exc}; convert it to a 0/255 single-channel PNG, or set the data set "
                            "param mask_threshold (e.g. 128) to threshold such masks") from None
    try:
        with Image.open(path) as img:
            img.load()
            if image_path is not None:
                with Image.open(image_path) as src:
                    if src.size != img.size:
                        raise UserError(f"mask '{path}' is {img.size[1]}×{img.size[0]} but its image "
                                        f"'{image_path}' is {src.size[1]}×{src.size[0]}")
            if threshold is not None:
                arr = np.where(np.asarray(img.convert("L")) >= threshold, 255, 0).astype(np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UserError(f"cannot read mask '{path}': {exc}") from exc
    small = Image.fromarray(arr).resize((size_hw[1], size_hw[0]), Image.Resampling.NEAREST)
    return np.asarray(small, dtype=np.uint8)


def orphan_masks(root: Path, expected: set[Path]) -> list[Path]:
    """Mask files under ``ROOT/masks`` that belong to no image (``expected`` = the masks that do)."""
    masks = root / "masks"
    if not masks.is_dir():
        return []
    found = sorted(p for p in masks.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
    return [p for p in found if p not in expected]


#: the optional cue-value table of an image folder (``read_cue_values``)
CUES_FILE = "cues.csv"


def read_cue_values(root: Path, classes: Sequence[str]) -> dict[tuple[str, str, str], int]:
    """The class each image's cue stands for, from ``ROOT/cues.csv`` ({} without the file).

    Rows name an image by ``split``, ``class`` (its folder) and ``name`` (its file name)
    and its cue by ``cue`` (a class name) or by ``cue_class`` (an integer class id of the
    table's own numbering, mapped to names through its ``label`` column, as
    ``datasets.shortcut_suite`` writes it).

    Returns:
        ``{(split, class, name): class id in classes}``.

    Raises:
        UserError naming the file and row: a missing column, a class not among ``classes``,
        an id the ``label`` column never maps.
    """
    path = root / CUES_FILE
    if not path.is_file():
        return {}
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    cols = set(rows[0]) if rows else set()
    by_name = "cue" in cols
    if not {"split", "class", "name"} <= cols or not (by_name or {"cue_class", "label"} <= cols):
        raise UserError(f"'{path}': expected the columns split, class, name and cue (a class name) or cue_class "
                        f"and label; found {sorted(cols)}")
    ids = {} if by_name else {row["label"]: row["class"] for row in rows}
    out = {}
    for i, row in enumerate(rows, start=2):
        name = row["cue"] if by_name else ids.get(row["cue_class"])
        if name not in classes:
            raise UserError(f"'{path}' line {i}: cue {row['cue'] if by_name else row['cue_class']!r} is not a class "
                            f"(classes: {', '.join(classes)})")
        out[(row["split"], row["class"], row["name"])] = list(classes).index(name)
    return out


def scan_image_folder(root) -> tuple[list[str], dict[str, dict[str, list[Path]]]]:
    """Classes and files of ``ROOT/{train,val,test}/<class>/*``.

    Returns:
        ``(class_names, {split: {class: [files sorted]}})`` for the splits present.

    Raises:
        UserError: missing ``train``, no classes, an empty class folder, a class missing
            from one split or present only in one split.
    """
    root = Path(root)
    require_dir(root, "image folder root")
    train = root / "train"
    if not train.is_dir():
        raise UserError(f"'{train}' does not exist: expected ROOT/{{train,val,test}}/<class>/*.png|jpg|jpeg|bmp")
    hidden = sorted(p.name for p in train.iterdir() if p.is_dir() and p.name.startswith("."))
    if hidden:  # .ipynb_checkpoints, .thumbnails: tool folders, never a class
        log.warning("'%s': ignoring hidden folder(s) %s (a class folder name must not start with '.')",
                    train, ", ".join(hidden))
    classes = sorted(p.name for p in train.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise UserError(f"'{train}' contains no class folders")
    found: dict[str, dict[str, list[Path]]] = {}
    for split in SPLITS:
        sdir = root / split
        if not sdir.is_dir():
            continue
        present = sorted(p.name for p in sdir.iterdir() if p.is_dir() and not p.name.startswith("."))
        for c in classes:
            if c not in present:
                raise UserError(f"class '{c}' is missing from split folder '{sdir}' (classes in train: {', '.join(classes)})")
        for c in present:
            if c not in classes:
                raise UserError(f"class folder '{sdir / c}' has no counterpart in '{train}'")
        _warn_unread(sdir, classes)
        found[split] = {}
        for c in classes:
            files = sorted(p for p in (sdir / c).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
            if not files:
                raise UserError(f"class folder '{sdir / c}' contains no images ({', '.join(IMAGE_EXTS)})")
            found[split][c] = files
    return classes, found


def _warn_unread(sdir: Path, classes: Sequence[str]) -> None:
    """One warning naming what under split folder ``sdir`` is never read: files beside the
    class folders, folders inside them (images are read from ``<split>/<class>/`` only, not
    deeper) and files of other types. Hidden names (``.DS_Store``) are left out."""
    unread = [p.name for p in sorted(sdir.iterdir()) if p.is_file() and not p.name.startswith(".")]
    for c in classes:
        unread += [f"{c}/{p.name}" + ("/" if p.is_dir() else "") for p in sorted((sdir / c).iterdir())
                   if not p.name.startswith(".") and (p.is_dir() or p.suffix.lower() not in IMAGE_EXTS)]
    if unread:
        log.warning("'%s': %d file(s) or folder(s) not read (images are read from %s/<class>/*%s only, not from "
                    "sub-folders): %s", sdir, len(unread), sdir.name, "|*".join(IMAGE_EXTS),
                    ", ".join(unread[:3]) + (f" and {len(unread) - 3} more" if len(unread) > 3 else ""))


def convert_image_folder(root, out_dir, *, image_size: Sequence[int] = (224, 224), channels: int = 3,
                         val_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0,
                         skip_corrupt: bool = False, mask_threshold: int | None = None,
                         name: str = "image_folder", params: dict | None = None,
                         fingerprint: str | None = None, rule: DepthRule | None = None) -> dict:
    """Converts an image-folder tree to a TFRecord data set folder.

    Missing ``val``/``test`` folders are carved out of ``train`` by a seeded split
    stratified by class (``common.splits.stratified_split``: ``val_fraction``/``test_fraction``
    of the train images, each class in its share). Indices are
    the sanitised relative path without extension (``train/cat/img_01``), unique and
    stable across runs for any file names (:func:`file_indices`). Masks from
    ``ROOT/masks/<split>/<class>/<stem>.png`` are stored with the images; a mask whose
    image does not exist is an error, and the manifest counts the matched masks.

    Args:
        root: the tree's root folder.
        out_dir: output folder.
        image_size: ``(H, W)``.
        channels: 1 (grayscale) or 3 (RGB).
        skip_corrupt: skip unreadable images (listed in the manifest's ``skipped``)
            instead of failing.
        mask_threshold: accept gray/colour masks, thresholded at this value (see :func:`load_mask`).
        rule: how 16-bit, float and transparent images become 8 bits
            (``tf_records_parser.image_depth``; recorded as ``conversion`` in the manifest).

    Returns:
        The manifest.
    """
    root = Path(root)
    h, w = (int(v) for v in image_size)
    if channels not in (1, 3):
        raise UserError(f"channels must be 1 or 3, got {channels}")
    classes, found = scan_image_folder(root)
    assignments: list[tuple[str, str, int, Path]] = []  # (split, source split, label, file)
    for split, per_class in found.items():
        items = [(label, f) for label, c in enumerate(classes) for f in per_class[c]]
        if split == "train" and ("val" not in found or "test" not in found):
            ids = stratified_split([label for label, _ in items],
                                   val_fraction=0.0 if "val" in found else val_fraction,
                                   test_fraction=0.0 if "test" in found else test_fraction,
                                   seed=seed, what=f"images of '{root / 'train'}'")
            assignments.extend((SPLITS[int(sid)], "train", label, f) for (label, f), sid in zip(items, ids))
            empty = [f"{s} ({fraction:.0%})" for s, fraction in (("val", val_fraction), ("test", test_fraction))
                     if s not in found and fraction > 0 and not (np.asarray(ids) == SPLITS.index(s)).any()]
            if empty:
                log.warning("'%s' has %d image(s): too few to split off %s; the data set has no such split (add "
                            "ROOT/val and ROOT/test, or more images)", root / "train", len(items), " and ".join(empty))
        else:
            assignments.extend((split, split, label, f) for label, f in items)
    order = np.random.default_rng([seed, 1]).permutation(len(assignments))
    assignments = [assignments[i] for i in order]
    assignments.sort(key=lambda a: SPLITS.index(a[0]))  # stable: splits in order, shuffled within

    def mask_of(source_split: str, f: Path) -> Path:
        return root / "masks" / source_split / f.parent.name / (f.stem + ".png")

    expected = {mask_of(src, f) for _, src, _, f in assignments}
    orphans = orphan_masks(root, expected)
    if orphans:
        more = f" (and {len(orphans) - 1} more)" if len(orphans) > 1 else ""
        wanted = str(orphans[0].with_suffix(".png")).lower()
        near = next((m for m in sorted(expected) if str(m).lower() == wanted), None)
        case = f" ('{near.name}' would match: names are case-sensitive)" if near else ""
        raise UserError(f"mask '{orphans[0]}'{more} has no image: expected ROOT/<split>/<class>/<same stem>"
                        f".{{{','.join(e[1:] for e in IMAGE_EXTS)}}} under '{root}'{case}")
    indices = file_indices(root, [f for _, _, _, f in assignments])
    cue_values = read_cue_values(root, classes)
    skipped: list[dict] = []
    n_masks = 0
    rule = rule or DepthRule()
    modes: dict[str, int] = {}

    def records():
        nonlocal n_masks
        bars = progress_bars(log)
        bar = tqdm(assignments, desc=f"converting {root.name}", unit="img", leave=False, disable=not bars)
        every, last = max(1, len(assignments) // 10), time.monotonic()
        for done, (split, source_split, label, f) in enumerate(bar):
            # no terminal: a plain line per tenth (at most one per PROGRESS_SECONDS) shows a long conversion lives
            if not bars and done and done % every == 0 and time.monotonic() - last >= PROGRESS_SECONDS:
                log.info("converting '%s': %d of %d images", root, done, len(assignments))
                last = time.monotonic()
            index = indices[f]
            try:
                image = load_image(f, (h, w), channels, rule, modes)
            except UserError as exc:
                if isinstance(exc, ConversionRefused):
                    raise
                if not skip_corrupt:
                    raise UserError(f"{exc}; remove it, or set \"skip_corrupt\": true in the data set params to "
                                    "skip unreadable images") from None
                skipped.append({"file": str(f), "error": str(exc)})
                continue
            mask_path = mask_of(source_split, f)
            mask = (load_mask(mask_path, (h, w), image_path=f, threshold=mask_threshold)
                    if mask_path.is_file() else None)
            n_masks += mask is not None
            cue = cue_values.get((source_split, f.parent.name, f.name), -1)
            yield split, Record(index=index, image=image, label=label, mask=mask, spurious=cue)

    with RecordWriter(out_dir, classes, (h, w, channels)) as writer:
        for split, r in records():
            writer.write(split, r)
        return writer.finish(
            name=name, params=params,
            source={"kind": "image_folder", "root": str(root), "fingerprint": fingerprint,
                    "generated_splits": [s for s in SPLITS if s not in found]},
            skipped=skipped, extra={"has_ground_truth": n_masks > 0, "n_masks": n_masks,
                                    "conversion": {"rule": rule.describe(), "source_modes": dict(sorted(modes.items()))}},
        )
