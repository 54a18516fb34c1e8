#!/usr/bin/env bash
# Sets up a fresh machine: Debian packages for the GUI tests (when root and missing),
# a virtual environment in .venv and the pinned Python packages. Idempotent.
#   bash tools/setup.sh          # CPU build of TensorFlow (requirements.txt)
#   bash tools/setup.sh --gpu    # the CUDA build (requirements-gpu.txt) when an NVIDIA GPU is present;
#                                # without one it keeps the CPU build and says so
set -euo pipefail
cd "$(dirname "$0")/.."
GPU=0
for arg in "$@"; do
  case "$arg" in
    --gpu) GPU=1 ;;
    *) echo "setup: unknown option '$arg' (valid: --gpu)" >&2; exit 2 ;;
  esac
done
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
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check)
if [ "$GPU" = 1 ] && ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "setup: --gpu: no NVIDIA GPU found (no nvidia-smi); keeping the CPU build of TensorFlow" >&2
  GPU=0
fi
if [ "$GPU" = 1 ]; then
  # tensorflow-cpu and tensorflow write the same package: never both
  .venv/bin/python -m pip uninstall -q -y tensorflow-cpu >/dev/null 2>&1 || true
  grep -v '^tensorflow-cpu' requirements.txt > .venv/requirements-no-tf.txt
  "${PIP[@]}" -r .venv/requirements-no-tf.txt -r requirements-gpu.txt
else
  "${PIP[@]}" -r requirements.txt
fi
.venv/bin/python -c "import logging; logging.basicConfig(format='setup: %(message)s', level=logging.INFO)
from classification_models.precision import device_line; logging.info(device_line())" 2>&1 | grep '^setup:' >&2
