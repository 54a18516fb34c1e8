"""The fast path's feature cache: the frozen part's output of every image a method can
draw, computed once and kept on disk (``FeatureStore``, written in chunks, read row by
row), and the method that draws its batches from it (``FastMethod``).

``cache_method`` fills the stores of one set-up method: the training split (as arrays,
or with ``data.stream`` read from its records in position order, a chunk at a time, so
the split's pixels are never held whole), the pool (selected images or their variants),
``swap``'s variants of the propagated images and the validation sets. The batches are
then drawn by position exactly as on the in-memory path, with the same random numbers.
"""
from __future__ import annotations

import dataclasses
import os
import tempfile

import numpy as np
import tensorflow as tf
from keras import ops

from classification_models.feature_layers import layer_activations
from classification_models.train_step import build_train_step

#: images whose features are computed at a time (the only pixels held while caching)
CHUNK = 256


class FeatureStore:
    """Rows of float32 features on disk, written in chunks and read row by row.

    Args:
        folder: where the file goes. name: its stem. shape: one row's shape.
    """

    def __init__(self, folder: str, name: str, shape: tuple[int, ...]):
        self.path = os.path.join(folder, f"{name}.f32")
        self.shape = tuple(int(v) for v in shape)
        self.row_bytes = int(np.prod(self.shape)) * 4
        self.n = 0
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)

    def append(self, rows: np.ndarray) -> None:
        data = np.ascontiguousarray(np.asarray(rows, np.float32)).tobytes()
        os.pwrite(self._fd, data, self.n * self.row_bytes)
        self.n += len(rows)

    def rows(self, positions) -> np.ndarray:
        """float32 ``[len(positions), *shape]``."""
        out = np.empty((len(positions),) + self.shape, np.float32)
        for j, p in enumerate(np.asarray(positions, np.int64)):
            out[j] = np.frombuffer(os.pread(self._fd, self.row_bytes, int(p) * self.row_bytes),
                                   np.float32).reshape(self.shape)
        return out

    def close(self) -> None:
        os.close(self._fd)


def feature_store(folder, name, clf, layer, images, *, shape, chunk: int = CHUNK) -> FeatureStore:
    """The features of ``images`` in a new store, ``chunk`` at a time.

    Args:
        images: uint8 ``[N, H, W, C]``, or a batched ``tf.data`` of ``(index, image,
            label)`` read in order (a split streamed from its records, never held whole).
    """
    store = FeatureStore(folder, name, shape)
    if isinstance(images, np.ndarray):
        for s in range(0, len(images), chunk):
            store.append(layer_activations(clf, images[s:s + chunk], layer=layer))
        return store
    for _, batch, _ in images.as_numpy_iterator():
        store.append(layer_activations(clf, batch, layer=layer))
    return store


def streamed_split_store(folder, clf, layer, dataset, *, shape, split: str = "train",
                         chunk: int = CHUNK) -> FeatureStore:
    """The features of ``split`` in position order, read from storage ``chunk`` images at
    a time (``Dataset.split`` unshuffled: a record-backed set decodes its shards in file
    order), so memory holds one chunk of pixels whatever the split's size.

    Raises:
        RuntimeError when the records do not come in the order of the split's index table
        (the positions the batches are drawn by would point at other images).
    """
    indices = dataset.index_table(split)[0]
    store = FeatureStore(folder, split, shape)
    for idx, batch, _ in dataset.split(split, batch_size=chunk).as_numpy_iterator():
        got = [i.decode() if isinstance(i, bytes) else str(i) for i in idx]
        want = [str(i) for i in indices[store.n:store.n + len(got)]]
        if got != want:
            raise RuntimeError(f"split '{split}' of '{dataset.name}' is read in another order than its index table "
                               f"(position {store.n}: '{got[0]}', expected '{want[0] if want else None}')")
        store.append(layer_activations(clf, batch, layer=layer))
    if store.n != len(indices):
        raise RuntimeError(f"split '{split}' of '{dataset.name}' gave {store.n} images; its index table has "
                           f"{len(indices)}")
    return store


