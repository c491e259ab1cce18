"""The density figures (issue 9) for mcp-executor, through the real server over stdio
(MCPX_BIN). Used by density_bench.py; each function returns a dict of numbers and detail lines.
"""
import os
import re
import statistics
import subprocess
import time

from session_bench import descendants, kernel_pids, proc_table, pss_kib, until_quiet
from execute_roundtrip import PLOT_CODE, PLOT_ONLY_CODE, pct
from mcp_client import BIN, McpClient
import policy_files

STACK = "import numpy, pandas, matplotlib.pyplot"


kernels = kernel_pids


def settle(server_pid, min_kernels, quiet_s=1.0, timeout=180.0):
    """Waits until at least `min_kernels` kernels exist and nothing below the server has used
    CPU or changed for `quiet_s` (preloads and pool refills finished)."""
    def snapshot():
        if len(kernels(server_pid)) < min_kernels:
            return None
        t = proc_table()
        return tuple((p, t[p][3]) for p in descendants(server_pid) if p in t)

    if until_quiet(snapshot, quiet_s, timeout):
        return
    raise RuntimeError("processes of server %d did not settle within %.0f s" % (server_pid,
                                                                               timeout))


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def tree_memory(server_pid):
    """PSS (KiB) of the server and of everything below it, by role. Raises PermissionError
    when the kernels' smaps_rollup cannot be read (another uid: needs root)."""
    ks = set(kernels(server_pid))
    t = proc_table()
    mem = {"server": pss_kib(server_pid)[0], "kernels": [], "inits": [], "other": []}
    for p in descendants(server_pid):
        try:
            pss = pss_kib(p)[0]
        except FileNotFoundError:
            continue  # exited meanwhile
        if p in ks:
            mem["kernels"].append(pss)
        elif t.get(p, (0, ""))[1] == "mcpx-init":
            mem["inits"].append(pss)  # every sandbox's PID 1, the zygote's and the sessions'
        else:
            mem["other"].append(pss)  # the zygote, the font cache's preparation
    mem["total"] = mem["server"] + sum(mem["kernels"]) + sum(mem["inits"]) + sum(mem["other"])
    return mem


def call(c, code, session, timeout=180.0):
    """One execute_python; returns (ms from the call to the reply, structuredContent)."""
    t0 = time.perf_counter()
    r = c.call("execute_python", {"code": code, "session": session}, timeout=timeout)
    ms = (time.perf_counter() - t0) * 1000.0
    s = r["structuredContent"]
    if s["status"] != "ok":
        raise RuntimeError("execute_python in %s failed: %s" % (session, str(s)[:1000]))
    return ms, s


def mib(kib):
    return kib / 1024.0


def sessions_and_memory(c, new, idle):
    """`new` sessions opened back to back, first cell the data stack (timed); then more up to
    `idle` sessions, and the idle memory of the whole server tree."""
    settle(c.proc.pid, 1)  # the warm pool's kernel is ready, as a user would find it
    times = [call(c, STACK, "s%d" % i)[0] for i in range(new)]
    for i in range(new, idle):
        call(c, STACK, "s%d" % i)
    out = {"new_ms": times, "new_p50_ms": statistics.median(times), "new_worst_ms": max(times)}
    settle(c.proc.pid, idle)
    try:
        mem = tree_memory(c.proc.pid)
    except PermissionError:
        out["idle_note"] = "needs root"
        return out
    out["idle_pss_mib"] = mib(mem["total"]) / idle
    out["idle_tree"] = mem
    k = mem["kernels"]
    out["details"] = [
        "mcp-executor, %d sessions, server with its default warm pool, all idle: PSS of the "
        "server's whole tree %.1f MiB = %.1f MiB a session (the figure compared)" % (
            idle, mib(mem["total"]), out["idle_pss_mib"]),
        "  kernels (%d, the pool's included): %.1f MiB each (min %.1f, max %.1f); jail inits %d, "
        "%.0f KiB total; server %.1f MiB; other %d processes %.1f MiB" % (
            len(k), mib(statistics.mean(k)), mib(min(k)), mib(max(k)), len(mem["inits"]),
            sum(mem["inits"]), mib(mem["server"]), len(mem["other"]), mib(sum(mem["other"]))),
    ]
    return out


