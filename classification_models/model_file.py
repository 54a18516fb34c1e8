"""Reading ``.keras`` model files: safe-mode loading and a precise reason when a file is unreadable.

Keras reports empty, truncated and damaged archives alike as "File not found";
:func:`model_file_problem` names what is wrong so that errors point at the file.
"""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import keras

from common.errors import UserError


def load_keras_model(path: str | os.PathLike):
    """A ``.keras`` file loaded in safe mode; anything else is a one-line UserError naming the file."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"model file '{path}' does not exist")
    if path.suffix != ".keras":
        raise UserError(f"model file '{path}' is not a .keras file (save it with model.save('name.keras'))")
    reason = model_file_problem(path)
    if reason:
        raise UserError(f"model file '{path}' cannot be read: {reason}")
    code_layers = lambda_layers(path)
    if code_layers:
        raise UserError(
            f"model file '{path}' has Lambda layer(s) {', '.join(map(repr, code_layers[:5]))}: they hold Python code, "
            "which is never run from a model file here; if a Lambda only scales the pixels, remove it and give "
            "input.scale in the config; otherwise rebuild that step from built-in Keras layers (Rescaling, "
            "Normalization, Activation, Multiply, ...) and save the model again")
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # zip, JSON and deserialisation errors of every kind
        lines = [line for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
        raise UserError(f"model file '{path}' cannot be read: {lines[0]}") from None
    if not isinstance(model, keras.Model):
        raise UserError(f"model file '{path}' holds a {type(model).__name__}, not a Keras model")
    return model


def model_file_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` is not a readable ``.keras`` archive (empty, not a zip, damaged), or None.

    Keras reports all of these as "File not found", which misleads when the file exists.
    """
    path = Path(path)
    if path.is_dir():
        return "it is a folder, not a .keras file"
    size = path.stat().st_size
    if size == 0:
        return "the file is empty (0 bytes)"
    if not zipfile.is_zipfile(path):
        return f"not a .keras (zip) archive ({size} bytes; truncated or damaged?)"
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        return f"damaged .keras archive ({exc})"
    if bad is not None:
        return f"damaged .keras archive (member '{bad}' fails its CRC check)"
    return None



def lambda_layers(path: str | os.PathLike) -> list[str]:
    """Names of the ``Lambda`` layers in a readable ``.keras`` archive's ``config.json``
    (nested models included); [] when there are none or the config cannot be read."""
    try:
        with zipfile.ZipFile(path) as zf:
            config = json.loads(zf.read("config.json"))
    except (KeyError, OSError, ValueError, zipfile.BadZipFile):
        return []
    found: list[str] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            if node.get("class_name") == "Lambda":
                found.append(str((node.get("config") or {}).get("name", "?")))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(config)
    return found
