#!/usr/bin/env bash
# Creates (or reuses) the Python venv for the llama.cpp benchmark anchors.
#
#   bash benches/llamacpp/setup.sh
#
# Idempotent: an existing venv with the pinned llama-cpp-python already
# importable is left as it is. llama-cpp-python ships only an sdist on the
# registry, so the first run compiles llama.cpp from source (CPU only),
# which takes several minutes on 2 cores.
#
# Environment knobs:
#   LLAMA_CPP_PYTHON_VERSION   default 0.3.36
#   CMAKE_BUILD_PARALLEL_LEVEL default 2 (use 1 to leave a core free)
#   GGML_NATIVE                default ON (-march=native); set OFF for a
#                              portable build
#   VENV                       default $REPO/.venv-bench
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${VENV:-$REPO/.venv-bench}"
VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
NATIVE="${GGML_NATIVE:-ON}"
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}"

say() { printf '[setup] %s\n' "$*"; }

if [ -x "$VENV/bin/python" ]; then
  say "venv exists: $VENV"
else
  say "creating venv: python3 -m venv $VENV"
  python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
# The venv's bin goes first on PATH so the build backend finds the cmake
# and ninja installed below.
export PATH="$VENV/bin:$PATH"

installed_version() {
  "$PY" - "$1" <<'EOF' 2>/dev/null || true
import importlib.metadata as m, sys
try:
    print(m.version(sys.argv[1]))
except m.PackageNotFoundError:
    pass
EOF
}

# Build tools: the machine has no system cmake; take cmake (and ninja) from
# the Python registry inside the venv.
if command -v cmake >/dev/null 2>&1; then
  say "cmake found: $(command -v cmake) ($(cmake --version | head -1))"
else
  say "no cmake on PATH: pip install cmake (into the venv)"
  "$PY" -m pip install --quiet cmake
  say "cmake now: $(command -v cmake) ($(cmake --version | head -1))"
fi
if ! command -v ninja >/dev/null 2>&1; then
  say "no ninja on PATH: pip install ninja (into the venv)"
  "$PY" -m pip install --quiet ninja
fi

have="$(installed_version llama-cpp-python)"
if [ "$have" = "$VERSION" ] && "$PY" -c 'import llama_cpp' 2>/dev/null; then
  say "llama-cpp-python $have already installed and importable: skipping the build"
else
  [ -n "$have" ] && say "llama-cpp-python $have installed, want $VERSION: rebuilding"
  # CPU only: every accelerator backend off, no BLAS (ggml's own CPU kernels,
  # which is what the decode numbers should measure), no libcurl.
  export CMAKE_ARGS="-DGGML_NATIVE=$NATIVE -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_VULKAN=OFF -DGGML_HIP=OFF -DGGML_SYCL=OFF -DGGML_OPENCL=OFF -DGGML_BLAS=OFF -DLLAMA_CURL=OFF"
  export FORCE_CMAKE=1
  log="$VENV/llama-cpp-python-build.log"
  say "building llama-cpp-python==$VERSION from source"
  say "  CMAKE_ARGS=$CMAKE_ARGS"
  say "  CMAKE_BUILD_PARALLEL_LEVEL=$CMAKE_BUILD_PARALLEL_LEVEL (build log: $log)"
  start=$(date +%s)
  # --no-build-isolation would need the backend's own deps; keep isolation,
  # PATH carries the venv's cmake/ninja into it. nice keeps it polite.
  if ! nice -n 10 "$PY" -m pip install --verbose --no-cache-dir \
        "llama-cpp-python==$VERSION" >"$log" 2>&1; then
    say "build FAILED; last lines of $log:"
    tail -40 "$log"
    exit 1
  fi
  say "built in $(( $(date +%s) - start )) s"
fi

if [ -n "$(installed_version jsonschema)" ]; then
  say "jsonschema $(installed_version jsonschema) already installed"
else
  say "pip install jsonschema"
  "$PY" -m pip install --quiet jsonschema
fi

# The OpenAI-compatible server (`python -m llama_cpp.server`: tests/openai_llamacpp.rs, tests/ab.rs, server_bench.py) needs
# the `server` extra. llama-cpp-python is installed at $VERSION by now, so pip only adds the
# extra's pure-Python dependencies (uvicorn, fastapi, ...): no rebuild.
if "$PY" -c 'import llama_cpp.server.app, uvicorn, fastapi, sse_starlette, starlette_context, pydantic_settings' 2>/dev/null; then
  say "llama-cpp-python[server] dependencies already installed"
else
  say "pip install llama-cpp-python[server]==$VERSION (the extra's dependencies only)"
  "$PY" -m pip install --quiet "llama-cpp-python[server]==$VERSION"
fi

say "versions: python $("$PY" -c 'import sys; print(sys.version.split()[0])'), llama-cpp-python $(installed_version llama-cpp-python), jsonschema $(installed_version jsonschema)"
"$PY" - <<'EOF'
import llama_cpp
info = llama_cpp.llama_print_system_info()
print("[setup] llama.cpp system info:", info.decode() if isinstance(info, bytes) else info)
EOF
say "done: activate with  source $VENV/bin/activate"
