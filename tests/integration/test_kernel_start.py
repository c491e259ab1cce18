"""A kernel that never becomes ready: the calls waiting for it get the reason, promptly, once.

Kernels import the policy's `preload` modules before they say `ready`; until then a call waits.
A preload that hangs (a package that blocks at import) or that takes the interpreter down used
to leave the call waiting forever, or restarting kernels forever. These tests plant such a
module in the state dir's package overlay (a venv over the system Python whose site-packages
the kernels import from, read-only at /opt/mcpx/packages) and name it in a test policy's
preload.
"""
import json
import os
import sys
import tempfile
import time

import pytest

from mcp_client import McpClient, text_of
from policy_files import write_policy

MODULES = {
    "mcpx_test_hang": "import time\ntime.sleep(3600)\n",
    "mcpx_test_crash": ("import os, sys\n"
                        "sys.stderr.write('starting up\\nboom: the test preload broke\\n')\n"
                        "sys.stderr.flush()\n"
                        "os._exit(7)\n"),
}


def server_with_preload(module, tmp):
    path = write_policy(tmp, "policy.json", limits={"start_timeout_s": 3}, name="test-start",
                        preload=[module], description="a preload that never ends")
    state = os.path.join(tmp, "state")
    # The server completes the venv around it (pyvenv.cfg, bin/python3) at start.
    site = os.path.join(state, "packages", "lib", "python%d.%d" % sys.version_info[:2],
                        "site-packages")
    os.makedirs(site)
    os.chmod(tmp, 0o755)
    for root, dirs, _ in os.walk(state):
        os.chmod(root, 0o755)  # the sandbox's host uid reads the overlay
    with open(os.path.join(site, module + ".py"), "w") as f:
        f.write(MODULES[module])
    return McpClient(args=("--policy", path), state_dir=state)


def call_and_time(c, session):
    t0 = time.monotonic()
    r = c.call("execute_python", {"code": "1 + 1", "session": session}, timeout=60)
    return r, time.monotonic() - t0


@pytest.mark.parametrize("module,expect", [
    ("mcpx_test_hang", "was not ready within the policy's start_timeout_s of 3 s"),
    ("mcpx_test_crash", "exited with status 7 before it was ready; its stderr ended with: "
                        "starting up\nboom: the test preload broke"),
])
def test_a_kernel_that_does_not_start_fails_the_call_with_the_reason(module, expect):
    with tempfile.TemporaryDirectory(prefix="mcpx-test-start-") as tmp:
        c = server_with_preload(module, tmp)
        try:
            r, took = call_and_time(c, "default")
            text = text_of(r)
            assert r["isError"], r
            assert text.startswith("cannot start a Python kernel: "), text
            assert expect in text, text
            # One short line for the model: what failed and what the next call does.
            assert len(json.dumps(r)) < 600, r
            assert took < 30, took
            # The server stays up, keeps no dead session, and the next call tries a new kernel
            # (which fails the same way: no endless restarts meanwhile).
            sessions = c.call("list_sessions", {})["structuredContent"]["sessions"]
            assert sessions == [], sessions
            r2, _ = call_and_time(c, "other")
            assert r2["isError"] and expect in text_of(r2), r2
            log = c.stderr_text()
            assert "did not start: it " + expect.replace("\n", "|") in log, log[-2000:]
        finally:
            assert c.close() == 0
