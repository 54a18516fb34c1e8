"""The one registry helper: names -> things (classes, presets), for data sets, models,
retraining methods and generators.

    METHODS = Registry("method")

    @METHODS.register
    class PAS(Method):
        name = "pas"

    GENERATORS.lazy("learned", "image_generator.learned:LearnedInpainter")  # imported when asked for
    METHODS.get("pas")        # the class; an unknown name is one line listing the valid ones
    METHODS.names()           # sorted, what a CLI offers as ``choices``

A ``Registry`` is a read-only mapping, so ``name in REG``, ``REG[name]`` and
``sorted(REG)`` work as with a dict.
"""
from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, Iterator

from common.errors import UserError


class Registry(Mapping):
    """Named entries of one ``kind`` (used in messages: "unknown <kind> 'x' (valid <kind>s: ...)").

    Args:
        kind: what the entries are, singular (``"data set"``, ``"method"``).
        plural: its plural when not ``kind + "s"``.
    """

    def __init__(self, kind: str, plural: str | None = None):
        self.kind = kind
        self.plural = plural or f"{kind}s"
        self._entries: dict[str, Any] = {}
        self._lazy: dict[str, str] = {}

    def register(self, obj: Any = None, *, name: str | None = None) -> Any:
        """Registers ``obj`` under ``name`` (default: its ``name`` attribute); usable as a
        class decorator, with or without ``name=``. A name registered twice is an error."""

        def add(target: Any) -> Any:
            key = name or getattr(target, "name", None)
            if not isinstance(key, str) or not key:
                raise ValueError(f"{self.kind} {target!r} has no name to register under")
            if key in self._entries or key in self._lazy:
                raise ValueError(f"{self.kind} '{key}' is registered twice")
            self._entries[key] = target
            return target

        return add if obj is None else add(obj)

    def lazy(self, name: str, target: str) -> None:
        """Registers ``"package.module:attribute"``, imported on first ``get``."""
        if name in self._entries or name in self._lazy:
            raise ValueError(f"{self.kind} '{name}' is registered twice")
        self._lazy[name] = target

    def get(self, name: str) -> Any:  # type: ignore[override] - unknown names raise instead of a default
        """The entry registered as ``name`` (lazy ones imported now).

        Raises:
            UserError: unknown name, listing the valid ones.
        """
        if name in self._entries:
            return self._entries[name]
        if name in self._lazy:
            module, attr = self._lazy[name].split(":")
            self._entries[name] = getattr(importlib.import_module(module), attr)
            del self._lazy[name]
            return self._entries[name]
        raise UserError(f"unknown {self.kind} '{name}' (valid {self.plural}: {', '.join(self.names())})")

    def names(self) -> list[str]:
        """Every registered name, sorted (a CLI's ``choices``)."""
        return sorted({*self._entries, *self._lazy})

    def __getitem__(self, name: str) -> Any:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._lazy

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries) + len(self._lazy)
