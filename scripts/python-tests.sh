#!/usr/bin/env bash
# Builds the Python package into its venv (scripts/python-venv.sh) and runs its tests
# (bindings/python/tests) on one worker per core (pytest-xdist; CI runs them last, when nothing
# else uses the second core). pytest's exit 5, "no tests ran", is a failure here.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="$(bash scripts/python-venv.sh)"
status=0
"$PY" -m pytest -q -n auto bindings/python/tests "$@" || status=$?
if [ "$status" -eq 5 ]; then
  echo "python-tests: pytest collected no tests" >&2
  exit 1
fi
exit "$status"
