"""Kernels forked from the policy's zygote (src/session/zygote.h, sandbox/jail/session_fork.h).

A forked kernel must be a kernel like a cold one: its own namespaces, cgroup, /tmp and random
state, a working numpy BLAS and matplotlib after the fork, no thread or lock inherited half-held.
The zygote itself is never reachable from a session, and when it dies the server starts kernels
cold, keeps the sessions it has, and brings a new zygote up in the background.
"""
import os
import signal
import sys
import tempfile
import time

import pytest

from mcp_client import McpClient
from policy_files import write_policy

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "security", "probes"))
from harness import cmdline, descendants  # noqa: E402


def structured(c, code, session="default", timeout=60):
    r = c.call("execute_python", {"code": code, "session": session}, timeout=timeout)
    s = r["structuredContent"]
    assert s["status"] == "ok", s
    return s


def values(s):
    """`name=value` lines of a cell's stdout."""
    return dict(line.split("=", 1) for line in s["stdout"].splitlines() if "=" in line)


def zygote_pids(c):
    return [p for p in descendants(c.proc.pid) if any(a.endswith(b"mcpx_zygote.py")
                                                      for a in cmdline(p))]


def wait_for(pred, seconds=30.0):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        value = pred()
        if value:
            return value
        time.sleep(0.1)
    return pred()


@pytest.fixture(scope="module")
def server():
    c = McpClient(log_level="info")
    assert wait_for(lambda: "zygote ready" in c.stderr_text()), c.stderr_text()
    yield c
    c.close()


PROBE = """
import os, sys, threading
def ino(ns):
    return os.stat('/proc/self/ns/' + ns).st_ino
status = open('/proc/self/status').read()
field = lambda name: status.split(name + ':')[1].split()[0]
for ns in ('user', 'mnt', 'pid', 'net', 'ipc', 'uts', 'cgroup'):
    print('ns_' + ns + '=' + str(ino(ns)))
print('pid=' + str(os.getpid()))
print('uid=' + str(os.getuid()))
print('host=' + os.uname().nodename)
print('caps=' + field('CapEff') + '/' + field('CapBnd'))
print('nnp=' + field('NoNewPrivs'))
print('seccomp=' + field('Seccomp'))
print('threads=' + str(len(os.listdir('/proc/self/task'))) + '/' + str(threading.active_count()))
print('procs=' + ','.join(sorted(d for d in os.listdir('/proc') if d.isdigit())))
print('cmdline=' + open('/proc/self/cmdline', 'rb').read().replace(b'\\0', b' ').decode())
"""


def test_a_new_session_is_forked_with_namespaces_of_its_own(server):
    a = values(structured(server, PROBE, "a"))
    b = values(structured(server, PROBE, "b"))
    for ns in ("user", "mnt", "pid", "net", "ipc", "uts", "cgroup"):
        assert a["ns_" + ns] != b["ns_" + ns], (ns, a, b)
    for r in (a, b):
        assert r["pid"] == "2" and r["procs"] == "1,2", r  # its init and itself, nothing else
        assert r["uid"] == "1000" and r["host"] == "sandbox", r
        assert r["caps"] == "0000000000000000/0000000000000000", r
        assert r["nnp"] == "1" and r["seccomp"] == "2", r
        # No thread of the zygote came along (OpenBLAS's pool included); the kernel's own
        # reader thread, if any, is the only other one.
        assert int(r["threads"].split("/")[0]) <= 2, r
        assert "mcpx_kernel.py" in r["cmdline"] and "zygote" not in r["cmdline"], r


