"""Every entry point is importable, has a copy-pasteable docstring and answers --help."""
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENTRY_POINTS = sorted(
    str(p.relative_to(ROOT).with_suffix("")).replace("/", ".")
    for pkg in sorted(d.name for d in ROOT.iterdir() if (d / "__init__.py").exists() and d.name != "tests")
    for p in (ROOT / pkg).rglob("*.py")
    if "def main(" in p.read_text(encoding="utf-8")
)


def test_the_documented_commands_exist():
    for name in ("exp_scripts.do_interactive_exp", "select_tool.main", "exp_scripts.exp_backprops",
                 "select_tool.auto", "exp_scripts.thesis_report", "datasets.prepare",
                 "datasets.shortcut_suite"):
        assert name in ENTRY_POINTS


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_help_exits_zero_and_names_the_command(module, capsys):
    mod = importlib.import_module(module)
    assert mod.__doc__ and f"python -m {module}" in mod.__doc__, f"{module}: docstring lacks the command"
    with pytest.raises(SystemExit) as exc:
        mod.main(["--help"])
    assert exc.value.code == 0
    assert "usage" in capsys.readouterr().out.lower()


def test_bad_config_is_one_line_error_and_exit_2(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x", "dataset": {"name": "nope"}}')
    proc = subprocess.run([sys.executable, "-m", "exp_scripts.exp_backprops", str(bad)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: {bad}")
    assert "Traceback" not in proc.stderr
