"""D — generative replacement (thesis §4.2): the masked region inpainted by a generator
from ``image_generator.registry`` (OpenCV ``telea``/``ns`` now; ``learned``/``user_model``
inpainters plug in by name with ``generator_params``)."""
import dataclasses
from typing import Any

from retraining.methods.base import REGISTRY
from retraining.methods.replacement import ReplacementMethod, ReplacementParams


@dataclasses.dataclass(frozen=True)
class InpaintParams(ReplacementParams):
    """``generator``: a name of ``image_generator.registry``; ``generator_params``: its
    parameters (checked by the generator)."""

    #: the replacement generator (see `generator_params` below)
    generator: str = "telea"
    #: the generator's parameters
    generator_params: dict[str, Any] = dataclasses.field(default_factory=dict)


@REGISTRY.register
class InpaintReplace(ReplacementMethod):
    name = "inpaint_replace"
    letter = "D"
    description = "masked region inpainted (generator by name)"
    Params = InpaintParams

    def generator_spec(self):
        return self.params.generator, dict(self.params.generator_params)
