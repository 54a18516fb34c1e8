"""E — random-crop replacement (thesis §4.3): the masked region ← the same region of a
random other training image (generator ``crop_replace``)."""
from retraining.methods.base import REGISTRY
from retraining.methods.replacement import ReplacementMethod


@REGISTRY.register
class CropReplace(ReplacementMethod):
    name = "crop_replace"
    letter = "E"
    description = "masked region <- same region of a random training image"
    generator = "crop_replace"
