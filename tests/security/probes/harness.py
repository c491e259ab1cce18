"""Shared helpers for the tests/security/test_server_*.py suites (hostile code through `serve`).

Every suite runs its cases against a root server and an unprivileged one (uid 65534 through
setpriv), one module-scoped server per user: a kernel start costs about a second of CPU, so tests
share servers and reset the sessions they opened instead of starting new servers.
"""
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "pylib"))

from mcp_client import McpClient, text_of  # noqa: E402
from policy_files import write_policy  # noqa: E402

NOBODY = 65534
USERS = ["root", "unprivileged"]
PROBES = os.path.dirname(os.path.abspath(__file__))
# The TypeScript SDK client refuses messages above this (DESIGN.md "Facts about real clients").
CLIENT_MESSAGE_LIMIT = 10 * 1000 * 1000


def probe(name):
    """The source of a snippet in tests/security/probes/, to run inside a kernel."""
    with open(os.path.join(PROBES, name), encoding="utf-8") as f:
        return f.read()


def start_server(user, args=(), **kw):
    """A server as `user` ("root" or "unprivileged"), or a skip with the reason."""
    if not os.environ.get("MCPX_BIN"):
        pytest.skip("MCPX_BIN is not set (run through ctest or set it to the binary)")
    if os.geteuid() != 0:
        if user == "root":
            pytest.skip("suite not running as root: the root-server case needs root")
        c = McpClient(args=args, **kw)
    else:
        c = McpClient(args=args, user=None if user == "root" else NOBODY, **kw)
    c.user = user
    return c


def stop_server(c):
    if c.proc.poll() is None:
        code = c.close()
        assert code == 0, "server exit %s; stderr:\n%s" % (code, c.stderr_text()[-4000:])


def run(c, code, session="default", timeout_seconds=None, wait=180):
    """execute_python; returns (CallToolResult, structuredContent)."""
    args = {"code": code, "session": session}
    if timeout_seconds is not None:
        args["timeout_seconds"] = timeout_seconds
    r = c.call("execute_python", args, timeout=wait)
    assert "structuredContent" in r, r
    return r, r["structuredContent"]


def run_ok(c, code, session="default", **kw):
    r, s = run(c, code, session, **kw)
    assert s["status"] == "ok", "%s\n%s" % (s, c.stderr_text()[-2000:])
    return s


def reply_size(result):
    """Bytes of a tool result as it goes on the wire (compact JSON)."""
    return len(json.dumps(result, separators=(",", ":")).encode())


def last_line(s):
    lines = s["stdout"].strip().splitlines()
    return lines[-1] if lines else ""


def reset_named_sessions(c, keep=("default",)):
    """Resets every session but `keep`, so the policy's session cap is never reached."""
    if c.proc.poll() is not None:
        return
    for s in c.call("list_sessions", {})["structuredContent"]["sessions"]:
        if s["session"] not in keep:
            c.call("reset_session", {"session": s["session"]})


def assert_alive(c):
    """The server still answers and is still running."""
    r = c.request("ping", timeout=30)
    assert r.get("result") == {}, r
    assert c.proc.poll() is None, c.stderr_text()[-4000:]


def start_with_keeper(user, **kw):
    """A server whose "keeper" session holds state that assert_survived checks."""
    c = start_server(user, **kw)
    run_ok(c, "keep = 'keeper state'", session="keeper")
    return c


@contextlib.contextmanager
def server_without_landlock(user):
    """A server on a copy of the default policy with Landlock off (and no preloads), so a kernel
    can plant symlinks in the workspace: for tests of the server's own confinement."""
    d = tempfile.mkdtemp(prefix="mcpx-sec-policy-")
    path = write_policy(d, "no-landlock.json", name="sectest-no-landlock", landlock=False,
                        preload=[],
                        description="security tests: Landlock off so kernels can plant links")
    try:
        c = start_server(user, args=("--policy", path))
        yield c
        stop_server(c)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def module_server(keeper=False, **kw):
    """The usual pair of fixtures of a suite: `server`, one per user for the whole module (with
    a "keeper" session when `keeper`), and an autouse reset of the sessions each test opened.
    A module takes them as `server, _fresh_sessions = module_server(...)`."""
    keep = ("default", "keeper") if keeper else ("default",)

    @pytest.fixture(scope="module", params=USERS, name="server")
    def server(request):
        c = start_with_keeper(request.param, **kw) if keeper else start_server(request.param, **kw)
        yield c
        stop_server(c)

    @pytest.fixture(autouse=True, name="_fresh_sessions")
    def fresh_sessions(server):
        yield
        reset_named_sessions(server, keep=keep)

    return server, fresh_sessions


