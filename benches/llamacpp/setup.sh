#!/usr/bin/env bash
# Creates (or checks and reuses) the Python venv for the llama.cpp anchors: llama-cpp-python
# built from source, plus its server extra and jsonschema.
#
#   bash benches/llamacpp/setup.sh
#
# llama-cpp-python ships only an sdist on the registry, so the first run compiles llama.cpp
# (CPU only, without its `common` library: see no-common.cmake), about 3 minutes on 2 cores.
#
# A build is kept only if it runs here. After building, and on every later run, a smoke test
# loads the GGUF and decodes a few tokens in a subprocess. A build that dies there (a signal such
# as SIGILL, or a hang) is rebuilt with the next, more conservative set of instructions:
#
#   native    GGML_NATIVE=ON (-march=native): what this CPU advertises, AMX included
#   explicit  GGML_NATIVE=OFF; AVX/AVX2/FMA/F16C/BMI2, AVX-512 and VNNI as /proc/cpuinfo
#             reports them; AMX never
#   portable  GGML_NATIVE=OFF; SSE4.2 only
#
# A CPU that advertises AMX whose kernel refuses the AMX tile state (as under some hypervisors)
# starts at `explicit`: a native build would compile AMX kernels that die on their first use.
# Which build was kept, and why, is written to $VENV/llama-build.json.
#
# Environment knobs:
#   LLAMA_CPP_PYTHON_VERSION   default 0.3.36
#   LLAMA_BUILD                auto (default), native, explicit or portable (no fallback then)
#   STRICTLY_MODEL             the GGUF for the smoke test; default
#                              ${STRICTLY_MODELS_DIR:-models}/SmolLM2-135M-Instruct.Q4_1.gguf
#   CMAKE_BUILD_PARALLEL_LEVEL default 2 (use 1 to leave a core free)
#   VENV                       default $REPO/.venv-bench
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${VENV:-$REPO/.venv-bench}"
VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
BUILD="${LLAMA_BUILD:-auto}"
MODEL="${STRICTLY_MODEL:-${STRICTLY_MODELS_DIR:-$REPO/models}/SmolLM2-135M-Instruct.Q4_1.gguf}"
RECORD="$VENV/llama-build.json"
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}"

say() { printf '[setup] %s\n' "$*"; }

case "$BUILD" in
  auto|native|explicit|portable) ;;
  *) say "LLAMA_BUILD must be auto, native, explicit or portable, not '$BUILD'"; exit 2 ;;
esac

# One setup of a venv at a time: a second run (a test while CI's early build is still going)
# waits for the first, then finds its build and only checks it.
mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
if ! flock -n 9; then
  say "another setup of $VENV is running: waiting for it"
  flock 9
fi

if [ -x "$VENV/bin/python" ]; then
  say "venv exists: $VENV"
else
  say "creating venv: python3 -m venv $VENV"
  python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
# The venv's bin goes first on PATH so the build backend finds the cmake and ninja installed below.
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

# Build tools: the machine may have no system cmake; take cmake (and ninja) from the Python
# registry inside the venv.
if ! command -v cmake >/dev/null 2>&1; then
  say "no cmake on PATH: pip install cmake (into the venv)"
  "$PY" -m pip install --quiet cmake
fi
if ! command -v ninja >/dev/null 2>&1; then
  say "no ninja on PATH: pip install ninja (into the venv)"
  "$PY" -m pip install --quiet ninja
fi

CPU_FLAGS=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
has() { case "$CPU_FLAGS" in *" $1 "*) return 0 ;; esac; return 1; }
onoff() { if has "$1"; then echo ON; else echo OFF; fi; }

# Whether the kernel lets this process use the AMX tile data (Linux's ARCH_REQ_XCOMP_PERM for
# XFEATURE_XTILEDATA): prints "granted" or "refused: ...".
amx_permission() {
  python3 - <<'EOF' 2>/dev/null || echo "refused: the check failed"
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA = 158, 0x1023, 18
if libc.syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0:
    print("granted")
else:
    print("refused: " + os.strerror(ctypes.get_errno()))
EOF
}

