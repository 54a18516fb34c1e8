"""What the repository tracks: sources, never a local environment or a link to one.

A tracked ``.venv`` link replaces, on checkout, the environment folder of every checkout
that has one (git treats ignored files as expendable), so it is refused here."""
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_no_symlink_and_no_environment_is_tracked():
    out = subprocess.run(["git", "ls-files", "-s"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    rows = [line.split("\t", 1) for line in out.splitlines() if "\t" in line]
    assert [path for meta, path in rows if meta.startswith("120000")] == []  # symbolic links
    assert [path for _, path in rows if path.split("/")[0] in (".venv", "venv", "results", "data")] == []
    ignored = subprocess.run(["git", "check-ignore", "-q", "--no-index", ".venv"], cwd=ROOT)
    assert ignored.returncode == 0  # ignored as a folder and as a link
