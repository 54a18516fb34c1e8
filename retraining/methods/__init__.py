"""The registry of retraining methods (name -> class, ``common.registry``): every method
module registers its classes with ``@REGISTRY.register`` when imported, and this package
imports them all. Unknown names fail listing the valid ones."""
from __future__ import annotations

from retraining.methods import (continued, counterexamples, crop_replace, filter_penalty, inpaint_replace,
                                misclassified, pas, pasa, rrr, rrr_gradcam, selective_dropout, swap)
from retraining.methods.base import REGISTRY, Method

#: the modules whose import registers the methods
MODULES = (continued, counterexamples, crop_replace, filter_penalty, inpaint_replace, misclassified, pas, pasa, rrr,
           rrr_gradcam, selective_dropout, swap)

__all__ = ["REGISTRY", "Method", "get_method"]


def get_method(name: str, params: dict | None = None, label: str | None = None) -> Method:
    """An instance of method ``name`` with validated ``params``."""
    return REGISTRY.get(name)(params, label=label)
