#!/usr/bin/python3
"""Round trips of execute_python through the real server over stdio, on a warm session.

1. `x = 1`: p50/p99 over N calls (default 1000; target p50 < 1 ms).
2. One small matplotlib figure per call: the call's round trip (render + PNG + base64 + JSON both
   ways) next to matplotlib's own savefig time for the same figure, measured inside the kernel
   with time.perf_counter in the same call.
3. The same cell without that savefig, against that savefig time.

Usage: MCPX_BIN=build/mcp-executor bench/execute_roundtrip.py [N] [PLOTS]
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "pylib"))
from mcp_client import McpClient  # noqa: E402

# The figure is left open, so the kernel also collects it as the call's one image block.
PLOT_CODE = """\
import io, time
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(4, 3), dpi=80)
ax.plot([1, 3, 2, 4])
_t0 = time.perf_counter()
fig.savefig(io.BytesIO(), format="png")
print((time.perf_counter() - _t0) * 1000.0)
"""

# The same plot cell without the timed savefig: what a user's plotting cell costs end to end
# (figure creation + the kernel's capture + transport), set against the savefig of a fresh
# figure measured by PLOT_CODE (a first draw costs more than the context's repeated ones). The
# PLOT_CODE cell itself draws twice: its own savefig, then the capture.
PLOT_ONLY_CODE = """\
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(4, 3), dpi=80)
ax.plot([1, 3, 2, 4])
"""

# Context for the plot figure, outside the timed calls: what the kernel's own capture costs
# (it saves with bbox_inches="tight", which draws the figure twice) next to a plain savefig.
CAPTURE_COST_CODE = """\
import io, statistics, time
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(4, 3), dpi=80)
ax.plot([1, 3, 2, 4])
def _cost(**kw):
    ts = []
    for _ in range(10):
        t0 = time.perf_counter()
        fig.savefig(io.BytesIO(), format="png", **kw)
        ts.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(ts)
print("%.2f %.2f" % (_cost(), _cost(bbox_inches="tight")))
plt.close(fig)
"""


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def timed_call(c, code):
    t0 = time.perf_counter()
    r = c.call("execute_python", {"code": code})
    ms = (time.perf_counter() - t0) * 1000.0
    s = r["structuredContent"]
    if s["status"] != "ok":
        raise SystemExit("execute_python failed: %s" % json.dumps(s)[:2000])
    return ms, r


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    plots = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    with McpClient() as c:
        # Session start (warm pool or not) and first-use costs are measured elsewhere.
        for _ in range(20):
            timed_call(c, "x = 1")
        rtt = []
        kernel = []
        for _ in range(n):
            ms, r = timed_call(c, "x = 1")
            rtt.append(ms)
            kernel.append(r["structuredContent"]["duration_ms"])
        print("execute_python('x = 1') round trip over %d calls: p50 %.3f ms, p99 %.3f ms, "
              "min %.3f ms, max %.3f ms (kernel-side duration_ms p50 %.3f ms)"
              % (n, pct(rtt, 50), pct(rtt, 99), min(rtt), max(rtt), pct(kernel, 50)))

        for _ in range(3):
            timed_call(c, PLOT_CODE)
        rtt = []
        savefig = []
        sizes = []
        for _ in range(plots):
            ms, r = timed_call(c, PLOT_CODE)
            s = r["structuredContent"]
            if len(s["images"]) != 1:
                raise SystemExit("expected one image, got %d" % len(s["images"]))
            rtt.append(ms)
            savefig.append(float(s["stdout"].strip()))
            sizes.append(s["images"][0]["bytes"])
        print("plot (4x3 in @80 dpi, one line) over %d calls: round trip p50 %.2f ms, p90 %.2f ms;"
              " savefig inside the kernel p50 %.2f ms; overhead p50 %.2f ms; PNG %d bytes"
              % (plots, pct(rtt, 50), pct(rtt, 90), pct(savefig, 50),
                 pct(rtt, 50) - pct(savefig, 50), sizes[0]))
        _, r = timed_call(c, CAPTURE_COST_CODE)
        plain, tight = (float(v) for v in r["structuredContent"]["stdout"].split())
        print("  context: same figure inside the kernel, savefig p50 %.2f ms plain, %.2f ms with "
              "bbox_inches='tight'" % (plain, tight))
        if plots:
            rtt = []
            for _ in range(plots):
                ms, r = timed_call(c, PLOT_ONLY_CODE)
                if len(r["structuredContent"]["images"]) != 1:
                    raise SystemExit("expected one image")
                rtt.append(ms)
            print("plot cell without its own savefig over %d calls: round trip p50 %.2f ms, "
                  "%.2fx the savefig p50 above" % (plots, pct(rtt, 50),
                                                   pct(rtt, 50) / pct(savefig, 50)))


if __name__ == "__main__":
    main()
