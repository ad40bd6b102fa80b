#!/usr/bin/env bash
# Installs (once) the pinned official openai npm package and zod into tests/node/node_modules
# (git-ignored) with `npm ci` from tests/node/package-lock.json, for the Node SDK test
# (tests/node/sdk.mjs, run by tests/service/openai.rs). Prints the folder to run node in.
set -euo pipefail
cd "$(dirname "$0")/../tests/node"
if ! node -e 'const p=require("./node_modules/openai/package.json"), l=require("./package-lock.json"); process.exit(p.version === l.packages["node_modules/openai"].version ? 0 : 1)' 2>/dev/null; then
  npm ci --no-audit --no-fund --loglevel=error >&2
fi
pwd
