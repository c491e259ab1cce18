#!/usr/bin/env bash
# Runs the interop suites: the official TypeScript MCP SDK client drives the server over stdio.
# Usage: bash tests/interop/run.sh /path/to/mcp-executor   (ctest calls it this way)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [[ $# -ne 1 ]]; then
  echo "usage: $0 /path/to/mcp-executor" >&2
  exit 2
fi
if [[ ! -x "$1" ]]; then
  echo "interop: server binary '$1' does not exist or is not executable (build it first)" >&2
  exit 1
fi
bin="$(realpath "$1")"

if ! command -v node >/dev/null 2>&1; then
  echo "interop: node is not installed (run scripts/setup.sh)" >&2
  exit 1
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if ((node_major < 18)); then
  echo "interop: node $(node --version) is too old; the MCP SDK needs node >= 18" >&2
  exit 1
fi
if [[ ! -f "$here/node_modules/@modelcontextprotocol/sdk/package.json" ]]; then
  echo "interop: $here/node_modules is missing the MCP TypeScript SDK;" \
    "run scripts/setup.sh (or: cd tests/interop && npm ci)" >&2
  exit 1
fi

cd "$here"
shopt -s nullglob
tests=(./*.test.mjs)
if ((${#tests[@]} == 0)); then
  echo "interop: no *.test.mjs files in $here" >&2
  exit 1
fi
# Test files run one at a time where node can be told so (>= 20.10): each test spawns servers.
flags=(--test --test-reporter=spec)
if node --help | grep -q -- '--test-concurrency'; then flags+=(--test-concurrency=1); fi
MCPX_BIN="$bin" exec node "${flags[@]}" "${tests[@]}"
