#!/usr/bin/env bash
# One-step set-up on a fresh machine: a virtual environment in .venv with prefrl and its
# dev tools, and (when run as root on Debian/Ubuntu) the Mesa libraries MuJoCo needs to
# render headless. Safe to run again: it only installs what is missing.
#
#   PREFRL_TORCH   torch requirement installed first (default torch==2.13.0, the CPU
#                  build on this project's machines; e.g. PREFRL_TORCH=torch for CUDA)
#   PREFRL_VENV    where the virtual environment lives (default .venv)
#   PREFRL_EXTRAS  pip extras of prefrl to install (default dev; CI: dev,bench, with
#                  stable-baselines3 for tests/test_other_libraries.py)
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${PREFRL_VENV:-.venv}
TORCH=${PREFRL_TORCH:-torch==2.13.0}
EXTRAS=${PREFRL_EXTRAS:-dev}

# MuJoCo renders headless through EGL (Mesa's software rasteriser without a GPU).
if ! ldconfig -p 2>/dev/null | grep -q "libEGL_mesa"; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "setup: installing Mesa EGL libraries for headless MuJoCo rendering" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      libegl1 libegl-mesa0 libgl1-mesa-dri >/dev/null
  else
    echo "setup: warning: Mesa EGL not found; MuJoCo rendering needs" \
         "'apt-get install -y libegl1 libegl-mesa0 libgl1-mesa-dri'" >&2
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build
if ! "$PY" -c "import torch" 2>/dev/null; then
  "$PY" -m pip install -q --disable-pip-version-check "$TORCH"
fi
# reinstall when prefrl is missing, pyproject.toml changed, or other extras are asked for
# than the stamp file records
STAMP="$VENV/.prefrl-installed"
if ! "$PY" -c "import prefrl" 2>/dev/null || [ pyproject.toml -nt "$STAMP" ] \
    || [ "$(cat "$STAMP" 2>/dev/null)" != "$EXTRAS" ]; then
  "$PY" -m pip install -q --disable-pip-version-check -e ".[$EXTRAS]"
  echo "$EXTRAS" > "$STAMP"
fi
