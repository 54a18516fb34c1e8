"""Converters from user-supplied sources to TFRecord data set folders.

* image folders ``ROOT/{train,val,test}/<class>/*.{png,jpg,jpeg,bmp}`` (+ optional
  ground-truth masks ``ROOT/masks/<split>/<class>/<stem>.png``, 255 = irrelevant) —
  the ImageNet subset (§3.2.1), the X-ray data (§6.3) and any user's images: in
  ``tf_records_parser.image_folder``;
* QuickDraw bitmaps ``<class>.npy`` (``N × 784`` uint8) to 128×128×1 (§6.1);
* CIFAR-10 binary version (``data_batch_1..5.bin``, ``test_batch.bin``).

Each returns the manifest written by :class:`tf_records_parser.writer.RecordWriter`.
Bad input raises one :class:`common.errors.UserError` naming the file and the problem.

    python -m datasets.prepare --name quickdraw --params '{"root": "quickdraw_npy"}'
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from common.errors import UserError
from common.paths import check_path_name
from common.splits import stratified_split
from tf_records_parser.features import Record
from tf_records_parser.writer import write_records

SPLITS = ("train", "val", "test")
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR_RECORD = 1 + 32 * 32 * 3


def sanitize_index(text: str) -> str:
    """An index made of ``[A-Za-z0-9_.-/]`` only (other characters become ``_``)."""
    return re.sub(r"[^A-Za-z0-9_.\-/]", "_", text)


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


def require_dir(path: Path, what: str) -> None:
    """A UserError naming ``path`` unless it is an existing folder."""
    if not path.exists():
        raise UserError(f"{what} '{path}' does not exist")
    if not path.is_dir():
        raise UserError(f"{what} '{path}' is not a folder")


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
        val_fraction, test_fraction: shares of the drawings in val / test, stratified by class
            (``common.splits.stratified_split``), seeded.

    Returns:
        The manifest. Indices are ``<split>/<class>/<row in the .npy>``.
    """
    root = Path(root)
    require_dir(root, "QuickDraw folder")
    available = sorted(p.stem for p in root.glob("*.npy"))
    if classes is None:
        classes = available
    if not classes:
        raise UserError(f"QuickDraw folder '{root}' contains no <class>.npy files")
    for c in classes:
        check_path_name(c, f"QuickDraw classes: class {c!r}")
        if not (root / f"{c}.npy").is_file():
            raise UserError(f"QuickDraw file '{root / (c + '.npy')}' does not exist (available: {', '.join(available)})")
    arrays = {c: load_quickdraw_npy(root / f"{c}.npy") for c in classes}
    rng = np.random.default_rng(seed)
    drawings: list[tuple[int, int]] = []  # (label, row)
    for label, c in enumerate(classes):
        n = arrays[c].shape[0]
        rows = rng.permutation(n)
        if per_class_limit is not None:
            rows = rows[:per_class_limit]
        drawings.extend((label, int(r)) for r in np.sort(rows))
    ids = stratified_split([label for label, _ in drawings], val_fraction=val_fraction,
                           test_fraction=test_fraction, seed=seed, what=f"drawings of '{root}'")
    items = [(SPLITS[int(s)], label, row) for (label, row), s in zip(drawings, ids)]  # (split, label, row)
    order = np.random.default_rng([seed, 1]).permutation(len(items))
    items = sorted((items[i] for i in order), key=lambda t: SPLITS.index(t[0]))

    def records():
        for split, label, row in items:
            bitmap = np.asarray(arrays[classes[label]][row], np.uint8).reshape(28, 28)
            img = np.asarray(Image.fromarray(bitmap).resize((image_size, image_size), Image.Resampling.BILINEAR))
            yield split, Record(index=sanitize_index(f"{split}/{classes[label]}/{row:06d}"),
                                image=img[:, :, None], label=label)

    return write_records(
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
    require_dir(root, "CIFAR-10 folder")
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
                yield split, Record(index=f"{split}_{counters[split]:05d}", image=img, label=int(y))
                counters[split] += 1

    return write_records(
        out_dir, records(), name=name, class_names=classes, image_shape=(32, 32, 3),
        source={"kind": "cifar10", "root": str(folder), "fingerprint": fingerprint}, params=params,
    )