def roundtrips(c, calls, plots):
    """`x = 1` and a small figure on a warm session (as execute_roundtrip.py)."""
    for _ in range(20):
        call(c, "x = 1", "s0")
    rtt, kernel = [], []
    for _ in range(calls):
        ms, s = call(c, "x = 1", "s0")
        rtt.append(ms)
        kernel.append(s["duration_ms"])
    out = {"x1_p50_ms": pct(rtt, 50), "x1_p99_ms": pct(rtt, 99), "x1_kernel_ms": pct(kernel, 50)}
    for _ in range(3):
        call(c, PLOT_CODE, "s0")
    # The plot cell as a user writes it (no savefig of its own: that would draw twice), against
    # matplotlib's own savefig of the same fresh figure, timed inside the kernel.
    prtt, savefig = [], []
    for _ in range(plots):
        _, s = call(c, PLOT_CODE, "s0")
        savefig.append(float(s["stdout"].strip()))
        ms, s = call(c, PLOT_ONLY_CODE, "s0")
        if len(s["images"]) != 1:
            raise RuntimeError("plot: expected one image, got %d" % len(s["images"]))
        prtt.append(ms)
    out.update(plot_rtt_ms=pct(prtt, 50), plot_savefig_ms=pct(savefig, 50))
    out["plot_ratio"] = out["plot_rtt_ms"] / out["plot_savefig_ms"]
    return out


def startup(runs):
    """spawn -> initialize response p50: bench/startup_bench next to the binary when built,
    else timed here (Python's spawn adds about a millisecond)."""
    prog = os.path.join(os.path.dirname(os.path.abspath(BIN)), "bench", "startup_bench")
    if os.access(prog, os.X_OK):
        text = subprocess.run([prog, BIN, str(runs)], check=True, capture_output=True,
                              text=True).stdout
        m = re.search(r"p50 ([0-9.]+) ms", text)
        return {"startup_p50_ms": float(m.group(1)), "startup_how": "startup_bench"}
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        with McpClient():
            times.append((time.perf_counter() - t0) * 1000.0)
    return {"startup_p50_ms": statistics.median(times), "startup_how": "McpClient"}


def many_sessions(state_dir, tmp, count):
    """`count` sessions alive at once on a policy that allows them; returns the opening times,
    server RSS and the tree's PSS."""
    # Memory 512 MiB a session so that the limits together stay within this machine's RAM;
    # inotify 3 keeps (sessions + 2) x instances under the host's per-user 128 (docs/POLICIES.md).
    policy = policy_files.write_policy(tmp, "density-%d.json" % count, limits={
        "max_sessions": count, "memory_mb": 512, "inotify_instances": 3},
        name="density-%d" % count)
    out = {"count": count, "cpus": os.cpu_count()}
    with McpClient(args=["--policy", policy], state_dir=state_dir) as c:
        settle(c.proc.pid, 1)
        t0 = time.perf_counter()
        opens = [call(c, STACK, "c%d" % i)[0] for i in range(count)]
        out["open_total_s"] = time.perf_counter() - t0
        out.update(open_p50_ms=statistics.median(opens), open_worst_ms=max(opens))
        settle(c.proc.pid, count)
        out["server_rss_mib"] = mib(rss_kib(c.proc.pid))
        out["processes"] = len(descendants(c.proc.pid)) + 1
        try:
            mem = tree_memory(c.proc.pid)
        except PermissionError:
            out["pss_note"] = "needs root"
            return out
        out["total_pss_mib"] = mib(mem["total"])
        out["kernel_pss_mib"] = mib(statistics.mean(mem["kernels"]))
        out["server_pss_mib"] = mib(mem["server"])
        with open("/proc/meminfo") as f:
            avail = int(re.search(r"MemAvailable:\s+(\d+)", f.read()).group(1))
        out["mem_available_mib"] = mib(avail)
    return out


def measure(state_dir, calls, plots, new, idle, startup_runs):
    """Rows 1 to 5; `state_dir` is kept for many_sessions so the matplotlib cache is built once."""
    with McpClient(args=["--warm", "0"], state_dir=state_dir) as c:
        call(c, "x = 1", "warmup")  # builds the matplotlib font cache, outside every timing
    out = {}
    with McpClient(state_dir=state_dir) as c:
        out.update(sessions_and_memory(c, new, idle))
        out.update(roundtrips(c, calls, plots))
    out.update(startup(startup_runs))
    return out
