#!/usr/bin/python3
"""Density (issue 9): how many idle data-analysis sessions fit and how fast new ones start,
mcp-executor next to a Jupyter kernel and plain python3, each figure against its goal.

mcp-executor is driven through the real server over stdio (MCPX_BIN, tests/pylib/mcp_client.py);
Jupyter with jupyter_client (Debian's python3-ipykernel and python3-jupyter-client; the column
says "not installed" without them: `scripts/setup.sh --bench`); python3 is /usr/bin/python3.
Rows:

1. idle PSS per session with numpy, pandas and matplotlib.pyplot imported, IDLE sessions
   (default 8): mcp-executor's is the PSS of the server's whole process tree (server, jail
   inits, kernels, the warm pool's kernel) divided by IDLE; Jupyter's and python3's the mean
   PSS of IDLE kernels / processes. From /proc/PID/smaps_rollup (mcp-executor's kernels: root).
2. NEW (6) sessions started back to back, first cell the data stack, each timed from the call
   to the reply (mcp-executor: one server as shipped, warm pool settled first; Jupyter: kernel
   start to the cell's execute_reply; python3: `python3 -c` of the imports, start to exit).
3. one small figure's round trip over matplotlib's own savefig of it, timed in the same cell
   (execute_roundtrip.py's figure; Jupyter with `%matplotlib inline`, until the cell's idle).
4. execute_python("x = 1") round trip p50 and its kernel-side duration_ms; Jupyter's until
   the execute_reply.
5. spawn of `mcp-executor serve` to its initialize response, p50 (startup_bench).
6. CONCURRENT (32) sessions alive at once, opened back to back with the data stack, on a policy
   allowing them (default's limits, max_sessions CONCURRENT, memory_mb 512): server RSS and the
   PSS of the server's whole tree.

Usage: MCPX_BIN=build/mcp-executor bench/density_bench.py [--calls N] [--plots N] [--new N]
       [--idle N] [--startup-runs N] [--concurrent N (0: skip)] [--json FILE]
"""
import argparse
import json
import os
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "pylib"))
import density_baselines  # noqa: E402
import density_mcpx  # noqa: E402

GOAL_IDLE_MIB = 15.0
GOAL_NEW_P50_MS, GOAL_NEW_WORST_MS = 50.0, 100.0
GOAL_PLOT_RATIO = 1.3
GOAL_X1_OF_JUPYTER = 0.05
GOAL_STARTUP_MS = 20.0


def attempt(label, fn, *args):
    """Runs one column's measurements; a failure becomes {"error": ...} and is printed."""
    try:
        return fn(*args)
    except Exception as e:  # noqa: BLE001 (one column failing must not lose the others)
        traceback.print_exc()
        return {"error": "%s: %s" % (type(e).__name__, e), "label": label}


def cell(res, key, fmt, scale=1.0):
    if "missing" in res:
        return res["missing"]
    if "error" in res:
        return "failed"
    if key not in res:
        return res.get("idle_note", "n/a") if key == "idle_pss_mib" else "n/a"
    return fmt % (res[key] * scale)


def verdict(ok):
    return "n/a" if ok is None else ("met" if ok else "missed")