# LLAVA_BUILD=OFF leaves out libmtmd (images and audio; 53 of the 193 compile steps): the
# anchors load text models only, and llama_cpp imports mtmd only for multimodal chat handlers.
# no-common.cmake leaves out llama.cpp's `common` library (52 more steps), which the package
# never loads; the file says how.
COMMON="-DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_VULKAN=OFF -DGGML_HIP=OFF -DGGML_SYCL=OFF -DGGML_OPENCL=OFF -DGGML_BLAS=OFF -DLLAMA_CURL=OFF -DLLAVA_BUILD=OFF"
COMMON="$COMMON -DCMAKE_PROJECT_llama.cpp_INCLUDE=$REPO/benches/llamacpp/no-common.cmake"
cmake_args() {
  case "$1" in
    native) echo "-DGGML_NATIVE=ON $COMMON" ;;
    explicit)
      local avx512=OFF
      if has avx512f && has avx512cd && has avx512vl && has avx512dq && has avx512bw; then avx512=ON; fi
      echo "-DGGML_NATIVE=OFF -DGGML_SSE42=$(onoff sse4_2) -DGGML_AVX=$(onoff avx) -DGGML_AVX2=$(onoff avx2)" \
        "-DGGML_FMA=$(onoff fma) -DGGML_F16C=$(onoff f16c) -DGGML_BMI2=$(onoff bmi2) -DGGML_AVX_VNNI=$(onoff avx_vnni)" \
        "-DGGML_AVX512=$avx512 -DGGML_AVX512_VBMI=$(onoff avx512vbmi) -DGGML_AVX512_VNNI=$(onoff avx512_vnni)" \
        "-DGGML_AVX512_BF16=$(onoff avx512_bf16) -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF $COMMON" ;;
    portable)
      echo "-DGGML_NATIVE=OFF -DGGML_SSE42=ON -DGGML_AVX=OFF -DGGML_AVX2=OFF -DGGML_FMA=OFF -DGGML_F16C=OFF -DGGML_BMI2=OFF" \
        "-DGGML_AVX_VNNI=OFF -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF $COMMON" ;;
  esac
}

# The builds to try, in order.
if [ "$BUILD" != auto ]; then
  PLAN=("$BUILD")
  WHY="LLAMA_BUILD=$BUILD"
elif has amx_tile && [ "$(amx_permission)" != granted ]; then
  PLAN=(explicit portable)
  WHY="the CPU advertises AMX but the kernel $(amx_permission | sed 's/^refused/refuses the tile state/')"
else
  PLAN=(native explicit portable)
  WHY="default"
fi

build() {
  local kind="$1" log="$VENV/llama-cpp-python-build.log"
  export CMAKE_ARGS; CMAKE_ARGS="$(cmake_args "$kind")"
  export FORCE_CMAKE=1
  say "building llama-cpp-python==$VERSION from source ($kind build)"
  say "  CMAKE_ARGS=$CMAKE_ARGS"
  say "  CMAKE_BUILD_PARALLEL_LEVEL=$CMAKE_BUILD_PARALLEL_LEVEL (build log: $log)"
  local start; start=$(date +%s)
  # A rebuild replaces the package alone; a first install brings its dependencies too.
  local again=()
  [ -n "$(installed_version llama-cpp-python)" ] && again=(--force-reinstall --no-deps)
  # Build isolation kept; PATH carries the venv's cmake/ninja into it. nice keeps it polite.
  if ! nice -n 10 "$PY" -m pip install --verbose --no-cache-dir "${again[@]}" \
        "llama-cpp-python==$VERSION" >"$log" 2>&1; then
    say "build FAILED; last lines of $log:"
    tail -40 "$log"
    exit 1
  fi
  say "built in $(( $(date +%s) - start )) s"
}

# Loads the GGUF and decodes a few tokens in a subprocess. Sets SMOKE to "passed", or to why it
# failed; returns 0 when it passed, 1 when the build died (a signal, a hang), 2 when it could not
# run (no GGUF) and 3 on any other error (which a rebuild with other flags would not cure).
smoke() {
  if [ ! -f "$MODEL" ]; then
    SMOKE="not run: no GGUF at $MODEL (set STRICTLY_MODEL)"
    return 2
  fi
  local out rc=0
  out=$(timeout 300 "$PY" - "$MODEL" 2>&1 <<'EOF'
import sys, llama_cpp
llm = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=512, n_threads=2, n_batch=64, verbose=False)
prompt = "<|im_start|>user\nName three colours of the rainbow, in order, in a JSON list.<|im_end|>\n<|im_start|>assistant\n"
out = llm.create_completion(prompt, max_tokens=8, temperature=0.0)
print("smoke:", out["usage"]["completion_tokens"], "tokens:", repr(out["choices"][0]["text"]))
EOF
  ) || rc=$?
  if [ "$rc" -eq 0 ]; then
    SMOKE="passed"
    say "smoke test passed (${out##*smoke: })"
    return 0
  fi
  if [ "$rc" -eq 124 ]; then
    SMOKE="hung: no answer in 300 s"
  elif [ "$rc" -gt 128 ]; then
    SMOKE="died on signal $((rc - 128)) ($(kill -l $((rc - 128)) 2>/dev/null || echo '?'))"
  else
    SMOKE="exited with $rc"
  fi
  if [ -n "${out//[[:space:]]/}" ]; then
    say "smoke test FAILED: $SMOKE; its last lines:"
    printf '%s\n' "$out" | tail -15 | sed 's/^/[setup]   /'
  else
    say "smoke test FAILED: $SMOKE, printing nothing"
  fi
  # A Python error is not a build that dies where it runs: report it, do not rebuild.
  if [ "$rc" -eq 124 ] || [ "$rc" -gt 128 ]; then return 1; fi
  return 3
}

