"""The cue-family contract and its registry: how the shortcut suite draws a class-coded
spurious cue into an image (``datasets.suite_render`` calls it for every image).

A cue family is one module in ``datasets/cues/`` holding one class registered by name::

    @CUE_FAMILIES.register
    class Patch(CueFamily):
        name = "patch"                  # what ``SuiteParams.cue`` and ``--cue`` say
        min_size = 32                   # smallest image side it fits in (px)

        def draw(self, scene):          # -> (image uint8 [S, S, C], mask uint8 [S, S])
            ...
        def describe(self, *, class_names, channels, size):   # -> the ``cue`` entry of suite.json
            ...

plus its import in ``datasets/cues/__init__.py`` (the registration line). Two optional
hooks tell the renderer where the object may go: ``free_area(size)`` (the rectangle the
object's pixels stay inside; default: the whole image but a 1 px border) and
``reserved(size, corner)`` (pixels the object must not touch; default: none).

The rules every family keeps (``tests/test_cue_families.py`` checks them for every
registered family):

* ``draw`` returns ``scene.clean`` with the cue drawn in and the mask of exactly the
  pixels it changed (255 = changed, 0 = untouched);
* the cue class enters only through what the cue looks like: with another
  ``scene.cue_class`` the mask and every pixel outside it stay the same, and every class
  looks different;
* every random draw comes from ``scene.rng`` (the image's cue-layout stream) or
  ``scene.corner``, so a set's test images and layout do not depend on the correlations;
* the cue never covers the object's pixels (``scene.object_alpha > 0``).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from common.registry import Registry

#: name -> cue family class; each module of ``datasets.cues`` registers its class
CUE_FAMILIES = Registry("cue family", "cue families")

GAP = 2                         # px between the object and the cue
#: the cue class's shade (gray) and colour (RGB), for the families coded by colour
CUE_SHADES = (100, 145, 190, 235)
CUE_COLOURS = ((230, 30, 30), (30, 200, 40), (40, 90, 255), (250, 220, 0))


@dataclasses.dataclass(frozen=True)
class Scene:
    """One image before its cue is drawn (what ``CueFamily.draw`` gets).

    Attributes:
        size: image side S (px); channels: C (1 = gray, 3 = RGB).
        clean: uint8 ``[S, S, C]``, the finished image without the cue.
        background: float32 ``[S, S, C]``, the background the object was drawn on.
        object_alpha: float32 ``[S, S]`` in [0, 1], the placed object (0 where it is not).
        cue_class: the class id the cue encodes (0..3).
        corner: a corner drawn for every image (0 top-left, 1 top-right, 2 bottom-left,
            3 bottom-right), the same one ``reserved`` got.
        rng: the image's cue-layout stream, for any further random choice of the cue.
    """

    size: int
    channels: int
    clean: np.ndarray
    background: np.ndarray
    object_alpha: np.ndarray
    cue_class: int
    corner: int
    rng: np.random.Generator


class CueFamily:
    """Base class of a cue family (see the module docstring for the contract)."""

    name: str = ""
    min_size: int = 32

    def free_area(self, size: int) -> tuple[int, int, int, int]:
        """The rectangle ``(x0, y0, x1, y1)`` the object's pixels stay inside."""
        return (1, 1, size - 1, size - 1)

    def reserved(self, size: int, corner: int) -> np.ndarray | None:
        """bool ``[S, S]``: pixels the object's ink must avoid (None = none)."""
        return None

    def draw(self, scene: Scene) -> tuple[np.ndarray, np.ndarray]:
        """``(image uint8 [S, S, C], mask uint8 [S, S])``: the cue drawn into ``scene.clean``."""
        raise NotImplementedError(f"cue family '{self.name}' does not implement draw")

    def describe(self, *, class_names: tuple[str, ...], channels: int, size: int) -> dict:
        """What each class's cue looks like and where it is (``suite.json``'s ``cue``, without ``kind``)."""
        raise NotImplementedError(f"cue family '{self.name}' does not implement describe")


def cue_family(name: str) -> CueFamily:
    """The family registered as ``name`` (a UserError listing the valid names if unknown)."""
    return CUE_FAMILIES.get(name)()


def cue_value(channels: int, cls: int) -> np.ndarray:
    """uint8 ``[C]``: the shade (gray) or colour (RGB) of cue class ``cls``."""
    return np.array([CUE_SHADES[cls]] if channels == 1 else CUE_COLOURS[cls], np.uint8)


def colour_code(class_names: tuple[str, ...], channels: int) -> dict:
    """Class name -> its shade (gray) or ``[r, g, b]`` (RGB), for ``describe``."""
    return {c: (CUE_SHADES[k] if channels == 1 else list(CUE_COLOURS[k])) for k, c in enumerate(class_names)}


def reserve_box(size: int, box, *, grow: bool = True) -> np.ndarray:
    """bool ``[size, size]``: the cue's box ``(x0, y0, x1, y1)`` widened by ``GAP`` (on the
    far sides too unless ``grow`` is false: a box at the image's edge), which the object keeps clear of."""
    x0, y0, x1, y1 = box
    out = np.zeros((size, size), bool)
    far = GAP if grow else 0
    out[max(0, y0 - GAP): y1 + far, max(0, x0 - GAP): x1 + far] = True
    return out
