"""The one registry of replacement generators (method D / E / counterexamples).

    from image_generator.registry import GENERATORS, get
    gen = get("crop_replace")                       # or get("learned", model_path="inpainter.keras")
    out = gen.replace(images=x, masks=m, seed=0, donors=train_images)

``GENERATORS`` (a ``common.registry.Registry``) holds each name as ``"module:Class"``
so that the TensorFlow-backed generators are imported only when asked for. An unknown name or parameter is a
UserError listing the valid ones. Each generator class declares its parameters as a frozen
dataclass ``Params`` (the keyword arguments of its constructor that a config can give).
"""
from __future__ import annotations

import dataclasses
from typing import Any

from common.config import from_dict
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
    """The parameters a config can give generator ``name`` (its ``Params`` fields)."""
    return [f.name for f in dataclasses.fields(generator_class(name).Params)]


def get(name: str, **params) -> Generator:
    """An instance of generator ``name`` with ``params``, read into its ``Params`` by
    ``common.config.from_dict`` (an unknown key, a wrong type or a value out of range
    fails naming the generator and the key)."""
    cls = generator_class(name)
    resolved = from_dict(cls.Params, params, source=f"generator '{name}' params")
    return cls(**{f.name: getattr(resolved, f.name) for f in dataclasses.fields(resolved)})


@dataclasses.dataclass(frozen=True)
class GeneratorSpec:
    """A generator named in a config: ``name`` and its ``params``."""

    name: str
    params: dict[str, Any] = dataclasses.field(default_factory=dict)


def from_spec(spec) -> Generator:
    """``"telea"`` or ``{"name": "learned", "params": {"model_path": ...}}`` -> generator."""
    if isinstance(spec, str):
        return get(spec)
    if isinstance(spec, dict) and spec.get("params", {}) is None:  # "params": null means no parameters
        spec = {**spec, "params": {}}
    parsed = from_dict(GeneratorSpec, spec, source="generator spec")
    return get(parsed.name, **parsed.params)
