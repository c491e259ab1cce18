#!/usr/bin/env bash
# Startup cost of the jail: `python3 -c pass` bare, in bubblewrap (a comparable sandbox:
# all namespaces, read-only /usr, fresh /proc and /dev), and through `mcp-executor exec`
# (every layer: userns, mounts + pivot_root, PID/net/IPC/UTS/cgroup namespaces, cgroup when
# usable, rlimits, caps, no_new_privs, Landlock, seccomp, mini init).
#
#   bench/jail_startup.sh [path/to/mcp-executor]     (hyperfine required)
set -euo pipefail
BIN=${1:-build/mcp-executor}
shift || true
BIN=$(realpath "$BIN")
PY=/usr/bin/python3
WORK=$(mktemp -d /tmp/mcpx-bench-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/workspace" "$WORK/state"

BWRAP="bwrap --unshare-all --die-with-parent --ro-bind /usr /usr \
  --symlink usr/lib /lib --symlink usr/lib64 /lib64 --symlink usr/bin /bin \
  --symlink usr/sbin /sbin --ro-bind /etc/ld.so.cache /etc/ld.so.cache \
  --ro-bind /etc/alternatives /etc/alternatives --proc /proc --dev /dev --tmpfs /tmp \
  --bind $WORK/workspace /workspace --chdir /workspace --new-session $PY -c pass"

hyperfine --warmup 5 --min-runs 40 -N \
  --command-name "bare python3 -c pass" "$PY -c pass" \
  --command-name "bwrap python3 -c pass" "$BWRAP" \
  --command-name "mcp-executor exec -c pass" \
  "$BIN exec --log-level warn --workspace $WORK/workspace --state-dir $WORK/state -c pass" \
  "$@" 2>&1
