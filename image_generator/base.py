"""The replacement-generator contract shared by every replacement strategy.

A generator fills the masked region of images with new content (thesis §4.2 method D,
§4.3 method E, CAIPI-style counterexamples)::

    gen = image_generator.registry.get("telea")
    out = gen.replace(images=x, masks=m, seed=0)            # x uint8 [N,H,W,C], m uint8 [N,H,W]
    assert (out[m == 0] == x[m == 0]).all()                  # outside the mask: unchanged, exactly

Masks follow the project convention (uint8 ``[N,H,W]``, 0 = keep, 255 = replace; any
nonzero value counts as "replace"). Subclasses implement ``_fill`` (a full candidate
image per input); ``replace`` validates the inputs and composites the candidate into
the masked region only, so the "outside the mask unchanged" guarantee is enforced in
one place for every strategy.

``variants`` draws several fills per original and checks each one differs from the
original inside the mask by a margin, resampling failures and reporting the ones that
never pass — the automated replacement for the thesis's inspection by eye (§4.2).
"""
from __future__ import annotations

import abc
import dataclasses

import numpy as np

from common.errors import UserError


def seed_for(*keys: int) -> int:
    """A 32-bit seed derived from several integers (stable across runs and platforms)."""
    return int(np.random.SeedSequence([int(k) & 0xFFFFFFFF for k in keys]).generate_state(1)[0])


