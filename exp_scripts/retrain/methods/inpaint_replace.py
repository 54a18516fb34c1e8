"""D — generative replacement (thesis §4.2): the masked region inpainted by a generator
from ``image_generator.registry`` (OpenCV ``telea``/``ns`` now; ``learned``/``user_model``
inpainters plug in by name with ``generator_params``)."""
from exp_scripts.retrain.methods.replacement import ReplacementMethod


class InpaintReplace(ReplacementMethod):
    name = "inpaint_replace"
    letter = "D"
    description = "masked region inpainted (generator by name)"
    DEFAULTS = {**ReplacementMethod.DEFAULTS, "generator": "telea", "generator_params": {}}

    def generator_spec(self):
        return self.params["generator"], dict(self.params["generator_params"])
