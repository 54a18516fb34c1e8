"""The config reference, generated from the config dataclasses: every key a user writes
in a train config, a retraining config (with every method's, data set's and generator's
``params``), a selection file and the suite's files, with its type, bounds, default and
one line of meaning.

    python -m exp_scripts.config_reference            # writes docs/config_reference.md
    python -m exp_scripts.config_reference --check    # exit 1 when that file is out of date

A field's meaning is the ``#:`` comment line(s) directly above it in its dataclass (the
Sphinx attribute-comment convention); a field without one stops the generation, naming
the class and the field. Types, bounds (``metadata``: ``min``, ``max``, ``gt``,
``choices``, ``min_len``) and defaults are read from the dataclass itself.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import inspect
import json
import logging
import sys
import textwrap
import types
import typing
from pathlib import Path
from typing import Any, Iterator

from classification_models.models import PRESETS, ModelParams
from common.cli import run_main
from common.config import to_dict
from common.errors import UserError
from common.io import atomic_write_text
from common.logs import parse_command_line
from datasets.cached import REGISTRY as DATASETS
from datasets.registry import MODULES as _DATASET_MODULES  # noqa: F401  (registers the data sets)
from datasets.selection import SelectionFile
from image_generator.registry import GENERATORS
from retraining import suite_configs
from retraining.config import RetrainConfig
from retraining.methods import REGISTRY as METHODS
from retraining.train_config import ModelImport, TrainConfig

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "config_reference.md"
COMMAND = "python -m exp_scripts.config_reference"


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """``{field: meaning}`` from the ``#:`` comment lines above each field of ``cls`` and of
    the dataclasses it inherits from."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        lines = textwrap.dedent(inspect.getsource(klass)).splitlines()
        body = ast.parse("\n".join(lines)).body[0]
        for node in body.body:
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                comment, row = [], node.lineno - 2
                while row >= 0 and lines[row].strip().startswith("#:"):
                    comment.insert(0, lines[row].strip()[2:].strip())
                    row -= 1
                if comment:
                    docs[node.target.id] = " ".join(comment)
    return docs


def type_text(tp: Any) -> str:
    """A JSON-side name of annotation ``tp``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return "any"
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        return " or ".join(type_text(a) for a in rest) + (" or null" if len(rest) < len(args) else "")
    if dataclasses.is_dataclass(tp):
        return "object"
    if origin in (list, tuple):
        return f"list of {type_text(args[0]) if args else 'any'}"
    if origin is dict:
        return "object" if len(args) < 2 or args[1] is Any else f"object of {type_text(args[1])}"
    return {int: "integer", float: "number", str: "string", bool: "true/false"}.get(tp, getattr(tp, "__name__", str(tp)))


def bounds_text(meta: dict) -> str:
    parts = []
    if "choices" in meta:
        parts.append(", ".join(f"`{c}`" for c in sorted(meta["choices"])))
    if "min" in meta and "max" in meta:
        parts.append(f"[{meta['min']}, {meta['max']}]")
    elif "min" in meta:
        parts.append(f"≥ {meta['min']}")
    elif "max" in meta:
        parts.append(f"≤ {meta['max']}")
    if "gt" in meta:
        parts.append(f"> {meta['gt']}")
    if meta.get("path_name"):
        parts.append("one file name: letters, digits, `_`, `-`, `.`")
    if "min_len" in meta:
        parts.append(f"≥ {meta['min_len']} item(s)")
    return "; ".join(parts)


def default_text(f: dataclasses.Field) -> str:
    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
        return "required"
    value = f.default_factory() if f.default is dataclasses.MISSING else f.default
    if dataclasses.is_dataclass(value):
        return "the defaults below"
    return f"`{json.dumps(to_dict(value), ensure_ascii=False)}`"


def nested(tp: Any) -> Iterator[type]:
    """The dataclasses inside annotation ``tp`` (``Optional[X]``, ``list[X]``, ``X``)."""
    if dataclasses.is_dataclass(tp):
        yield tp
    for arg in typing.get_args(tp):
        yield from nested(arg)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _summary(cls: type) -> str:
    """The first sentence of ``cls``'s docstring, in Markdown code quotes."""
    doc = " ".join(inspect.cleandoc(cls.__doc__ or "").split("\n\n")[0].split())
    end = doc.find(". ")
    return (doc if end < 0 else doc[:end + 1]).replace("``", "`")


