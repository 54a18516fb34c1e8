"""Probabilities and CAMs of the listed images, computed in the background and cached.

One worker thread runs ``Classifier.cams`` (the package's batched CAM call, all
classes at once, last-conv grid resolution) over chunks of the listed images; the
chunk holding the image on screen jumps the queue (``request``). The grid maps are
kept (``[N, h, w, C]`` float32: 3.9 kB per 72×72 image with 3 classes, so the whole
train split fits), and the map on screen is upsampled bilinearly (OpenCV,
half-pixel centres like ``tf.image.resize``) and normalised per map on demand, with
a small ``functools.lru_cache`` in front. Warm switches cost well under a millisecond
(``python -m select_tool.bench``).
"""
from __future__ import annotations

import collections
import functools
import threading
from typing import Callable

import cv2
import numpy as np

from classification_models.cam import normalize_per_map


def auto_chunk(hw: tuple[int, int], pixels: int = 500_000) -> int:
    """Images per batch: about ``pixels`` input pixels, between 1 and 64."""
    return int(min(64, max(1, pixels // max(1, hw[0] * hw[1]))))


class CamCache:
    """Background, chunked CAM/probability computation for ``images``.

    Args:
        classifier: a ``classification_models.classifier.Classifier``.
        images: ``uint8 [N, H, W, C]``, in the order of the tool's index list.
        chunk: images per ``Classifier.cams`` call (also its batch size); default
            ``auto_chunk``: 64 small images, fewer large ones, so that the first CAM
            appears soon (at 224×224 after 9 images, at 1024×1024 after 1, not 64).
        start: start the worker thread now.
        on_progress: optional ``(done, total) -> None``, called from the worker thread.
    """

    def __init__(self, classifier, images: np.ndarray, *, chunk: int | None = None, start: bool = True,
                 on_progress: Callable[[int, int], None] | None = None, lru: int = 64):
        self.classifier = classifier
        self.images = images
        self.n = int(len(images))
        self.hw = tuple(int(v) for v in images.shape[1:3])
        self.chunk = int(chunk) if chunk else auto_chunk(self.hw)
        self.num_classes = int(classifier.num_classes)
        self.probs = np.zeros((self.n, self.num_classes), np.float32)
        self.grid: np.ndarray | None = None
        self._done = np.zeros((self.n,), bool)
        self._pending = collections.deque(range(0, self.n, self.chunk))
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._finished = threading.Event()
        self._stop = False
        self.error: BaseException | None = None
        self.on_progress = on_progress
        # a computed image's grid never changes, so its rendered maps can be cached
        self._render_cached = functools.lru_cache(maxsize=int(lru))(self._render)
        self._thread = threading.Thread(target=self._run, name="cam-cache", daemon=True)
        if start:
            self._thread.start()

    # ----- worker ---------------------------------------------------------------
    def _run(self) -> None:
        try:
            while True:
                with self._lock:
                    if self._stop or not self._pending:
                        break
                    start = self._pending.popleft()
                    if self._done[start]:
                        continue
                self._compute(start)
        except BaseException as exc:  # surfaced to the GUI via .error
            self.error = exc
        finally:
            self._finished.set()

    def _compute(self, start: int) -> None:
        stop = min(start + self.chunk, self.n)
        batch = self.classifier.cams(self.images[start:stop], classes=None, upsample=False, batch_size=self.chunk)
        with self._lock:
            if self.grid is None:
                self.grid = np.zeros((self.n,) + batch.cams.shape[1:], np.float32)
            self.grid[start:stop] = batch.cams
            self.probs[start:stop] = batch.probs
            self._done[start:stop] = True
            done = int(self._done.sum())
        if self.on_progress is not None:
            self.on_progress(done, self.n)

    def compute_now(self, pos: int) -> None:
        """Computes ``pos``'s chunk in the calling thread (used when no worker runs)."""
        if not self._done[pos]:
            self._compute((pos // self.chunk) * self.chunk)

    def request(self, pos: int) -> None:
        """Moves the chunk of image ``pos`` to the front of the queue."""
        start = (int(pos) // self.chunk) * self.chunk
        with self._lock:
            if self._done[start]:
                return
            try:
                self._pending.remove(start)
            except ValueError:
                return  # being computed right now
            self._pending.appendleft(start)

    def stop(self) -> None:
        with self._lock:
            self._stop = True

    # ----- queries --------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return bool(self._done.all())

    @property
    def progress(self) -> tuple[int, int]:
        return int(self._done.sum()), self.n

    def wait(self, timeout: float | None = None) -> bool:
        """Blocks until every image is computed (or the worker failed / timed out)."""
        if not self._thread.is_alive() and not self._finished.is_set():
            self._run()  # not started: compute synchronously
        self._finished.wait(timeout)
        if self.error is not None:
            raise self.error
        return self.ready

    def has(self, pos: int) -> bool:
        return bool(self._done[pos])

    def probs_of(self, pos: int) -> np.ndarray | None:
        """``[C]`` probabilities of image ``pos``, or None while not computed."""
        return self.probs[pos] if self._done[pos] else None

    def cam(self, pos: int, cls: int, *, normalized: bool = True) -> np.ndarray | None:
        """``[H, W]`` CAM of class ``cls`` for image ``pos`` at image resolution.

        ``normalized``: scaled to [0, 1] by the map's own maximum (negatives 0), as the
        thesis colours CAMs; else raw values. None while not computed.
        """
        if not self._done[pos]:
            return None
        return self._render_cached(int(pos), int(cls), "own" if normalized else "raw")

    def _render(self, pos: int, cls: int, mode: str) -> np.ndarray:
        """The map of a computed image at image resolution: ``raw``, scaled by its ``own``
        maximum, or by the ``common`` maximum over the image's class maps."""
        if mode == "common":
            raw = self._render_cached(pos, cls, "raw")
            scale = self._common_scale(pos, raw)
            return np.clip(raw / scale, 0.0, 1.0) if scale > 0 else np.zeros_like(raw)
        h, w = self.hw
        m = cv2.resize(self.grid[pos, :, :, cls], (w, h), interpolation=cv2.INTER_LINEAR)
        return normalize_per_map(m) if mode == "own" else m

    def _common_scale(self, pos: int, raw: np.ndarray) -> float:
        """The largest positive value over image ``pos``'s class maps (0 when none)."""
        return max(float(self.grid[pos].max()), float(raw.max()), 0.0)

    def scaled(self, pos: int, cls: int, *, common: bool = False) -> tuple[np.ndarray | None, float, float]:
        """The CAM as shown: ``(map in [0, 1] or None, scale, the map's own maximum)``.

        ``common=False``: scaled by the map's own maximum (the thesis's colouring; a
        weak map looks as hot as a strong one). ``common=True``: every class of this
        image shares one scale, the largest positive value over all its class maps, so
        a weak map looks weak. Negatives are shown as 0 either way.
        """
        if not self._done[pos]:
            return None, 0.0, 0.0
        raw = self.cam(pos, cls, normalized=False)
        own = float(raw.max())
        if not common:
            return self.cam(pos, cls, normalized=True), max(own, 0.0), own
        return self._render_cached(int(pos), int(cls), "common"), self._common_scale(pos, raw), own
