#!/usr/bin/env bash
# Runs every benchmark against one build and prints a summary (README.md has the targets and the
# latest figures). Called by `make bench` as `bash bench/run.sh BUILD_DIR`.
#
#   bash bench/run.sh [BUILD_DIR]        (default: build)
#   QUICK=1 bash bench/run.sh BUILD_DIR  fewer runs, for a smoke check
#
# Needs hyperfine and bwrap for the jail startup comparison (skipped with a note without them),
# root for the idle-memory figures (reads the kernels' /proc/PID/smaps_rollup), and Debian's
# python3-ipykernel and python3-jupyter-client for the density comparison's Jupyter column
# (`scripts/setup.sh --bench`, which `make bench` runs; "not installed" without them).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=$(realpath "${1:-build}")
BIN=$BUILD/mcp-executor
PY=/usr/bin/python3
export MCPX_BIN=$BIN

if [[ ! -x $BIN ]]; then
  echo "no $BIN: build first (make build, or cmake --build $BUILD)" >&2
  exit 1
fi
for prog in startup_bench list_files_bench jail_spawn_bench; do
  if [[ ! -x $BUILD/bench/$prog ]]; then
    echo "no $BUILD/bench/$prog: build the bench targets (cmake --build $BUILD)" >&2
    exit 1
  fi
done

if [[ -n ${QUICK:-} ]]; then
  STARTUP_RUNS=20 SPAWN_RUNS=20 CALLS=100 PLOTS=5 SESSION_RUNS=1 INSTALL_RUNS=1 CONCURRENT=12
else
  STARTUP_RUNS=200 SPAWN_RUNS=200 CALLS=1000 PLOTS=30 SESSION_RUNS=5 INSTALL_RUNS=5 CONCURRENT=32
fi

LOG=$(mktemp /tmp/mcpx-bench-XXXXXX.log)
FAILED=()
section() { printf '\n== %s\n' "$1" | tee -a "$LOG"; }
# Runs one benchmark, keeps its output in the log, notes a failure and goes on.
run() {
  local name=$1
  shift
  if ! "$@" 2>&1 | tee -a "$LOG"; then FAILED+=("$name"); fi
}

echo "mcp-executor benchmarks: $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $(nproc) CPUs," \
  "load $(cut -d' ' -f1-3 /proc/loadavg), binary $BIN" | tee "$LOG"

section "1. spawn -> initialize response (target p50 < 20 ms)"
run startup "$BUILD/bench/startup_bench" "$BIN" "$STARTUP_RUNS"

section "2. list_files recursive over 10,000 files (target < 50 ms)"
run list_files "$BUILD/bench/list_files_bench" 10000
run list_files_stdio "$PY" "$HERE/list_files_bench.py" 10000

section "3. jail startup: python3 -c pass bare / bwrap / mcp-executor exec (target: jail overhead below bwrap's)"
if command -v hyperfine >/dev/null && command -v bwrap >/dev/null; then
  run jail_startup bash "$HERE/jail_startup.sh" "$BIN" --style basic
else
  echo "skipped: needs hyperfine and bwrap (scripts/setup.sh installs them)" | tee -a "$LOG"
fi
run jail_spawn "$BUILD/bench/jail_spawn_bench" "$SPAWN_RUNS"

section "4. execute_python round trip on a warm session (target p50 < 1 ms) and a plot's round trip"
run execute_roundtrip "$PY" "$HERE/execute_roundtrip.py" "$CALLS" "$PLOTS"

section "5. new session's first call: warm pool vs --warm 0; idle memory per session"
run session "$PY" "$HERE/session_bench.py" "$SESSION_RUNS"

if [[ $(id -u) == 0 ]]; then
  section "6. a retrying fork loop: call to reply, root server and uid 65534 server"
  run fork_loop "$PY" "$HERE/fork_loop_stop.py" 3
fi

section "7. install_package from a local index and a wheelhouse vs pip into a fresh venv"
run install "$PY" "$HERE/install_bench.py" "$INSTALL_RUNS"

section "8. reply sizes of a new user's analysis session (bytes on the wire, bytes a model reads)"
run replies "$PY" "$HERE/reply_sizes.py"

section "9. density (issue 9): idle PSS, new sessions, plot, x = 1, spawn, $CONCURRENT sessions at once; vs Jupyter and python3"
run density "$PY" "$HERE/density_bench.py" --calls "$CALLS" --plots "$PLOTS" \
  --startup-runs "$STARTUP_RUNS" --concurrent "$CONCURRENT"

section "summary"
grep -E '^(density \(issue 9\)|\|[ -]|startup to initialize|Workspace::List recursive \(openat2\)|list_files (tool|recursive via)|Benchmark [0-9]|  Time \(mean|  Spawn \(to execve\)|execute_python\(|plot \(|new session|idle memory|(root|uid 65534) server |benchdep-b|benchpkg|  install_package|  pip install|  first import|long print|total )' "$LOG" || true
echo "full output: $LOG"
if ((${#FAILED[@]})); then
  echo "FAILED: ${FAILED[*]}"
  exit 1
fi
