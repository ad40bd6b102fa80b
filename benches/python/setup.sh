#!/usr/bin/env bash
# Creates .venv-bench-python (or $STRICTLY_BENCH_PYTHON_VENV) for benches/python/compare.py:
# strictly (built from bindings/python: cargo needed), xgrammar 0.2.8 and llguidance 1.9.1.
# xgrammar imports torch and transformers at import time, so this venv holds torch from PyPI
# (with its CUDA libraries: 5.7 GB in all), unlike the tests' venv; with pytest, it also runs
# bindings/python/tests/test_torch.py. Not run by CI. Prints the python.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV="${STRICTLY_BENCH_PYTHON_VENV:-.venv-bench-python}"
if ! "$VENV/bin/python" -c "import xgrammar, llguidance, numpy, jsonschema, maturin" 2>/dev/null; then
  python3 -m venv "$VENV" >&2
  "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    "xgrammar==0.2.8" "llguidance==1.9.1" "numpy>=1.26,<3" "jsonschema>=4.23,<5" "maturin>=1.9,<2" "pytest>=8,<10" >&2
fi
# The build backend runs the venv's maturin (the install below does no build isolation).
export PATH="$(cd "$VENV" && pwd)/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/bindings/python/target}"
"$VENV/bin/pip" install --quiet --disable-pip-version-check --no-build-isolation --force-reinstall --no-deps ./bindings/python >&2
echo "$VENV/bin/python"