record() {
  "$PY" - "$RECORD" "$1" "$2" "$3" "$VERSION" "$(cmake_args "$1")" "$CPU_FLAGS" <<'EOF'
import json, sys, datetime
path, build, why, smoke, version, args, flags = sys.argv[1:]
json.dump({
    "llama_cpp_python": version, "build": build, "why": why, "smoke": smoke, "cmake_args": args.split(),
    "cpu_flags": [f for f in flags.split() if f.startswith(("avx", "amx", "fma", "f16c", "bmi", "sse4"))],
    "recorded_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
}, open(path, "w"), indent=1)
EOF
}

recorded_build() {
  "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["build"])' "$RECORD" 2>/dev/null || true
}

ORDER=(native explicit portable)
# A build of unknown kind (installed without a record) ranks before all of them.
rank() { local i; for i in 0 1 2; do [ "${ORDER[$i]}" = "$1" ] && { echo "$i"; return 0; }; done; echo -1; }

have="$(installed_version llama-cpp-python)"
kept=""
# A venv without a record was built before records were kept, natively.
current="$(recorded_build)"; current="${current:-native}"
if [ "$have" = "$VERSION" ] && [ "$BUILD" != auto ] && [ "$current" != "$BUILD" ]; then
  say "llama-cpp-python $have is a $current build; LLAMA_BUILD=$BUILD asks for another: rebuilding"
elif [ "$have" = "$VERSION" ] && "$PY" -c 'import llama_cpp' 2>/dev/null; then
  say "llama-cpp-python $have installed ($current build): checking that it runs here"
  rc=0; smoke || rc=$?
  if [ "$rc" -eq 0 ] || [ "$rc" -eq 2 ]; then
    [ "$rc" -eq 2 ] && say "cannot check the build: $SMOKE"
    kept="$current"
    [ -f "$RECORD" ] || record "$current" "found installed" "$SMOKE"
  elif [ "$rc" -eq 3 ]; then
    say "the smoke test failed for a reason a rebuild would not cure: $SMOKE"
    exit 1
  else
    say "the installed build does not run here: rebuilding"
    WHY="the installed $current build failed the smoke test: $SMOKE"
    # Go on with the builds more conservative than the one that failed.
    next=()
    for kind in "${PLAN[@]}"; do
      if [ "$(rank "$kind")" -gt "$(rank "$current")" ]; then next+=("$kind"); fi
    done
    PLAN=("${next[@]}")
  fi
else
  [ -n "$have" ] && say "llama-cpp-python $have installed, want $VERSION: rebuilding"
fi

if [ -z "$kept" ]; then
  for kind in ${PLAN[@]+"${PLAN[@]}"}; do
    build "$kind"
    rc=0; smoke || rc=$?
    if [ "$rc" -eq 0 ] || [ "$rc" -eq 2 ]; then
      kept="$kind"
      record "$kind" "$WHY" "$SMOKE"
      break
    elif [ "$rc" -eq 3 ]; then
      record "$kind" "$WHY" "$SMOKE"
      say "the smoke test failed for a reason a rebuild would not cure: $SMOKE"
      exit 1
    fi
    WHY="the $kind build failed the smoke test: $SMOKE"
  done
  if [ -z "$kept" ]; then
    record "none" "$WHY" "${SMOKE:-no build left to try}"
    say "no build of llama.cpp runs on this machine: $WHY"
    exit 1
  fi
fi
kept_why() {
  "$PY" - "$RECORD" <<'EOF2'
import json, sys
d = json.load(open(sys.argv[1]))
print("why: %s; smoke test: %s (recorded in %s)" % (d["why"], d["smoke"], sys.argv[1]))
EOF2
}
say "kept the $kept build: $(kept_why)"

if [ -z "$(installed_version jsonschema)" ]; then
  say "pip install jsonschema"
  "$PY" -m pip install --quiet jsonschema
fi

# The OpenAI-compatible server (`python -m llama_cpp.server`: tests/service/openai_llamacpp.rs,
# tests/service/ab.rs, server_bench.py) needs the `server` extra. llama-cpp-python is installed at
# $VERSION by now, so pip only adds the extra's pure-Python dependencies (uvicorn, fastapi, ...).
if ! "$PY" -c 'import llama_cpp.server.app, uvicorn, fastapi, sse_starlette, starlette_context, pydantic_settings' 2>/dev/null; then
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