def rows(m, j, p, new, idle, many):
    def new_cell(r):
        if "new_p50_ms" not in r:
            return cell(r, "new_p50_ms", "")
        return "%.0f / %.0f ms" % (r["new_p50_ms"], r["new_worst_ms"])

    def plot_cell(r):
        if "plot_ratio" not in r:
            return cell(r, "plot_ratio", "")
        return "%.2fx (%.0f / %.0f ms)" % (r["plot_ratio"], r["plot_rtt_ms"], r["plot_savefig_ms"])

    def x1_cell(r, kernel):
        if "x1_p50_ms" not in r:
            return cell(r, "x1_p50_ms", "")
        if kernel:
            return "%.3f ms (kernel %.3f)" % (r["x1_p50_ms"], r["x1_kernel_ms"])
        return "%.3f ms" % r["x1_p50_ms"]

    x1_goal = j["x1_p50_ms"] * GOAL_X1_OF_JUPYTER if "x1_p50_ms" in j else None
    out = [
        ["idle PSS each, %d sessions, stack loaded" % idle,
         cell(m, "idle_pss_mib", "%.1f MiB"), cell(j, "idle_pss_mib", "%.1f MiB"),
         cell(p, "idle_pss_mib", "%.1f MiB"), "<= %.0f MiB" % GOAL_IDLE_MIB,
         verdict(m["idle_pss_mib"] <= GOAL_IDLE_MIB if "idle_pss_mib" in m else None)],
        ["%d new sessions, stack import: p50 / worst" % new, new_cell(m), new_cell(j),
         new_cell(p), "<= %.0f / <= %.0f ms" % (GOAL_NEW_P50_MS, GOAL_NEW_WORST_MS),
         verdict(m["new_p50_ms"] <= GOAL_NEW_P50_MS and m["new_worst_ms"] <= GOAL_NEW_WORST_MS
                 if "new_p50_ms" in m else None)],
        ["plot round trip / its savefig", plot_cell(m), plot_cell(j), "n/a",
         "<= %.1fx" % GOAL_PLOT_RATIO,
         verdict(m["plot_ratio"] <= GOAL_PLOT_RATIO if "plot_ratio" in m else None)],
        ["x = 1 round trip p50", x1_cell(m, True), x1_cell(j, False), "n/a",
         "<= %.2fx Jupyter%s" % (GOAL_X1_OF_JUPYTER,
                                 " = %.3f ms" % x1_goal if x1_goal is not None else ""),
         verdict(m["x1_p50_ms"] <= x1_goal
                 if x1_goal is not None and "x1_p50_ms" in m else None)],
        ["serve spawn -> initialize p50", cell(m, "startup_p50_ms", "%.1f ms"), "n/a", "n/a",
         "< %.0f ms" % GOAL_STARTUP_MS,
         verdict(m["startup_p50_ms"] < GOAL_STARTUP_MS if "startup_p50_ms" in m else None)],
    ]
    if many is not None:
        if "total_pss_mib" in many:
            got = "RSS %.1f MiB / PSS %.0f MiB" % (many["server_rss_mib"], many["total_pss_mib"])
        elif "server_rss_mib" in many:
            got = "RSS %.1f MiB / PSS %s" % (many["server_rss_mib"], many.get("pss_note", "n/a"))
        else:
            got = "failed" if "error" in many else "n/a"
        out.append(["%d sessions on %d CPUs: server RSS / tree PSS" % (
            many.get("count", 0), os.cpu_count()), got, "n/a", "n/a", "report", "-"])
    return out


def table(body):
    head = ["row", "mcp-executor", "Jupyter", "python3", "goal", "met?"]
    widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]

    def line(r):
        return "| " + " | ".join(v.ljust(w) for v, w in zip(r, widths)) + " |"

    return "\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] +
                     [line(r) for r in body])