def assert_survived(c, hostile_session="hostile", dead_ns=None):
    """Server answers; the keeper session still has its state; the hostile session works again;
    nothing is left of a sandbox that was killed (`dead_ns`: its PID namespace)."""
    assert_alive(c)
    if dead_ns is not None:
        assert wait_for(lambda: not pids_in_pidns(dead_ns)), \
            "processes of the killed sandbox remain: %s" % pids_in_pidns(dead_ns)
    s = run_ok(c, "print(keep)", session="keeper")
    assert last_line(s) == "keeper state", s
    s = run_ok(c, "print(6 * 7)", session=hostile_session)
    assert last_line(s) == "42", s


# -- the server's process tree, seen from the host -----------------------------------------

def children(pid):
    out = []
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for t in tasks:
        try:
            with open("/proc/%d/task/%s/children" % (pid, t)) as f:
                out += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return out


def descendants(pid):
    seen, todo = [], [pid]
    while todo:
        for ch in children(todo.pop()):
            if ch not in seen:
                seen.append(ch)
                todo.append(ch)
    return seen


def status_fields(pid):
    """/proc/<pid>/status as a dict of strings, or None when the process is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    except OSError:
        return None


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def pids_with_marker(marker):
    """Host pids whose command line contains `marker` (bytes)."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit() and any(marker in arg for arg in cmdline(int(name))):
            found.append(int(name))
    return found


def kernel_pids(server_pid):
    """Host pids of the server's kernel interpreters (the sandbox init's children)."""
    return [p for p in descendants(server_pid)
            if any(arg.endswith(b"mcpx_kernel.py") for arg in cmdline(p))]


def pidns_of(c, session):
    """Inode of `session`'s PID namespace (starts the session's kernel if needed)."""
    s = run_ok(c, "import os\nprint(os.stat('/proc/self/ns/pid').st_ino)", session)
    return int(last_line(s))


def pids_in_pidns(ino):
    """Host pids whose PID namespace is `ino`: what is left of one sandbox."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat("/proc/%s/ns/pid" % name).st_ino == ino:
                    found.append(int(name))
            except OSError:
                pass
    return found


def host_pid_of(c, session):
    """Host pid of `session`'s kernel: the kernel reports its pid-namespace inode and the test
    matches it against /proc/<pid>/ns/pid of the server's kernels."""
    ino = pidns_of(c, session)
    for p in kernel_pids(c.proc.pid):
        try:
            if os.stat("/proc/%d/ns/pid" % p).st_ino == ino:
                return p
        except OSError:
            pass
    raise AssertionError("no kernel of the server is in pid namespace %d" % ino)


def wait_for(pred, seconds=20.0):
    """Polls pred until it holds or `seconds` pass; returns its last value."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


# Cell prelude: attempt(name, fn) prints name=ok, or name=<errno name> when fn raises OSError.
ATTEMPT = """
import errno, os, socket
def attempt(name, fn):
    try:
        fn()
        print(name + '=ok')
    except OSError as e:
        print(name + '=' + errno.errorcode[e.errno])
"""


# Cell prelude for forging control frames: user code finds the id of the request it runs in from
# the kernel's frames (`rid`), and forge(obj) writes a whole frame on fd 3. The server must treat
# those frames as untrusted input (sandbox/kernel/PROTOCOL.md section 7).
FIND_ID = """
import json, os, struct, sys
def _request_id():
    f = sys._getframe()
    while f is not None:
        for v in f.f_locals.values():
            if isinstance(v, dict) and v.get('op') == 'execute' and 'id' in v:
                return v['id']
        f = f.f_back
    raise RuntimeError('request not found')
def forge(obj):
    data = json.dumps(obj).encode()
    os.write(3, struct.pack('>I', len(data)) + data)
rid = _request_id()
"""


__all__ = ["McpClient", "text_of"]