def check_inputs(images, masks, donors=None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validates the arrays of ``Generator.replace``.

    Args:
        images: uint8 ``[N, H, W, C]``.
        masks: uint8 (or bool) ``[N, H, W]``; nonzero = replace.
        donors: optional uint8 ``[M, H, W, C]``.

    Returns:
        ``(images, masks as bool [N,H,W], donors)``.

    Raises:
        UserError naming the array and the shapes at fault.
    """
    images = np.asarray(images)
    masks = np.asarray(masks)
    if images.dtype != np.uint8 or images.ndim != 4:
        raise UserError(f"generator images must be uint8 [N,H,W,C], got {images.dtype} {images.shape}")
    if masks.dtype not in (np.uint8, np.bool_) or masks.ndim != 3:
        raise UserError(f"generator masks must be uint8 [N,H,W], got {masks.dtype} {masks.shape}")
    if masks.shape != images.shape[:3]:
        raise UserError(f"masks have shape {masks.shape} but the images are {images.shape} (expected {images.shape[:3]})")
    if donors is not None:
        donors = np.asarray(donors)
        if donors.dtype != np.uint8 or donors.ndim != 4 or donors.shape[1:] != images.shape[1:]:
            raise UserError(
                f"donor images must be uint8 [M,{','.join(map(str, images.shape[1:]))}], got {donors.dtype} {donors.shape}"
            )
    return images, masks > 0, donors


@dataclasses.dataclass(frozen=True)
class NoParams:
    """A generator without parameters."""


class Generator(abc.ABC):
    """Base class of every replacement generator.

    Attributes:
        name: registry name.
        stochastic: True when different seeds give different fills.
        needs_donors: True when ``replace`` requires ``donors`` (crop replacement).
        Params: the constructor parameters a config can give (a frozen dataclass).
    """

    name: str = "base"
    stochastic: bool = False
    needs_donors: bool = False
    Params: type = NoParams

    def replace(self, *, images, masks, seed: int, donors=None) -> np.ndarray:
        """Fills the masked region of each image.

        Args:
            images: uint8 ``[N, H, W, C]`` pixels.
            masks: uint8 ``[N, H, W]``, 255 (nonzero) = replace, 0 = keep.
            seed: the fill is a deterministic function of (inputs, seed).
            donors: uint8 ``[M, H, W, C]`` other training images (crop replacement).

        Returns:
            uint8 ``[N, H, W, C]``; pixels where the mask is 0 are exactly the input's.
        """
        images, hole, donors = check_inputs(images, masks, donors)
        if self.needs_donors and (donors is None or len(donors) == 0):
            raise UserError(f"generator '{self.name}' needs donor images (other training images); none were given")
        if len(images) == 0:
            return images.copy()
        fill = np.asarray(self._fill(images, hole, int(seed), donors))
        if fill.shape != images.shape:
            raise UserError(f"generator '{self.name}' produced shape {fill.shape}, expected {images.shape}")
        fill = np.clip(np.rint(fill), 0, 255).astype(np.uint8) if fill.dtype != np.uint8 else fill
        return np.where(hole[..., None], fill, images)

    @abc.abstractmethod
    def _fill(self, images: np.ndarray, hole: np.ndarray, seed: int, donors: np.ndarray | None) -> np.ndarray:
        """A full candidate image per input (only its masked pixels are used)."""

    def describe(self) -> dict:
        """``{"name", "params"}`` for result files."""
        return {"name": self.name, "params": {}}


# ----- measurements ------------------------------------------------------------------
def in_mask_diff(a, b, masks) -> np.ndarray:
    """Mean absolute difference inside the mask, per image, in pixel units [0, 255].

    Args:
        a, b: ``[N, H, W, C]`` images.
        masks: ``[N, H, W]``, nonzero = inside.

    Returns:
        float64 ``[N]``; NaN where a mask is empty.
    """
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    m = (np.asarray(masks) > 0)[..., None].astype(np.float64)
    area = m.sum(axis=(1, 2, 3)) * a.shape[-1]
    total = (np.abs(a - b) * m).sum(axis=(1, 2, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(area > 0, total / np.maximum(area, 1), np.nan)


def diversity(fills, masks) -> np.ndarray:
    """Mean pairwise in-mask difference between fills of the same original.

    Args:
        fills: ``[N, V, H, W, C]`` V fills per original (V >= 2).
        masks: ``[N, H, W]``.

    Returns:
        float64 ``[N]`` (pixel units); 0 for a deterministic generator.
    """
    fills = np.asarray(fills)
    n, v = fills.shape[:2]
    if v < 2:
        raise UserError(f"diversity needs at least 2 fills per image, got {v}")
    pairs = [in_mask_diff(fills[:, i], fills[:, j], masks) for i in range(v) for j in range(i + 1, v)]
    return np.mean(np.stack(pairs), axis=0)


@dataclasses.dataclass
class VariantsResult:
    """Result of :func:`variants`.

    Attributes:
        images: uint8 ``[N, V, H, W, C]`` fills (a failed slot keeps its best attempt).
        diffs: ``[N, V]`` in-mask mean abs difference to the original (pixel units).
        ok: bool ``[N, V]``: the slot passed ``diffs >= min_diff``.
        tries: ``[N, V]`` attempts used per slot.
        diversity: ``[N]`` mean pairwise in-mask difference between the V fills (NaN if V < 2).
        min_diff: the margin used.
    """

    images: np.ndarray
    diffs: np.ndarray
    ok: np.ndarray
    tries: np.ndarray
    diversity: np.ndarray
    min_diff: float

    @property
    def failures(self) -> list[tuple[int, int, float]]:
        """``(image position, variant, best diff)`` of every slot that never passed."""
        return [(int(i), int(j), float(self.diffs[i, j])) for i, j in zip(*np.nonzero(~self.ok))]

    def report(self) -> str:
        """One line per failed slot, or an all-passed summary."""
        if not self.failures:
            return (f"all {self.ok.size} fills differ from their original by >= {self.min_diff:g} inside the mask "
                    f"(min {np.nanmin(self.diffs) if self.diffs.size else float('nan'):.1f})")
        lines = [f"{len(self.failures)} of {self.ok.size} fills stayed within {self.min_diff:g} of the original "
                 f"inside the mask after {int(self.tries.max())} tries:"]
        lines += [f"  image {i} variant {j}: mean |diff| {d:.2f}" for i, j, d in self.failures]
        return "\n".join(lines)


def variants(generator: Generator, *, images, masks, n: int, seed: int, min_diff: float = 8.0,
             max_tries: int = 5, donors=None, on_failure: str = "raise") -> VariantsResult:
    """``n`` fills per original, each checked to differ from it inside the mask.

    Slot ``(i, j)`` is drawn with seed ``seed_for(seed, j, try)``; a slot whose in-mask
    mean absolute difference to the original is below ``min_diff`` is redrawn, up to
    ``max_tries`` draws. Slots that never pass are reported (never silently accepted).

    Args:
        generator: any registered generator.
        images: uint8 ``[N, H, W, C]``; masks: uint8 ``[N, H, W]`` (nonzero = replace).
        n: fills per original.
        seed: base seed (same seed -> same result).
        min_diff: margin in pixel units [0, 255].
        max_tries: draws per slot before giving up.
        donors: passed to the generator.
        on_failure: ``"raise"`` -> UserError listing the failed slots; ``"report"`` ->
            return them flagged in ``ok`` / ``failures``.

    Returns:
        ``VariantsResult``.
    """
    if on_failure not in ("raise", "report"):
        raise UserError(f"on_failure must be 'raise' or 'report', got {on_failure!r}")
    if n < 1 or max_tries < 1:
        raise UserError(f"variants needs n >= 1 and max_tries >= 1, got n={n}, max_tries={max_tries}")
    images, hole, donors = check_inputs(images, masks, donors)
    empty = ~hole.reshape(len(hole), -1).any(axis=1)
    if empty.any():
        raise UserError(f"mask of image {int(np.argmax(empty))} is empty: nothing to replace")
    N = len(images)
    out = np.repeat(images[:, None], n, axis=1)
    diffs = np.full((N, n), -1.0)
    tries = np.zeros((N, n), np.int64)
    for j in range(n):
        todo = np.arange(N)
        for t in range(max_tries):
            if len(todo) == 0:
                break
            fill = generator.replace(images=images[todo], masks=masks_u8(hole[todo]), seed=seed_for(seed, j, t),
                                     donors=donors)
            d = in_mask_diff(fill, images[todo], hole[todo])
            tries[todo, j] += 1
            better = d > diffs[todo, j]
            out[todo[better], j] = fill[better]
            diffs[todo[better], j] = d[better]
            todo = todo[diffs[todo, j] < min_diff]
    ok = diffs >= min_diff
    div = diversity(out, hole) if n >= 2 else np.full((N,), np.nan)
    result = VariantsResult(out, diffs, ok, tries, div, float(min_diff))
    if on_failure == "raise" and not ok.all():
        raise UserError(f"generator '{generator.name}': " + result.report().replace("\n", ";"))
    return result


def masks_u8(hole: np.ndarray) -> np.ndarray:
    """bool/0-1 masks -> uint8 {0, 255}."""
    return np.where(np.asarray(hole) > 0, 255, 0).astype(np.uint8)
