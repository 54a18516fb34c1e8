"""Frozen dataclass configs loaded from JSON with strict validation.

Unknown keys, missing required keys, wrong types and out-of-range values fail with
the field path and the offending value, e.g.::

    config.json: train.epochs must be an integer >= 1, got -3

Declare limits with ``field(metadata=...)``::

    @dataclasses.dataclass(frozen=True)
    class Train:
        epochs: int = field(default=10, metadata={"min": 1})
        optimizer: str = field(default="adam", metadata={"choices": ("adam", "sgd")})
        name: str = field(metadata=PATH_NAME_FIELD)   # becomes a file name: common.paths rule

Supported annotations: bool, int, float, str, Optional[...], list[...], tuple[...],
dict[str, ...], nested dataclasses, ``typing.Any``.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from common.errors import UserError
from common.io import read_json
from common.paths import check_path_name

T = TypeVar("T")


def _type_name(tp: Any) -> str:
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    if tp is bool:
        return "true or false"
    if dataclasses.is_dataclass(tp):
        return "an object"
    origin = typing.get_origin(tp)
    if origin in (list, tuple):
        return "a list"
    if origin is dict:
        return "an object"
    return getattr(tp, "__name__", str(tp))


def _fail(source: str, path: str, message: str, value: Any) -> UserError:
    shown = repr(value) if not isinstance(value, (dict, list)) else _short(value)
    return UserError(f"{source}: {path} {message}, got {shown}")


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _convert(tp: Any, value: Any, path: str, source: str, meta: dict) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        if value is None:
            if type(None) in args:
                return None
            raise _fail(source, path, "must not be null", value)
        errors = []
        for candidate in non_none:
            try:
                return _convert(candidate, value, path, source, meta)
            except UserError as exc:
                errors.append(exc)
        raise errors[0]
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise _fail(source, path, "must be an object", value)
        return _from_dict(tp, value, path, source)
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise _fail(source, path, "must be a list", value)
        item_tp = args[0] if args else Any
        items = [_convert(item_tp, v, f"{path}[{i}]", source, {}) for i, v in enumerate(value)]
        if "min_len" in meta and len(items) < meta["min_len"]:
            raise _fail(source, path, f"must have at least {meta['min_len']} item(s)", value)
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise _fail(source, path, "must be an object", value)
        val_tp = args[1] if len(args) == 2 else Any
        return {str(k): _convert(val_tp, v, f"{path}.{k}", source, {}) for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise _fail(source, path, "must be true or false", value)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(source, path, f"must be {_range_text(int, meta)}", value)
        _check_range(value, path, source, meta, int)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(source, path, f"must be {_range_text(float, meta)}", value)
        value = float(value)
        if not math.isfinite(value):  # JSON readers accept NaN and Infinity
            raise _fail(source, path, "must be a finite number", value)
        _check_range(value, path, source, meta, float)
        return value
    if tp is str:
        if not isinstance(value, str):
            raise _fail(source, path, "must be a string", value)
        choices = meta.get("choices")
        if choices is not None and value not in choices:
            raise _fail(source, path, f"must be one of {sorted(choices)}", value)
        if meta.get("path_name"):
            check_path_name(value, f"{source}: {path}")
        return value
    raise TypeError(f"unsupported config annotation {tp!r} at {path}")


def _range_text(tp: type, meta: dict) -> str:
    text = _type_name(tp)
    if "min" in meta and "max" in meta:
        return f"{text} in [{meta['min']}, {meta['max']}]"
    if "min" in meta:
        return f"{text} >= {meta['min']}"
    if "gt" in meta:
        return f"{text} > {meta['gt']}"
    if "max" in meta:
        return f"{text} <= {meta['max']}"
    return text


def _check_range(value: float, path: str, source: str, meta: dict, tp: type) -> None:
    bad = ("min" in meta and value < meta["min"]) or ("max" in meta and value > meta["max"]) or (
        "gt" in meta and value <= meta["gt"]
    )
    if bad:
        raise _fail(source, path, f"must be {_range_text(tp, meta)}", value)


def _from_dict(cls: type[T], data: dict, path: str, source: str) -> T:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f"{path}." if path else ""
        valid = f"valid keys: {', '.join(sorted(fields))}" if fields else "it takes no keys"
        raise UserError(f"{source}: unknown key '{where}{unknown[0]}' ({valid})")
    kwargs = {}
    for name, f in fields.items():
        sub = f"{path}.{name}" if path else name
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], sub, source, dict(f.metadata))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise UserError(f"{source}: missing required key '{sub}'")
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if callable(validate):
        validate(source)
    return obj


def from_dict(cls: type[T], data: Any, source: str = "config") -> T:
    """Builds dataclass ``cls`` from ``data``, strictly. ``source`` names the file."""
    if not isinstance(data, dict):
        raise UserError(f"{source}: the top level must be a JSON object, got {type(data).__name__}")
    return _from_dict(cls, data, "", source)


#: the project's other JSON files a config path may name by mistake: (test on the data, what it is)
OTHER_FILES = (
    (lambda d: d.get("kind") == "train_result", "a train result (written by exp_scripts.do_interactive_exp)"),
    (lambda d: "selection" in d and "methods" in d, "a retraining config (for python -m exp_scripts.exp_backprops)"),
    (lambda d: "dataset" in d and "train" in d, "a train config (for python -m exp_scripts.do_interactive_exp)"),
    (lambda d: "items" in d and "train_result" in d, "a selection (a retraining config names it in \"selection\")"),
)


def load_config(cls: type[T], path: str | os.PathLike) -> T:
    """Reads JSON from ``path`` and builds ``cls`` strictly (errors name the file); a file of
    another kind (``OTHER_FILES``: a train result, the other command's config) is named as such."""
    data = read_json(path, what="config file")
    known = {f.name for f in dataclasses.fields(cls)}
    if isinstance(data, dict) and set(data) - known:
        kind = next((what for test, what in OTHER_FILES if test(data)), None)
        if kind is not None:
            raise UserError(f"{path}: this is {kind}, not a config this command reads (unknown key(s) "
                            f"{', '.join(map(repr, sorted(set(data) - known)[:3]))})")
    return from_dict(cls, data, source=str(Path(path)))


def to_dict(obj: Any) -> Any:
    """The resolved config as plain JSON-ready data (tuples become lists)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj
