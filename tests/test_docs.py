"""The README and docs/ stay short, link to pages that exist and name commands that exist."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "BENCHMARKS.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_readme_and_benchmarks_stay_short():
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 300
    bench = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")
    assert len(bench.splitlines()) <= 450
    notes = bench[bench.index("<!-- notes:begin -->"): bench.index("<!-- notes:end -->")]
    assert 20 < len(notes.splitlines()) <= 150


def test_every_documented_command_is_a_module_with_main():
    modules = set()
    for page in PAGES:
        modules |= set(re.findall(r"python -m ([A-Za-z_][\w.]*)", page.read_text(encoding="utf-8")))
    modules -= {"pytest"}
    assert {"exp_scripts.exp_backprops", "select_tool.main", "exp_scripts.config_reference"} <= modules
    missing = sorted(m for m in modules if importlib.util.find_spec(m) is None)
    assert missing == []
    no_main = sorted(m for m in modules
                     if "def main(" not in Path(importlib.util.find_spec(m).origin).read_text(encoding="utf-8"))
    assert no_main == []


def test_relative_links_point_to_files():
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if "://" not in target and not (page.parent / target).exists():
                broken.append((page.name, target))
    assert broken == []


def test_every_command_that_writes_is_in_the_table_of_roots():
    text = (ROOT / "docs" / "data_and_results.md").read_text(encoding="utf-8")
    table = "\n".join(line for line in text.splitlines() if line.startswith("| `"))
    writers = []
    for path in sorted(ROOT.glob("*/*.py")):
        code = path.read_text(encoding="utf-8")
        writes = re.search(r'"--out"|"--output-dir"|"--data-root"|results_root\(', code)
        if path.parts[-2] != "tests" and "def main(" in code and writes:
            writers.append(f"{path.parent.name}.{path.stem}")
    assert len(writers) >= 20
    missing = [m for m in writers if f"`{m}`" not in table and f"`{m.split('.')[-1]}`" not in table]
    assert missing == []
