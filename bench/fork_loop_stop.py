#!/usr/bin/python3
"""How long a runaway fork loop lives: from the execute_python call to its reply, through the
real server over stdio, as root (cgroup pids controller when usable) and as uid 65534 (on
cgroup v1 no cgroup: the sandbox's init stops it at the process limit). R runs each (default 5).

Usage: MCPX_BIN=build/mcp-executor bench/fork_loop_stop.py [R] [TIMEOUT_S]    (as root)
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "pylib"))
from mcp_client import McpClient  # noqa: E402

LOOP = """
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
"""


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    timeout_s = int(sys.argv[2]) if len(sys.argv) > 2 else 60
    if os.geteuid() != 0:
        sys.exit("run as root: the unprivileged case starts the server as uid 65534")
    for label, user in (("root server", None), ("uid 65534 server", 65534)):
        for _ in range(runs):
            with McpClient(user=user) as c:
                c.call("execute_python", {"code": "1", "session": "bomb"}, timeout=60)
                t0 = time.monotonic()
                r = c.call("execute_python", {"code": LOOP, "session": "bomb",
                                              "timeout_seconds": timeout_s},
                           timeout=timeout_s + 60)
                took = time.monotonic() - t0
                s = r["structuredContent"]
                print("%-17s %7.2f s  %-8s %s" % (label, took, s["status"], s.get("kill_reason")))


if __name__ == "__main__":
    main()
