"""The registry of retraining methods (name -> class, ``common.registry``). Unknown names
fail listing the valid ones."""
from __future__ import annotations

from common.registry import Registry
from exp_scripts.retrain.methods.base import Method
from exp_scripts.retrain.methods.continued import Continued
from exp_scripts.retrain.methods.counterexamples import Counterexamples
from exp_scripts.retrain.methods.crop_replace import CropReplace
from exp_scripts.retrain.methods.inpaint_replace import InpaintReplace
from exp_scripts.retrain.methods.misclassified import Misclassified
from exp_scripts.retrain.methods.pas import PAS
from exp_scripts.retrain.methods.pasa import PASA
from exp_scripts.retrain.methods.rrr import RRR
from exp_scripts.retrain.methods.rrr_gradcam import RRRGradCAM
from exp_scripts.retrain.methods.selective_dropout import SelectiveDropout
from exp_scripts.retrain.methods.swap import FilterPenalty, Swap

REGISTRY = Registry("method")
for _cls in (Continued, Misclassified, CropReplace, InpaintReplace, SelectiveDropout, PAS, PASA, RRR,
             RRRGradCAM, Counterexamples, Swap, FilterPenalty):
    REGISTRY.register(_cls)


def get_method(name: str, params: dict | None = None, label: str | None = None) -> Method:
    """An instance of method ``name`` with validated ``params``."""
    return REGISTRY.get(name)(params, label=label)
