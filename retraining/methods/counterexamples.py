"""Counterexamples (CAIPI-style, Teso & Kersting 2019): the masked region filled with
uniform noise (generator ``noise``), keeping the label."""
from retraining.methods.base import REGISTRY
from retraining.methods.replacement import ReplacementMethod


@REGISTRY.register
class Counterexamples(ReplacementMethod):
    name = "counterexamples"
    letter = ""
    description = "masked region <- uniform noise"
    generator = "noise"
