#!/usr/bin/env bash
# Creates .venv-python (or $STRICTLY_PYTHON_VENV) with numpy, jsonschema, pytest, pytest-xdist and
# maturin (no torch), and installs the Python package from bindings/python into it: a release
# build of the engine without candle, which needs cargo. The build's target folder is bindings/python/target
# (or $CARGO_TARGET_DIR), so a second run rebuilds only what changed. Prints the venv's python.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${STRICTLY_PYTHON_VENV:-.venv-python}"
# One build into a venv at a time (CI starts one early; scripts/python-tests.sh's waits for it).
exec 9>"$VENV.lock"
if ! flock -n 9; then
  echo "python-venv: another build into $VENV is running: waiting for it" >&2
  flock 9
fi
if ! "$VENV/bin/python" -c "import numpy, jsonschema, pytest, xdist, maturin" 2>/dev/null; then
  python3 -m venv "$VENV" >&2
  "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    "numpy>=1.26,<3" "jsonschema>=4.23,<5" "pytest>=8,<10" "pytest-xdist>=3.6,<4" "maturin>=1.9,<2" >&2
fi
# The build backend runs the venv's maturin.
export PATH="$(cd "$VENV" && pwd)/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/bindings/python/target}"
"$VENV/bin/pip" install --quiet --disable-pip-version-check --no-build-isolation --force-reinstall --no-deps ./bindings/python >&2
echo "$VENV/bin/python"
