"""The one registry of replacement generators (method D / E / counterexamples).

    from image_generator.registry import GENERATORS, get
    gen = get("crop_replace")                       # or get("learned", model_path="inpainter.keras")
    out = gen.replace(images=x, masks=m, seed=0, donors=train_images)

``GENERATORS`` (a ``common.registry.Registry``) holds each name as ``"module:Class"``
so that the TensorFlow-backed generators are imported only when asked for. An unknown name or parameter is a
UserError listing the valid ones.
"""
from __future__ import annotations

import inspect

from common.errors import UserError
from common.registry import Registry
from image_generator.base import Generator

GENERATORS = Registry("generator")
for _name, _target in (("crop_replace", "image_generator.crop:CropReplace"),
                       ("telea", "image_generator.opencv_inpaint:TeleaInpaint"),
                       ("ns", "image_generator.opencv_inpaint:NSInpaint"),
                       ("noise", "image_generator.noise:NoiseFill"),
                       ("learned", "image_generator.learned:LearnedInpainter"),
                       ("user_model", "image_generator.user_model:UserModelGenerator")):
    GENERATORS.lazy(_name, _target)


def generator_class(name: str) -> type[Generator]:
    """The class registered as ``name`` (UserError listing the valid names if unknown)."""
    return GENERATORS.get(name)


def param_names(name: str) -> list[str]:
    """Constructor parameters of generator ``name``."""
    sig = inspect.signature(generator_class(name).__init__)
    return [p for p in sig.parameters if p != "self"]


def get(name: str, **params) -> Generator:
    """An instance of generator ``name`` with ``params`` (unknown keys fail with the valid list)."""
    cls = generator_class(name)
    valid = param_names(name)
    for key in params:
        if key not in valid:
            raise UserError(
                f"unknown parameter '{key}' for generator '{name}' (valid: {', '.join(valid) if valid else 'none'})"
            )
    return cls(**params)


def from_spec(spec) -> Generator:
    """``"telea"`` or ``{"name": "learned", "params": {"model_path": ...}}`` -> generator."""
    if isinstance(spec, str):
        return get(spec)
    if not isinstance(spec, dict) or "name" not in spec or set(spec) - {"name", "params"}:
        raise UserError(f"generator spec must be a name or {{\"name\", \"params\"}}, got {spec!r}")
    params = spec.get("params") or {}
    if not isinstance(params, dict):
        raise UserError(f"generator '{spec['name']}': params must be an object, got {params!r}")
    return get(spec["name"], **params)
