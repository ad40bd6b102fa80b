#!/usr/bin/env bash
# Creates (once) .venv-openai with the official openai Python SDK, pinned, for the SDK test
# (tests/openai_sdk.py, run by tests/service/openai.rs). Prints the venv's python.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${STRICTLY_OPENAI_VENV:-.venv-openai}"
PIN="3.51.0"
if ! "$VENV/bin/python" -c "import openai, sys; sys.exit(openai.__version__ != '$PIN')" 2>/dev/null; then
  python3 -m venv "$VENV" >&2
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "openai==$PIN" >&2
fi
echo "$VENV/bin/python"
