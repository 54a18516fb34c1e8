"""docs/config_reference.md is generated from the config dataclasses and kept current."""
from __future__ import annotations

import dataclasses
import typing

import pytest

from common.errors import UserError
from exp_scripts import config_reference as ref
from retraining.config import RetrainConfig, StopSpec
from retraining.methods import REGISTRY as METHODS
from retraining.train_config import TrainConfig


def _keys(cls, prefix=""):
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        yield key
        for sub in ref.nested(hints[f.name]):
            origin = typing.get_origin(hints[f.name])
            yield from _keys(sub, f"{key}{'[]' if origin in (list, tuple) else ''}.")


def test_the_reference_in_docs_is_current():
    text = ref.render()
    assert ref.OUT.read_text(encoding="utf-8") == text, (
        f"{ref.OUT} is out of date: run python -m exp_scripts.config_reference")


def test_every_key_is_in_the_reference():
    text = ref.render()
    keys = [*_keys(RetrainConfig), *_keys(TrainConfig)]
    keys += [f"methods[].params.{f.name}" for name in METHODS for f in dataclasses.fields(METHODS.get(name).Params)]
    assert len(keys) > 100 and "stopping.start_from" in keys and "methods[].params.pasa" in keys
    missing = [k for k in keys if f"| `{k}` |" not in text]
    assert missing == []
    assert "| `stopping.patience` | integer | ≥ 1 | `200` | iterations without an improvement" in text


def test_meanings_come_from_the_comment_above_each_field():
    docs = ref.field_docs(StopSpec)
    assert sorted(docs) == sorted(f.name for f in dataclasses.fields(StopSpec))
    assert docs["start_from"] == "the run never stops before this iteration"
    # inherited fields keep their comment (MaskParams.mask_variant)
    assert ref.field_docs(METHODS.get("pasa").Params)["mask_variant"].startswith("feedback-quality control")


@dataclasses.dataclass(frozen=True)
class _Undocumented:
    #: documented
    a: int = dataclasses.field(default=1, metadata={"min": 0, "max": 3})
    b: str = "x"


def test_a_field_without_a_comment_stops_the_generation():
    with pytest.raises(UserError, match=r"_Undocumented\.b has no '#:' comment.*python -m exp_scripts.config_reference"):
        ref.table(_Undocumented, "")


def test_types_bounds_and_defaults_are_rendered():
    assert ref.type_text(typing.Optional[list[int]]) == "list of integer or null"
    assert ref.type_text(dict[str, typing.Any]) == "object"
    assert ref.bounds_text({"min": 0, "max": 3}) == "[0, 3]"
    assert ref.bounds_text({"gt": 0.0}) == "> 0.0"
    assert ref.bounds_text({"choices": ("b", "a")}) == "`a`, `b`"
    fields = {f.name: f for f in dataclasses.fields(RetrainConfig)}
    assert ref.default_text(fields["name"]) == "required"
    assert ref.default_text(fields["iterations"]) == "`1000`"
    assert ref.default_text(fields["stopping"]) == "the defaults below"


def test_check_fails_on_a_stale_file(tmp_path):
    stale = tmp_path / "ref.md"
    stale.write_text("old\n", encoding="utf-8")
    assert ref.main(["--check", "--out", str(stale), "-q"]) == 1
    assert ref.main(["--out", str(stale), "-q"]) == 0
    assert ref.main(["--check", "--out", str(stale), "-q"]) == 0
    assert stale.read_text(encoding="utf-8") == ref.OUT.read_text(encoding="utf-8")