def test_forked_sessions_do_not_share_tmp_random_state_or_memory(server):
    structured(server, "open('/tmp/mine', 'w').write('a')", "c")
    s = values(structured(server, "import os\nprint('seen=' + str(os.path.exists('/tmp/mine')))",
                          "d"))
    assert s["seen"] == "False"
    code = ("import random, numpy, os\nprint('r=%r' % random.random())\n"
            "print('n=%r' % numpy.random.rand())\nprint('u=' + os.urandom(8).hex())")
    # Each kernel's first draw: sessions of their own (the session limit allows a few).
    one = values(structured(server, code, "e"))
    two = values(structured(server, code, "f"))
    for key in ("r", "n", "u"):
        assert one[key] != two[key], (key, one, two)
    # A forked kernel's pages are the zygote's until written: its cgroup holds what it wrote.
    fresh = structured(server, "x = 1", "g")
    assert fresh["peak_memory_bytes"] < 40 << 20, fresh


def test_blas_pandas_and_matplotlib_work_after_the_fork(server):
    s = values(structured(server, """
import numpy as np
rng = np.random.default_rng(7)
a = rng.standard_normal((400, 400))
inv = np.linalg.inv(a)
print('identity=' + str(np.allclose(a @ inv, np.eye(400), atol=1e-8)))
w = np.linalg.eigvalsh(np.diag(np.arange(1.0, 6.0)))
print('eig=' + ','.join('%g' % v for v in w))
import pandas as pd
df = pd.DataFrame({'k': ['x', 'y', 'x'], 'v': [1, 2, 3]})
print('pandas=' + str(df.groupby('k').v.sum().to_dict()))
""", "a"))
    assert s == {"identity": "True", "eig": "1,2,3,4,5", "pandas": "{'x': 4, 'y': 2}"}, s
    r = server.call("execute_python", {"code": (
        "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot([1, 3, 2])\n"
        "ax.set_title('forked')"), "session": "b"})
    images = [c for c in r["content"] if c["type"] == "image"]
    assert len(images) == 1 and r["structuredContent"]["status"] == "ok", r


def test_the_zygote_is_out_of_every_sessions_reach(server):
    zygotes = zygote_pids(server)
    assert len(zygotes) == 1, zygotes
    s = values(structured(server, """
import os, signal
try:
    os.kill(%d, 0)
    print('signal=sent')
except OSError as e:
    print('signal=' + type(e).__name__)
""" % zygotes[0], "c"))
    # Not in the session's PID namespace: that number names nothing there (or its own process).
    assert s["signal"] in ("ProcessLookupError", "sent"), s
    probe = values(structured(server, PROBE, "c"))
    assert probe["procs"] == "1,2", probe


def test_a_dead_zygote_means_cold_kernels_then_a_new_zygote():
    c = McpClient(log_level="info")
    try:
        assert wait_for(lambda: "zygote ready" in c.stderr_text()), c.stderr_text()
        structured(c, "kept = 41", "old")
        [zygote] = zygote_pids(c)
        os.kill(zygote, signal.SIGKILL)
        assert wait_for(lambda: "new kernels start cold" in c.stderr_text()), c.stderr_text()
        # The session forked from it lives on, with its state.
        assert structured(c, "print(kept + 1)", "old")["stdout"] == "42\n"
        # A new session starts (cold while no zygote is ready), and a new zygote comes up.
        assert structured(c, "print(2 + 2)", "new")["stdout"] == "4\n"
        assert wait_for(lambda: c.stderr_text().count("zygote ready") >= 2), c.stderr_text()
        assert structured(c, "print(3 + 3)", "newer")["stdout"] == "6\n"
    finally:
        c.close()


def test_zygote_false_in_the_policy_starts_every_kernel_cold():
    with tempfile.TemporaryDirectory(prefix="mcpx-test-zygote-") as tmp:
        path = write_policy(tmp, "policy.json", zygote=False, name="no-zygote")
        c = McpClient(args=("--policy", path), log_level="info")
        try:
            s = values(structured(c, PROBE))
            assert s["pid"] == "2" and "mcpx_kernel.py" in s["cmdline"], s
            assert zygote_pids(c) == [], zygote_pids(c)
            assert "zygote ready" not in c.stderr_text()
        finally:
            c.close()