class FeatureClassifier:
    """The classifier seen from the freeze point: ``forward`` takes the frozen part's
    output; everything else is the full classifier's (``clf``)."""

    def __init__(self, clf, top):
        self.full = clf
        self.top = top
        self._steps: dict = {}
        self._logits_fn = None

    def __getattr__(self, name):  # grid_shape, cam_kernel, head_weights, ... of the full classifier
        return getattr(self.full, name)

    def forward(self, features, training: bool = False, feature_scale=None):
        """``(feature map [N, h, w, K], logits [N, C])`` from cached features."""
        acts = self.top(features, training=training)
        if acts.dtype == "float16":  # mixed precision: as Classifier.forward
            acts = ops.cast(acts, "float32")
        return acts, self.full.head_logits(acts, training=training, feature_scale=feature_scale)

    def make_train_step(self, loss_fn, optimizer=None, strategy=None):
        key = (id(loss_fn), id(optimizer))
        if key not in self._steps:
            self._steps[key] = build_train_step(self, loss_fn=loss_fn, optimizer=optimizer, strategy=strategy)
        return self._steps[key]

    def predict_proba(self, features, batch_size: int = 256) -> np.ndarray:
        """Probabilities ``[N, C]`` of a feature array or a ``FeatureStore``."""
        if self._logits_fn is None:
            self._logits_fn = tf.function(lambda x: tf.nn.softmax(self.forward(x)[1]), reduce_retracing=True)
        n = features.n if isinstance(features, FeatureStore) else len(features)
        out = []
        for s in range(0, n, batch_size):
            rows = (features.rows(np.arange(s, min(n, s + batch_size))) if isinstance(features, FeatureStore)
                    else np.asarray(features[s:s + batch_size], np.float32))
            out.append(self._logits_fn(tf.constant(rows)).numpy())
        return np.concatenate(out) if out else np.zeros((0, self.full.num_classes), np.float32)


@dataclasses.dataclass
class FeatureContext:
    """What the loop reads from a method's data on the fast path: the selected images
    (as features) and plain training batches (features of random training images, for
    the batch-norm recalibration of the layers after the freeze point)."""

    selected: object
    train: FeatureStore

    def plain_batches(self, *, batch_size: int, seed: int):
        rng = np.random.default_rng(seed)
        while True:
            yield self.train.rows(np.sort(rng.choice(self.train.n, size=min(batch_size, self.train.n), replace=False)))


class FastMethod:
    """A set-up method trained on cached features: its batches are the in-memory full
    path's (same positions, pool items and swaps from the same random numbers), with the
    images replaced by their frozen features — also with ``data.stream``, whose training
    split is then read only to fill the store.

    Args:
        labels: int64 ``[N]`` the training split's labels in position order.
    """

    def __init__(self, method, clf: FeatureClassifier, stores: dict, ctx: FeatureContext, folder, labels):
        self.inner, self.clf, self.stores, self.ctx, self._folder = method, clf, stores, ctx, folder
        self.labels = np.asarray(labels, np.int64)
        self.label = method.label
        self.loss = method.loss

    def batch_counts(self):
        return self.inner.batch_counts()

    def sample_batch(self, rng: np.random.Generator) -> dict:
        m = self.inner
        positions, sel = m.sample_positions(rng)
        images = np.concatenate([self.stores["train"].rows(positions), self.stores["pool"].rows(sel)])
        batch = {"images": images, **m.batch_fields(self.labels[positions], sel)}
        if "variants" in self.stores:
            rows, slots, pick = m.choose_swaps(positions, rng)
            flat = slots * m.random_variants.shape[1] + pick
            batch = m.apply_swaps(batch, rows, slots, self.stores["variants"].rows(flat))
        return batch

    def release(self) -> None:
        self.inner.release()
        for store in self.stores.values():
            store.close()
        self._folder.cleanup()


def cache_method(method, layer: str, *, val, val_swap, cache_dir: str | None = None):
    """The features of every image ``method`` (set up, its classifier already split at
    ``layer``) can draw, in stores under a new temporary folder in ``cache_dir``.

    Args:
        val, val_swap: ``(images, labels)`` or None; images an array or (``data.stream``)
            a batched ``tf.data`` of the split read from storage.

    Returns:
        ``(stores {"train", "pool", ["variants"], ["val"], ["val_swap"]}, selected set
        with features as images, the folder)``.
    """
    clf, data = method.clf, method.ctx
    folder = tempfile.TemporaryDirectory(prefix="fast-features-", dir=cache_dir)
    shape = layer_activations(clf, np.zeros((1,) + tuple(clf.input_shape), np.uint8), layer=layer).shape[1:]

    def store(name, images):
        return feature_store(folder.name, name, clf, layer, images, shape=shape)

    # with data.stream the split is read from storage in position order, never as arrays
    train = (streamed_split_store(folder.name, clf, layer, data.dataset, shape=shape) if data.streaming
             else store("train", data.train.images))
    stores = {"train": train, "pool": store("pool", method.pool.images)}
    variants = getattr(method, "random_variants", None)
    if variants is not None:
        stores["variants"] = store("variants", variants.reshape((-1,) + variants.shape[2:]))
    for name, xy in (("val", val), ("val_swap", val_swap)):
        if xy is not None:
            stores[name] = store(name, xy[0])
    sel = data.selected
    feats_sel = dataclasses.replace(sel, images=layer_activations(clf, sel.images, layer=layer)) if len(sel) else sel
    return stores, feats_sel, folder
