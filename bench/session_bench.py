#!/usr/bin/python3
"""Session start and idle memory, through the real server over stdio.

1. A new session's first execute_python("x = 1"): with the warm pool (`serve --warm 1`, measured
   once the pool's kernel has finished its preload) vs without (`serve --warm 0`: jail + Python
   start + preload of the policy's modules happen inside the call). R runs of each (default 5).
2. Idle memory per session: PSS of each kernel's python process (/proc/PID/smaps_rollup, needs
   root or the same uid) with the default policy's numpy/pandas/matplotlib preloaded, for 1 and
   for 3 idle sessions (PSS splits shared pages between the processes that map them).

Usage: MCPX_BIN=build/mcp-executor bench/session_bench.py [R]
"""
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "pylib"))
from mcp_client import McpClient  # noqa: E402


def proc_table():
    """pid -> (ppid, comm, state, cpu ticks) for every process we can read."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        rest = stat[stat.rindex(")") + 2:].split()
        table[int(name)] = (int(rest[1]), comm, rest[0], int(rest[11]) + int(rest[12]))
    return table


def until_quiet(snapshot, quiet_s, timeout):
    """Polls snapshot() until it returns the same value, not None, for `quiet_s`; False if
    `timeout` passes first (a snapshot is the processes' CPU ticks; None: not there yet)."""
    deadline = time.monotonic() + timeout
    last, since = None, None
    while time.monotonic() < deadline:
        snap = snapshot()
        if snap is not None and snap == last:
            since = since or time.monotonic()
            if time.monotonic() - since >= quiet_s:
                return True
        else:
            since = None
        last = snap
        time.sleep(0.05)
    return False


def descendants(root):
    """Every process below `root` (jail inits, kernels, helpers such as a zygote)."""
    t = proc_table()
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        kids = [p for p, (pp, _, _, _) in t.items() if pp == parent]
        found += kids
        frontier += kids
    return sorted(found)


def kernel_pids(server_pid):
    """The kernels' python processes below the server, cold (server -> jail init -> python) or
    forked from the zygote (deeper): every one runs mcpx_kernel.py."""
    kernels = []
    for p in descendants(server_pid):
        try:
            with open("/proc/%d/cmdline" % p, "rb") as f:
                if any(a.endswith(b"mcpx_kernel.py") for a in f.read().split(b"\0")):
                    kernels.append(p)
        except OSError:
            pass
    return sorted(kernels)


def wait_idle(server_pid, count, timeout=60.0):
    """Waits until `count` kernels exist and none used CPU for 0.5 s (preload finished)."""
    deadline = time.monotonic() + timeout
    last = None
    stable_since = None
    while time.monotonic() < deadline:
        pids = kernel_pids(server_pid)
        t = proc_table()
        snap = tuple((p, t[p][3]) for p in pids if p in t)
        if len(snap) >= count and snap == last:
            if stable_since is None:
                stable_since = time.monotonic()
            elif time.monotonic() - stable_since >= 0.5:
                return pids
        else:
            stable_since = None
        last = snap
        time.sleep(0.05)
    raise SystemExit("kernels of server %d did not settle within %.0f s" % (server_pid, timeout))


def first_call(state_dir, warm):
    with McpClient(args=["--warm", str(warm)], state_dir=state_dir) as c:
        if warm:
            wait_idle(c.proc.pid, warm)
        t0 = time.perf_counter()
        r = c.call("execute_python", {"code": "x = 1", "session": "fresh"})
        ms = (time.perf_counter() - t0) * 1000.0
        if r["structuredContent"]["status"] != "ok":
            raise SystemExit("first call failed: %r" % r["structuredContent"])
        return ms


def pss_kib(pid):
    values = {}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                values[parts[0][:-1]] = int(parts[1])
    return values["Pss"], values["Rss"]


def idle_memory(state_dir, sessions):
    with McpClient(args=["--warm", "0"], state_dir=state_dir) as c:
        for i in range(sessions):
            c.call("execute_python", {"code": "x = 1", "session": "s%d" % i})
        pids = wait_idle(c.proc.pid, sessions)
        t = proc_table()
        inits = [t[p][0] for p in pids]
        pss = [pss_kib(p) for p in pids]
        init_pss = [pss_kib(p)[0] for p in inits]
        listed = c.call("list_sessions")["structuredContent"]["sessions"]
        cgroup_mib = [s["memory_bytes"] / 2**20 for s in listed if s.get("memory_bytes")]
        print("idle memory, %d session(s): python PSS %s MiB (RSS %s MiB), jail init PSS %s KiB; "
              "cgroup memory usage %s MiB"
              % (sessions, ", ".join("%.1f" % (p / 1024) for p, _ in pss),
                 ", ".join("%.1f" % (r / 1024) for _, r in pss),
                 ", ".join(str(k) for k in init_pss),
                 ", ".join("%.1f" % m for m in cgroup_mib) or "n/a"))


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    with tempfile.TemporaryDirectory(prefix="mcpx-session-bench-") as tmp:
        state_dir = os.path.join(tmp, "state")
        os.makedirs(state_dir)
        # Builds the matplotlib font cache once, so no run below pays for it.
        first_call(state_dir, 0)
        cold = [first_call(state_dir, 0) for _ in range(runs)]
        warm = [first_call(state_dir, 1) for _ in range(runs)]
        print("new session's first execute_python('x = 1'), %d runs each: warm pool median %.1f ms"
              " (min %.1f, max %.1f); --warm 0 median %.1f ms (min %.1f, max %.1f)"
              % (runs, statistics.median(warm), min(warm), max(warm), statistics.median(cold),
                 min(cold), max(cold)))
        if os.geteuid() != 0:
            print("idle memory: skipped (reading another uid's smaps_rollup needs root)")
            return
        idle_memory(state_dir, 1)
        idle_memory(state_dir, 3)


if __name__ == "__main__":
    main()
