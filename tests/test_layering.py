"""Folders are layers; imports point downward."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: one level per package, so that no two packages may import each other
LAYERS = {
    "common": 0,
    "tf_records_parser": 1,
    "datasets": 2,
    "classification_models": 3,
    "plot_utils": 4,
    "image_generator": 5,
    "vis_exp": 6,
    "retraining": 7,
    "exp_scripts": 8,
    "select_tool": 9,
    "benchmarks": 10,
}
FORBIDDEN_IN_CORE = {"tkinter", "matplotlib"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _top_level_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_every_package_has_a_level_of_its_own():
    assert len(set(LAYERS.values())) == len(LAYERS)
    assert {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()} - {"tests"} == set(LAYERS)


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_imports_point_downward(package):
    level = LAYERS[package]
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"package {package} has no modules"
    for path in files:
        for name in _imports(path):
            if name in LAYERS and name != package:
                assert LAYERS[name] <= level, f"{path.relative_to(ROOT)} imports {name} (a higher layer)"


@pytest.mark.parametrize("package", ["common", "datasets", "classification_models"])
def test_core_has_no_gui_or_plotting_at_import(package):
    for path in sorted((ROOT / package).rglob("*.py")):
        bad = _top_level_imports(path) & FORBIDDEN_IN_CORE
        assert not bad, f"{path.relative_to(ROOT)} imports {bad} at module level"


@pytest.mark.parametrize("package", sorted(p for p, level in LAYERS.items() if level < LAYERS["retraining"]))
def test_no_subprocess_below_the_applications(package):
    # a subprocess would reach a higher layer without an import line for the tests above to see
    for path in sorted((ROOT / package).rglob("*.py")):
        assert "subprocess" not in _imports(path), f"{path.relative_to(ROOT)} imports subprocess"


def test_thesis_report_runs_its_steps_in_process():
    paths = [ROOT / "exp_scripts" / "thesis_report.py", ROOT / "exp_scripts" / "report_analysis.py"]
    imports = set().union(*(_imports(p) for p in paths))
    assert "subprocess" not in imports
    assert {"vis_exp", "plot_utils"} <= imports
