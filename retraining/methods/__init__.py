"""The registry of retraining methods (name -> class, ``common.registry``): every method
module registers its classes with ``@REGISTRY.register`` when imported, and this package
imports them all. Unknown names fail listing the valid ones."""
from __future__ import annotations

# importing a method's module registers it: one name here per method
from retraining.methods import (continued, counterexamples, crop_replace, filter_penalty,  # noqa: F401
                                inpaint_replace, misclassified, pas, pasa, rrr, rrr_gradcam,
                                selective_dropout, swap)
from retraining.methods.base import REGISTRY, Method

__all__ = ["REGISTRY", "Method", "get_method"]


def get_method(name: str, params: dict | None = None, label: str | None = None) -> Method:
    """An instance of method ``name`` with validated ``params``."""
    return REGISTRY.get(name)(params, label=label)
