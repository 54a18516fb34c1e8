"""Every name that becomes a path is checked by one rule (``common.paths.check_path_name``):
no separator, no '..', no absolute path, no hidden name. The walk below visits every
string field of the configs, so a new field has to say whether it reaches the file system."""
import dataclasses
import typing

import pytest

from common.config import from_dict
from common.errors import UserError
from common.paths import check_path_name, file_stem
from retraining.config import RetrainConfig
from retraining.train_config import TrainConfig
from select_tool.export.names import legacy_mask_filename, mask_filename

#: string fields that are the user's own paths (anywhere the user chooses)
USER_PATHS = {"selection", "heldout_selection", "output_dir", "data_root", "fast.cache_dir"}
#: string fields checked against a registry or a model's layers (never a path of their own)
LOOKED_UP = {"methods.name", "dataset.name", "model.name", "freeze.up_to", "propagation.layer", "fast.freeze_up_to"}
BAD = ["../../evil", "/etc/evil", "a/b", "a\\b", "..", ".", ".hidden", "", "a b"]

RETRAIN = {"name": "ok", "selection": "sel.json", "methods": [{"name": "continued", "label": "fine"}]}
TRAIN = {"name": "ok", "dataset": {"name": "symbols"}, "model": {"name": "small"}}


def string_fields(cls, prefix=""):
    """``(field path, metadata)`` of every string field under dataclass ``cls``."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        kinds = [tp, *typing.get_args(tp)]
        kinds += [a for k in kinds for a in typing.get_args(k)]
        for k in dict.fromkeys(kinds):
            if dataclasses.is_dataclass(k):
                yield from string_fields(k, f"{prefix}{f.name}.")
        if str in kinds and typing.get_origin(tp) is not dict:
            yield f"{prefix}{f.name}", dict(f.metadata)


def _set(data, path, value):
    data = {k: (list(v) if isinstance(v, list) else v) for k, v in data.items()}
    head, _, rest = path.partition(".")
    if not rest:
        return {**data, head: value}
    inner = data[head]
    if isinstance(inner, list):
        return {**data, head: [_set(dict(inner[0]), rest, value)]}
    return {**data, head: _set(dict(inner), rest, value)}


@pytest.mark.parametrize("cls, base", [(RetrainConfig, RETRAIN), (TrainConfig, TRAIN)], ids=["retrain", "train"])
def test_every_string_field_is_a_checked_name_a_user_path_a_choice_or_a_lookup(cls, base):
    checked = []
    for path, meta in string_fields(cls):
        if meta.get("path_name"):
            checked.append(path)
        else:
            assert path in USER_PATHS | LOOKED_UP or "choices" in meta, f"{cls.__name__}.{path}: classify this field"
    assert checked == {"retrain": ["name", "methods.label"], "train": ["name"]}[
        "retrain" if cls is RetrainConfig else "train"]
    for path in checked:
        from_dict(cls, _set(base, path, "good_name-1.2"), source="c.json")  # a plain name passes
        shown = {"methods.label": "methods[0].label"}.get(path, path)
        for bad in BAD:
            with pytest.raises(UserError) as info:
                from_dict(cls, _set(base, path, bad), source="c.json")
            assert str(info.value).startswith(f"c.json: {shown} must be a single file name")


def test_the_rule_and_the_file_names_of_keys():
    assert check_path_name("run_1.b-2", "x") == "run_1.b-2"
    for bad in BAD:
        with pytest.raises(UserError, match="^x must be a single file name"):
            check_path_name(bad, "x")
    # image indices may hold anything: their file names are one component, distinct per key
    keys = ["train/cat/img_01", "../../evil", "..", ".", ".x", "a b", "a%2Fb"]
    stems = [file_stem(k) for k in keys]
    assert stems[:2] == ["train%2Fcat%2Fimg_01", "%2E.%2F..%2Fevil"] and stems[2:5] == ["%2E.", "%2E", "%2Ex"]
    assert len(set(stems)) == len(keys) and all("/" not in s and s not in (".", "..") for s in stems)
    assert legacy_mask_filename("../../evil") == "%2E.%2F..%2Fevil.png"
    assert mask_filename("../../evil") == "%2E./%2E./evil.png"  # the index's folders kept, each part a stem
    assert all(part not in ("", ".", "..") for part in mask_filename("../../evil").split("/"))
