"""Converters from user-supplied sources to TFRecord data set folders.

* image folders ``ROOT/{train,val,test}/<class>/*.{png,jpg,jpeg,bmp}`` (+ optional
  ground-truth masks ``ROOT/masks/<split>/<class>/<stem>.png``, 255 = irrelevant) —
  the ImageNet subset (§3.2.1), the X-ray data (§6.3) and any user's images;
* QuickDraw bitmaps ``<class>.npy`` (``N × 784`` uint8) to 128×128×1 (§6.1);
* CIFAR-10 binary version (``data_batch_1..5.bin``, ``test_batch.bin``).

Each returns the manifest written by :class:`tf_records_parser.records.RecordWriter`.
Bad input raises one :class:`common.errors.UserError` naming the file and the problem.

    python -m datasets.prepare --name image_folder --params '{"root": "my_images", "image_size": 224}'
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from common.errors import UserError
from tf_records_parser import records as rec

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp")
SPLITS = ("train", "val", "test")
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR_RECORD = 1 + 32 * 32 * 3


def sanitize_index(text: str) -> str:
    """An index made of ``[A-Za-z0-9_.-/]`` only (other characters become ``_``)."""
    return re.sub(r"[^A-Za-z0-9_.\-/]", "_", text)


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


def folder_fingerprint(root) -> str:
    """Short hash of every file's relative path, size and mtime under ``root`` (cache invalidation)."""
    root = Path(root)
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath) / name
            try:
                st = p.stat()
            except OSError:
                continue
            h.update(f"{p.relative_to(root).as_posix()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _require_dir(path: Path, what: str) -> None:
    if not path.exists():
        raise UserError(f"{what} '{path}' does not exist")
    if not path.is_dir():
        raise UserError(f"{what} '{path}' is not a folder")


def _split_items(n: int, val_fraction: float, test_fraction: float, rng: np.random.Generator,
                 want_val: bool, want_test: bool) -> np.ndarray:
    """Split id (0 train, 1 val, 2 test) for ``n`` items of one class, seeded."""
    out = np.zeros(n, np.int64)
    perm = rng.permutation(n)
    n_test = int(round(n * test_fraction)) if want_test else 0
    n_val = int(round(n * val_fraction)) if want_val else 0
    out[perm[:n_test]] = 2
    out[perm[n_test: n_test + n_val]] = 1
    return out


# ----------------------------------------------------------------------------- image folders
def load_image(path: Path, size_hw: tuple[int, int], channels: int) -> np.ndarray:
    """uint8 ``[H, W, channels]``: ``path`` decoded, converted and resized (bilinear).

    Raises:
        UserError: naming ``path`` when it cannot be decoded.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            img = img.convert("L" if channels == 1 else "RGB")
            img = img.resize((size_hw[1], size_hw[0]), Image.Resampling.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise UserError(f"cannot read image '{path}': {exc}") from exc
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
    from PIL import Image, UnidentifiedImageError

    from common.images import read_mask

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


def scan_image_folder(root) -> tuple[list[str], dict[str, dict[str, list[Path]]]]:
    """Classes and files of ``ROOT/{train,val,test}/<class>/*``.

    Returns:
        ``(class_names, {split: {class: [files sorted]}})`` for the splits present.

    Raises:
        UserError: missing ``train``, no classes, an empty class folder, a class missing
            from one split or present only in one split.
    """
    root = Path(root)
    _require_dir(root, "image folder root")
    train = root / "train"
    if not train.is_dir():
        raise UserError(f"'{train}' does not exist: expected ROOT/{{train,val,test}}/<class>/*.png|jpg|jpeg|bmp")
    classes = sorted(p.name for p in train.iterdir() if p.is_dir())
    if not classes:
        raise UserError(f"'{train}' contains no class folders")
    found: dict[str, dict[str, list[Path]]] = {}
    for split in SPLITS:
        sdir = root / split
        if not sdir.is_dir():
            continue
        present = sorted(p.name for p in sdir.iterdir() if p.is_dir())
        for c in classes:
            if c not in present:
                raise UserError(f"class '{c}' is missing from split folder '{sdir}' (classes in train: {', '.join(classes)})")
        for c in present:
            if c not in classes:
                raise UserError(f"class folder '{sdir / c}' has no counterpart in '{train}'")
        found[split] = {}
        for c in classes:
            files = sorted(p for p in (sdir / c).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
            if not files:
                raise UserError(f"class folder '{sdir / c}' contains no images ({', '.join(IMAGE_EXTS)})")
            found[split][c] = files
    return classes, found


def convert_image_folder(root, out_dir, *, image_size: Sequence[int] = (224, 224), channels: int = 3,
                         val_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0,
                         skip_corrupt: bool = False, mask_threshold: int | None = None,
                         name: str = "image_folder", params: dict | None = None,
                         fingerprint: str | None = None) -> dict:
    """Converts an image-folder tree to a TFRecord data set folder.

    Missing ``val``/``test`` folders are carved out of ``train`` by a seeded split
    stratified by class (``val_fraction``/``test_fraction`` of each class). Indices are
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

    Returns:
        The manifest.
    """
    root = Path(root)
    h, w = (int(v) for v in image_size)
    if channels not in (1, 3):
        raise UserError(f"channels must be 1 or 3, got {channels}")
    classes, found = scan_image_folder(root)
    rng = np.random.default_rng(seed)
    assignments: list[tuple[str, str, int, Path]] = []  # (split, source split, label, file)
    for split, per_class in found.items():
        for label, c in enumerate(classes):
            files = per_class[c]
            if split == "train" and ("val" not in found or "test" not in found):
                ids = _split_items(len(files), val_fraction, test_fraction, rng,
                                   want_val="val" not in found, want_test="test" not in found)
                for f, sid in zip(files, ids):
                    assignments.append((SPLITS[int(sid)], "train", label, f))
            else:
                assignments.extend((split, split, label, f) for f in files)
    order = np.random.default_rng([seed, 1]).permutation(len(assignments))
    assignments = [assignments[i] for i in order]
    assignments.sort(key=lambda a: SPLITS.index(a[0]))  # stable: splits in order, shuffled within

    def mask_of(source_split: str, f: Path) -> Path:
        return root / "masks" / source_split / f.parent.name / (f.stem + ".png")

    orphans = orphan_masks(root, {mask_of(src, f) for _, src, _, f in assignments})
    if orphans:
        more = f" (and {len(orphans) - 1} more)" if len(orphans) > 1 else ""
        raise UserError(f"mask '{orphans[0]}'{more} has no image: expected ROOT/<split>/<class>/<same stem>"
                        f".{{png,jpg,jpeg,bmp}} under '{root}'")
    indices = file_indices(root, [f for _, _, _, f in assignments])
    skipped: list[dict] = []
    n_masks = 0

    def records():
        nonlocal n_masks
        for split, source_split, label, f in assignments:
            index = indices[f]
            try:
                image = load_image(f, (h, w), channels)
            except UserError as exc:
                if not skip_corrupt:
                    raise
                skipped.append({"file": str(f), "error": str(exc)})
                continue
            mask_path = mask_of(source_split, f)
            mask = (load_mask(mask_path, (h, w), image_path=f, threshold=mask_threshold)
                    if mask_path.is_file() else None)
            n_masks += mask is not None
            yield split, rec.Record(index=index, image=image, label=label, mask=mask)

    with rec.RecordWriter(out_dir, classes, (h, w, channels)) as writer:
        for split, r in records():
            writer.write(split, r)
        return writer.finish(
            name=name, params=params,
            source={"kind": "image_folder", "root": str(root), "fingerprint": fingerprint,
                    "generated_splits": [s for s in SPLITS if s not in found]},
            skipped=skipped, extra={"has_ground_truth": n_masks > 0, "n_masks": n_masks},
        )


# ----------------------------------------------------------------------------- QuickDraw
def load_quickdraw_npy(path: Path) -> np.ndarray:
    """``N × 784`` uint8 bitmaps from ``path`` (memory-mapped); a UserError naming a bad file."""
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise UserError(f"cannot read QuickDraw file '{path}': {exc}") from exc
    if arr.ndim != 2 or arr.shape[1] != 784:
        raise UserError(f"QuickDraw file '{path}' has shape {tuple(arr.shape)}, expected (N, 784) (28×28 bitmaps)")
    if arr.dtype != np.uint8:
        raise UserError(f"QuickDraw file '{path}' has dtype {arr.dtype}, expected uint8")
    if arr.shape[0] == 0:
        raise UserError(f"QuickDraw file '{path}' holds no drawings")
    return arr


def convert_quickdraw(root, out_dir, *, classes: Sequence[str] | None = None, per_class_limit: int | None = None,
                      image_size: int = 128, val_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0,
                      name: str = "quickdraw", params: dict | None = None, fingerprint: str | None = None) -> dict:
    """Converts ``ROOT/<class>.npy`` QuickDraw bitmaps to ``image_size² × 1`` records (§6.1).

    Args:
        classes: class names to use (file stems), default every ``.npy`` in ``root`` (sorted).
        per_class_limit: at most this many drawings per class (a seeded random subset).
        val_fraction, test_fraction: seeded per-class split.

    Returns:
        The manifest. Indices are ``<split>/<class>/<row in the .npy>``.
    """
    from PIL import Image

    root = Path(root)
    _require_dir(root, "QuickDraw folder")
    available = sorted(p.stem for p in root.glob("*.npy"))
    if classes is None:
        classes = available
    if not classes:
        raise UserError(f"QuickDraw folder '{root}' contains no <class>.npy files")
    for c in classes:
        if not (root / f"{c}.npy").is_file():
            raise UserError(f"QuickDraw file '{root / (c + '.npy')}' does not exist (available: {', '.join(available)})")
    arrays = {c: load_quickdraw_npy(root / f"{c}.npy") for c in classes}
    rng = np.random.default_rng(seed)
    items: list[tuple[str, int, int]] = []  # (split, label, row)
    for label, c in enumerate(classes):
        n = arrays[c].shape[0]
        rows = rng.permutation(n)
        if per_class_limit is not None:
            rows = rows[:per_class_limit]
        rows = np.sort(rows)
        ids = _split_items(len(rows), val_fraction, test_fraction, rng, True, True)
        items.extend((SPLITS[int(s)], label, int(r)) for r, s in zip(rows, ids))
    order = np.random.default_rng([seed, 1]).permutation(len(items))
    items = sorted((items[i] for i in order), key=lambda t: SPLITS.index(t[0]))

    def records():
        for split, label, row in items:
            bitmap = np.asarray(arrays[classes[label]][row], np.uint8).reshape(28, 28)
            img = np.asarray(Image.fromarray(bitmap).resize((image_size, image_size), Image.Resampling.BILINEAR))
            yield split, rec.Record(index=sanitize_index(f"{split}/{classes[label]}/{row:06d}"),
                                    image=img[:, :, None], label=label)

    return rec.write_records(
        out_dir, records(), name=name, class_names=list(classes), image_shape=(image_size, image_size, 1),
        source={"kind": "quickdraw", "root": str(root), "fingerprint": fingerprint}, params=params,
    )


# ----------------------------------------------------------------------------- CIFAR-10
def read_cifar_batch(path: Path, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 [N,32,32,3], labels int64 [N])`` of one CIFAR-10 binary batch file."""
    if not path.is_file():
        raise UserError(f"CIFAR-10 batch '{path}' does not exist")
    data = np.fromfile(path, dtype=np.uint8)
    if data.size == 0 or data.size % CIFAR_RECORD:
        raise UserError(
            f"CIFAR-10 batch '{path}' has {data.size} bytes, not a positive multiple of {CIFAR_RECORD} "
            "(1 label byte + 32×32×3 pixels)"
        )
    data = data.reshape(-1, CIFAR_RECORD)
    labels = data[:, 0].astype(np.int64)
    if labels.max() >= num_classes:
        raise UserError(f"CIFAR-10 batch '{path}' has label {int(labels.max())}, expected < {num_classes}")
    images = data[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def cifar10_dir(root) -> Path:
    """``root`` or its ``cifar-10-batches-bin`` subfolder, whichever holds the batches."""
    root = Path(root)
    _require_dir(root, "CIFAR-10 folder")
    sub = root / "cifar-10-batches-bin"
    return sub if not (root / "data_batch_1.bin").exists() and sub.is_dir() else root


def convert_cifar10(root, out_dir, *, name: str = "cifar10", params: dict | None = None,
                    fingerprint: str | None = None) -> dict:
    """Converts CIFAR-10 binary batches: 1–4 train, 5 val, ``test_batch.bin`` test.

    Class names come from ``batches.meta.txt`` when present. Indices ``train_00017`` etc.
    """
    folder = cifar10_dir(root)
    meta = folder / "batches.meta.txt"
    classes = CIFAR10_CLASSES
    if meta.is_file():
        classes = [line.strip() for line in meta.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not classes:
            raise UserError(f"'{meta}' lists no class names")
    plan = [("train", f"data_batch_{k}.bin") for k in range(1, 5)] + [("val", "data_batch_5.bin"),
                                                                      ("test", "test_batch.bin")]
    for _, fname in plan:  # fail before writing anything
        if not (folder / fname).is_file():
            raise UserError(f"CIFAR-10 batch '{folder / fname}' does not exist (need data_batch_1..5.bin, test_batch.bin)")

    def records():
        counters = {s: 0 for s in SPLITS}
        for split, fname in plan:
            images, labels = read_cifar_batch(folder / fname, len(classes))
            for img, y in zip(images, labels):
                yield split, rec.Record(index=f"{split}_{counters[split]:05d}", image=img, label=int(y))
                counters[split] += 1

    return rec.write_records(
        out_dir, records(), name=name, class_names=classes, image_shape=(32, 32, 3),
        source={"kind": "cifar10", "root": str(folder), "fingerprint": fingerprint}, params=params,
    )