def table(cls: type, path: str, extra: dict[str, type] | None = None, level: str = "###") -> list[str]:
    """The Markdown section of dataclass ``cls`` at key ``path`` and of its nested
    dataclasses (``extra`` names fields typed ``Any`` that hold one)."""
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    prefix = f"{path}." if path else ""
    title = f"`{path}`" if path else "top level"
    out = [f"{level} {title}", "", _summary(cls), "", "| key | type | bounds | default | meaning |",
           "| --- | --- | --- | --- | --- |"]
    below: list[tuple[type, str]] = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if f.name not in docs:
            raise UserError(f"{cls.__module__}.{cls.__qualname__}.{f.name} has no '#:' comment line above it; "
                            f"add one (one line of meaning), then run {COMMAND}")
        tp = hints[f.name]
        out.append(f"| `{prefix}{f.name}` | {_cell(type_text(tp))} | {_cell(bounds_text(dict(f.metadata)))} | "
                   f"{_cell(default_text(f))} | {_cell(docs[f.name])} |")
        for sub in [*nested(tp), *([extra[f.name]] if extra and f.name in extra else [])]:
            below.append((sub, f"{prefix}{f.name}{'[]' if typing.get_origin(tp) in (list, tuple) else ''}"))
    out.append("")
    for sub, sub_path in below:
        out += table(sub, sub_path, level=level)
    return out


def registry_sections(registry, key: str, what: str) -> list[str]:
    """One table per registered name of ``registry``: the fields of its ``Params``."""
    out = []
    for name in sorted(registry):
        params = registry.get(name).Params
        if params is None or not dataclasses.fields(params):
            out += [f"#### {what} `{name}`", "", "No parameters.", ""]
            continue
        section = table(params, key, level="####")
        section[0] = f"#### {what} `{name}`"
        out += section
    return out


def render() -> str:
    """The whole reference as Markdown (deterministic)."""
    out = [
        "# Config reference",
        "",
        f"Generated by `{COMMAND}` from the config dataclasses; do not edit by hand",
        "(`tests/test_config_reference.py` fails when this file is out of date). Every key is",
        "validated strictly when the file is read: an unknown key, a missing required key, a",
        "wrong type or a value out of bounds stops with one line naming the file, the key and",
        "the value. Examples of every kind of file are in `config_files/`.",
        "",
        "## Train config",
        "",
        "`python -m exp_scripts.do_interactive_exp CONFIG.json` (`retraining.train_config.TrainConfig`).",
        "",
    ]
    out += table(TrainConfig, "", extra={"init_from": ModelImport})
    out += ["### `model.params`: the model presets' parameters", "",
            f"Presets (`model.name`): {', '.join(f'`{n}`' for n in sorted(PRESETS))}; `model.params` "
            "overrides their values.", ""]
    out += table(ModelParams, "model.params")[2:]
    out += ["### `dataset.params` per data set", "",
            "`dataset.name` picks a registered data set; its `params` are these.", ""]
    out += registry_sections(DATASETS, "dataset.params", "data set")
    out += ["## Retraining config", "",
            "`python -m exp_scripts.exp_backprops CONFIG.json` (`retraining.config.RetrainConfig`).", ""]
    out += table(RetrainConfig, "")
    out += ["### `methods[].params` per method", "",
            "`methods[].name` picks a registered method; its `params` are these.", ""]
    out += registry_sections(METHODS, "methods[].params", "method")
    out += ["### `generator_params` per replacement generator", "",
            "`inpaint_replace`'s `generator` picks one; its `generator_params` are these.", ""]
    out += registry_sections(GENERATORS, "generator_params", "generator")
    out += ["## Selection file", "",
            "`selection.json`, written by the mask tool and `select_tool.auto`, read by the retraining "
            "(`datasets.selection.SelectionFile`).", ""]
    out += table(SelectionFile, "")
    out += ["## Benchmark suite and default experiment", "",
            "`config_files/suite/train.json` (`SuiteTrain`), `config_files/suite/methods.json` (`SuiteMethods`) "
            "and `config_files/default_experiment/*.json` (`DefaultExperiment`), read by "
            "`retraining.suite_configs`.", ""]
    for cls in (suite_configs.SuiteTrain, suite_configs.SuiteMethods, suite_configs.DefaultExperiment):
        section = table(cls, "", level="####")
        section[0] = f"#### `{cls.__name__}`"
        out += section
    return "\n".join(out).rstrip("\n") + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog=f"{COMMAND}", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help=f"exit 1 when {OUT.relative_to(ROOT)} is out of date")
    parser.add_argument("--out", default=str(OUT), help="where to write (default: %(default)s)")
    args = parse_command_line(parser, argv)
    text = render()
    out = Path(args.out)
    if args.check:
        if not out.exists() or out.read_text(encoding="utf-8") != text:
            log.error("%s is out of date; run: %s", out, COMMAND)
            return 1
        return 0
    atomic_write_text(out, text)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
