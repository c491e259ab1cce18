#!/usr/bin/env bash
# Installs what the build, the sandbox's Python and the tests need. Idempotent: when everything is
# present it only checks (well under a second) and changes nothing.
#
#   bash scripts/setup.sh           what `make build`, `make run` and `make test` need
#   bash scripts/setup.sh --bench   that, plus what only the benchmarks compare against (`make bench`)
set -euo pipefail
cd "$(dirname "$0")/.."

BENCH=0
case "${1:-}" in
  "") ;;
  --bench) BENCH=1 ;;
  *)
    echo "usage: bash scripts/setup.sh [--bench]" >&2
    exit 2
    ;;
esac

# Debian packages: build, libraries, the sandbox's Python stack, test and bench tools.
PACKAGES=(
  build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev clang-format
  libseccomp-dev libcap-dev nlohmann-json3-dev libspdlog-dev libgtest-dev libgmock-dev googletest
  python3 python3-dev python3-numpy python3-pandas python3-matplotlib python3-venv python3-pip
  python3-pytest python3-wheel python3-setuptools python3-ipython python3-nbformat fonts-dejavu-core
  bubblewrap hyperfine nodejs npm
)
# Benchmarks only: a Jupyter kernel as the baseline of bench/density_bench.py (issue 9). Kept out
# of the default set so that `make test` and `make run` users do not get ipykernel.
BENCH_PACKAGES=(python3-ipykernel python3-jupyter-client)
if ((BENCH)); then PACKAGES+=("${BENCH_PACKAGES[@]}"); fi

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  if [[ "$status" != "install ok installed" ]]; then
    # npm ships with some nodejs builds (e.g. nodesource); count it present when the command is.
    if [[ "$p" == npm ]] && command -v npm >/dev/null 2>&1; then continue; fi
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=()
  if [[ $(id -u) -ne 0 ]]; then SUDO=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  # A fresh VM often runs unattended-upgrades at boot: wait for its dpkg lock, do not fail on it.
  lock=(-o DPkg::Lock::Timeout=600)
  "${SUDO[@]}" apt-get "${lock[@]}" update -qq
  "${SUDO[@]}" apt-get "${lock[@]}" install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# The interop tests' npm packages (the TypeScript SDK client, the MCP Inspector), pinned in
# tests/interop/package-lock.json: installed when one of them is missing.
if [[ -f tests/interop/package.json ]]; then
  if ! (cd tests/interop && node -e '
      const fs = require("fs");
      const deps = Object.keys(require("./package.json").devDependencies || {});
      process.exit(deps.every((d) => fs.existsSync(`node_modules/${d}/package.json`)) ? 0 : 1)'); then
    echo "setup: installing the npm packages of tests/interop" >&2
    (cd tests/interop && npm ci --no-audit --no-fund --loglevel=error >&2)
  fi
fi
