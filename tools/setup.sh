#!/usr/bin/env bash
# Sets up a fresh machine: Debian packages for the GUI tests (when root and missing),
# a virtual environment in .venv and the pinned Python packages. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v Xvfb >/dev/null 2>&1 || ! command -v xdotool >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing xvfb and xdotool (Debian) for the GUI tests" >&2
    (apt-get install -y -q xvfb xdotool >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q xvfb xdotool >/dev/null; })
  else
    echo "setup: xvfb/xdotool missing and not root; the GUI tests need: sudo apt-get install -y xvfb xdotool" >&2
  fi
fi
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
