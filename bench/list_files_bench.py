#!/usr/bin/python3
"""Times `list_files` recursive over a 10,000-file workspace through the real server (stdio,
JSON encode/decode on both sides included). Usage: MCPX_BIN=build/mcp-executor list_files_bench.py
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "pylib"))
from mcp_client import McpClient  # noqa: E402


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    with McpClient() as c:
        for d in range(100):
            os.makedirs(os.path.join(c.workspace, "run%d" % d))
            for f in range(n // 100):
                open(os.path.join(c.workspace, "run%d" % d, "part-%d.csv" % f), "w").close()
        times = []
        for _ in range(10):
            t0 = time.perf_counter()
            r = c.call("list_files", {"recursive": True})
            times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        s = r["structuredContent"]
        print("list_files recursive via server: %d entries (truncated=%s), p50 %.1f ms, min %.1f ms"
              % (s["count"], s["truncated"], times[len(times) // 2], times[0]))


if __name__ == "__main__":
    main()
