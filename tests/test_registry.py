"""The one registry helper (common.registry) and the four registries built on it."""
import pytest

from common.errors import UserError
from common.registry import Registry


def test_register_lazy_get_and_messages():
    reg = Registry("widget")

    @reg.register
    class Knob:
        name = "knob"

    reg.register(dict, name="table")
    reg.lazy("path", "pathlib:PurePosixPath")
    assert reg.names() == ["knob", "path", "table"] == list(reg) and len(reg) == 3
    assert "path" in reg and "nope" not in reg
    assert reg.get("knob") is Knob and reg["table"] is dict
    import pathlib

    assert reg.get("path") is pathlib.PurePosixPath  # imported on first use
    with pytest.raises(UserError, match=r"^unknown widget 'nope' \(valid widgets: knob, path, table\)$"):
        reg.get("nope")
    with pytest.raises(ValueError, match="'knob' is registered twice"):
        reg.register(Knob)
    with pytest.raises(ValueError, match="has no name"):
        reg.register(object())


def test_project_registries_share_the_helper():
    from classification_models.models import PRESETS
    from datasets.registry import REGISTRY as DATASETS
    from retraining.methods import REGISTRY as METHODS
    from image_generator.registry import GENERATORS

    for reg, kind in ((PRESETS, "model"), (DATASETS, "data set"), (METHODS, "method"), (GENERATORS, "generator")):
        assert isinstance(reg, Registry) and reg.kind == kind and len(reg.names()) >= 3
        with pytest.raises(UserError, match=f"^unknown {kind} 'zzz' \\(valid {kind}s: "):
            reg.get("zzz")
    assert "swap" in METHODS and "vgg_gap_small" in PRESETS and "image_folder" in DATASETS and "telea" in GENERATORS


def test_hooks_are_abstract():
    from datasets.base import Dataset
    from retraining.methods.base import Method
    from image_generator.base import Generator

    for cls, hook in ((Dataset, "_load_split"), (Method, "loss"), (Generator, "_fill")):
        assert hook in cls.__abstractmethods__
        with pytest.raises(TypeError, match="abstract"):
            type("Incomplete", (cls,), {})()