def details(m, j, p, many, args):
    lines = []
    if "new_ms" in m:
        lines.append("mcp-executor, %d new sessions (the first takes the warm pool's kernel): %s ms"
                     % (args.new, ", ".join("%.0f" % t for t in m["new_ms"])))
    lines += m.get("details", [])
    if "x1_p50_ms" in m:
        lines.append("mcp-executor, x = 1 over %d calls: p50 %.3f ms, p99 %.3f ms, kernel-side "
                     "duration_ms p50 %.3f ms" % (args.calls, m["x1_p50_ms"], m["x1_p99_ms"],
                                                  m["x1_kernel_ms"]))
        lines.append("mcp-executor, plot over %d calls: round trip p50 %.1f ms, savefig in the "
                     "kernel p50 %.1f ms" % (args.plots, m["plot_rtt_ms"], m["plot_savefig_ms"]))
    if "startup_p50_ms" in m:
        lines.append("mcp-executor, spawn -> initialize p50 %.2f ms over %d runs (%s)"
                     % (m["startup_p50_ms"], args.startup_runs, m["startup_how"]))
    if many and "open_total_s" in many:
        lines.append(
            "mcp-executor, %d sessions at once (policy max_sessions %d, memory_mb 512), opened "
            "back to back in %.1f s (p50 %.0f ms, worst %.0f ms); %d processes; server RSS "
            "%.1f MiB" % (many["count"], many["count"], many["open_total_s"],
                          many["open_p50_ms"], many["open_worst_ms"], many["processes"],
                          many["server_rss_mib"]))
        if "total_pss_mib" in many:
            lines.append("  PSS: whole tree %.0f MiB, kernels %.1f MiB each, server %.1f MiB; "
                         "MemAvailable after %.0f MiB" % (
                             many["total_pss_mib"], many["kernel_pss_mib"],
                             many["server_pss_mib"], many["mem_available_mib"]))
    if "missing" in j:
        lines.append("Jupyter: %s (python3-ipykernel, python3-jupyter-client: `bash "
                     "scripts/setup.sh --bench`); the x = 1 goal needs its figure" % j["missing"])
    if "new_ms" in j:
        lines.append("Jupyter, %d new kernels (start to the first cell's reply): %s ms"
                     % (args.new, ", ".join("%.0f" % t for t in j["new_ms"])))
    lines += j.get("details", [])
    if "x1_p50_ms" in j:
        lines.append("Jupyter, x = 1 over %d calls (to execute_reply): p50 %.3f ms, p99 %.3f ms; "
                     "plot over %d calls (to idle, %%matplotlib inline): p50 %.1f ms, savefig "
                     "p50 %.1f ms" % (args.calls, j["x1_p50_ms"], j["x1_p99_ms"], args.plots,
                                      j["plot_rtt_ms"], j["plot_savefig_ms"]))
    if "new_ms" in p:
        lines.append("python3 -c '%s', %d runs: %s ms" % (
            density_mcpx.STACK, args.new, ", ".join("%.0f" % t for t in p["new_ms"])))
    lines += p.get("details", [])
    for name, r in (("mcp-executor", m), ("Jupyter", j), ("python3", p), ("many sessions", many)):
        if r and "error" in r:
            lines.append("%s FAILED: %s" % (name, r["error"]))
    return lines


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=1000, help="x = 1 calls (1000)")
    ap.add_argument("--plots", type=int, default=30, help="plot calls (30)")
    ap.add_argument("--new", type=int, default=6, help="new sessions timed (6)")
    ap.add_argument("--idle", type=int, default=8, help="idle sessions for PSS (8)")
    ap.add_argument("--startup-runs", type=int, default=200, help="spawn runs (200)")
    ap.add_argument("--concurrent", type=int, default=32, help="sessions at once (32; 0 skips)")
    ap.add_argument("--json", metavar="FILE", help="save the numbers as JSON")
    args = ap.parse_args()
    args.idle = max(args.idle, args.new)

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_before = loadavg()
    with tempfile.TemporaryDirectory(prefix="mcpx-density-") as tmp:
        state_dir = os.path.join(tmp, "state")
        os.makedirs(state_dir)
        m = attempt("mcp-executor", density_mcpx.measure, state_dir, args.calls, args.plots,
                    args.new, args.idle, args.startup_runs)
        many = None
        if args.concurrent:
            many = attempt("many sessions", density_mcpx.many_sessions, state_dir, tmp,
                           args.concurrent)
            many.setdefault("count", args.concurrent)
    j = attempt("Jupyter", density_baselines.measure_jupyter, args.calls, args.plots, args.new,
                args.idle)
    p = attempt("python3", density_baselines.measure_python, args.new, args.idle)

    body = rows(m, j, p, args.new, args.idle, many)
    print("density (issue 9), %s, %d CPUs, load %s at start, %s at end" % (
        started, os.cpu_count(), load_before, loadavg()))
    print(table(body))
    for line in details(m, j, p, many, args):
        print(line)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"date": started, "cpus": os.cpu_count(), "load_start": load_before,
                       "load_end": loadavg(), "args": vars(args), "mcp-executor": m,
                       "many_sessions": many, "jupyter": j, "python3": p,
                       "table": [dict(zip(["row", "mcp-executor", "Jupyter", "python3", "goal",
                                           "met"], r)) for r in body]}, f, indent=1)
    failed = [r for r in (m, j, p, many) if r and "error" in r]
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
