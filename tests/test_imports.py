"""Imports at the top of modules: a module's first lines say what it depends on. An import
inside a function is the exception (TensorFlow deferred on a command's ``--help`` path,
tkinter, a plotting library kept out of the core at import), each with a comment saying
why, on its line or on a comment line right above its group of imports."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: at most this many function-local imports outside tests/
LIMIT = 25


def local_imports(path: Path) -> list[int]:
    """Line numbers of the import statements inside functions of ``path``."""
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)) and in_function:
                found.append(child.lineno)
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return sorted(found)


def commented(lines: list[str], lineno: int) -> bool:
    """The import on ``lineno`` (1-based) has a comment on its line, or its group of
    consecutive import lines is right below a comment line."""
    if "#" in lines[lineno - 1]:
        return True
    i = lineno - 2
    while i >= 0 and lines[i].strip().startswith(("import ", "from ")):
        i -= 1
    return i >= 0 and lines[i].strip().startswith("#")


def _modules() -> list[Path]:
    packages = [p for p in sorted(ROOT.iterdir()) if (p / "__init__.py").exists() and p.name != "tests"]
    return [f for p in packages for f in sorted(p.rglob("*.py"))]


def test_function_local_imports_are_few_and_each_says_why():
    found = {path: local_imports(path) for path in _modules()}
    total = sum(len(v) for v in found.values())
    assert total <= LIMIT, f"{total} function-local imports (at most {LIMIT}): " + ", ".join(
        f"{p.relative_to(ROOT)}:{n}" for p, v in found.items() for n in v)
    for path, linenos in found.items():
        lines = path.read_text(encoding="utf-8").splitlines()
        for n in linenos:
            assert commented(lines, n), f"{path.relative_to(ROOT)}:{n}: a function-local import without a comment saying why"


def test_the_counter_finds_local_imports_and_their_comments(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("import os\n\n\ndef f():\n    # deferred: heavy\n    import json\n    import re\n    return json, re\n\n\n"
                   "def g():\n    import csv  # deferred: why\n    return (lambda: __import__('x'))\n\n\n"
                   "def h():\n    x = 1\n    import abc\n    return abc\n", encoding="utf-8")
    lines = src.read_text().splitlines()
    assert local_imports(src) == [6, 7, 12, 18]
    assert [commented(lines, n) for n in (6, 7, 12, 18)] == [True, True, True, False]
