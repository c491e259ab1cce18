"""Per-user kernel budgets, set-id files and memfd execution, through `serve` (issue 8, findings
9, 10, 13, 14).

Inotify instances and watches and queued signals are counted per user and charged up the
user-namespace tree to the server's host user (root, for a root server): one sandbox must stop
at its own bound, and leave the rest to other sessions and to the user's host processes. Code
must not create set-id files (a setuid copy of /usr/bin/id in the workspace would run as the
workspace owner for anyone on the host), nor execute a memfd (the writable mounts are noexec;
a memfd is the one writable file left). Every case runs against a root server whose workspace is
owned by uid 4242 and against an unprivileged one (uid 65534).

The hostile loops stop at a cap far below the host's budgets (40 of 128 inotify instances, 2048
of ~96k signals): run without the fix, a case fails by reaching the cap, without draining the
budget of other processes on this machine.
"""
import os
import shutil
import stat
import subprocess
import sys
import tempfile

import pytest

from probes.harness import (ATTEMPT, NOBODY, USERS, last_line, reset_named_sessions, run_ok,
                            start_server, stop_server)
from policy_files import default_policy  # tests/pylib, on sys.path through the harness

WORKSPACE_OWNER = 4242  # the root server's workspace owner, as in the issue

INOTIFY_CAP = 40
WATCH_CAP = 2000
SIGNAL_CAP = 2048


@pytest.fixture(scope="module", params=USERS)
def server(request):
    ws_parent = None
    kw = {}
    if request.param == "root" and os.geteuid() == 0:
        ws_parent = tempfile.mkdtemp(prefix="mcpx-budgets-")
        os.chmod(ws_parent, 0o755)
        ws = os.path.join(ws_parent, "ws")
        os.mkdir(ws)
        os.chown(ws, WORKSPACE_OWNER, WORKSPACE_OWNER)
        kw["workspace"] = ws
    c = start_server(request.param, **kw)
    yield c
    stop_server(c)
    if ws_parent:
        shutil.rmtree(ws_parent, ignore_errors=True)


@pytest.fixture(autouse=True)
def _fresh_sessions(server):
    yield
    reset_named_sessions(server)


def as_server_user(server, code):
    """Runs `code` in a host Python as the server's uid (root, or 65534); returns its stdout."""
    cmd = [sys.executable, "-c", code]
    if server.user == "unprivileged" and os.geteuid() == 0:
        cmd = ["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups"] + cmd
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd="/")
    assert r.returncode == 0, r.stderr
    return r.stdout


def fields(stdout):
    return dict(w.split("=", 1) for line in stdout.splitlines() for w in line.split() if "=" in w)


# -- finding 9: inotify ------------------------------------------------------------------------

INOTIFY_FILL = """
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
held = []
err = 0
for _ in range(%d):
    fd = libc.inotify_init1(os.O_CLOEXEC)
    if fd < 0:
        err = ctypes.get_errno()
        break
    held.append(fd)
print('held=%%d err=%%s' %% (len(held), errno.errorcode.get(err, err)))
""" % INOTIFY_CAP

INOTIFY_ONE = """
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.inotify_init1(os.O_CLOEXEC)
print('one=' + ('ok' if fd >= 0 else errno.errorcode.get(ctypes.get_errno(), '?')))
"""


def test_inotify_instances_stop_at_the_sandbox_bound(server):
    bound = default_policy()["limits"]["inotify_instances"]
    assert bound < INOTIFY_CAP
    s = run_ok(server, INOTIFY_FILL, "inotify-a")
    f = fields(last_line(s))
    assert f["err"] == "EMFILE" and 1 <= int(f["held"]) <= bound, (f, bound)
    s = run_ok(server, "print(open('/proc/sys/user/max_inotify_instances').read())", "inotify-a")
    assert last_line(s) == str(bound)
    # While the first session holds its share: another session, and the server's user on the
    # host, still get one.
    assert fields(last_line(run_ok(server, INOTIFY_ONE, "inotify-b")))["one"] == "ok"
    assert fields(as_server_user(server, INOTIFY_ONE))["one"] == "ok"


def test_inotify_watches_stop_at_the_sandbox_bound(server):
    bound = default_policy()["limits"]["inotify_watches"]
    assert bound < WATCH_CAP
    s = run_ok(server, """
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
os.makedirs('/tmp/w', exist_ok=True)
fd = libc.inotify_init1(os.O_CLOEXEC)
assert fd >= 0
n, err = 0, 0
for i in range(%d):
    p = '/tmp/w/%%d' %% i
    open(p, 'w').close()
    if libc.inotify_add_watch(fd, p.encode(), 0x2) < 0:  # IN_MODIFY
        err = ctypes.get_errno()
        break
    n += 1
print('watches=%%d err=%%s' %% (n, errno.errorcode.get(err, err)))
""" % WATCH_CAP, "watch-a")
    f = fields(last_line(s))
    assert f["err"] == "ENOSPC" and 1 <= int(f["watches"]) <= bound, (f, bound)


# -- finding 10: pending signals ---------------------------------------------------------------

# A blocked real-time signal sent to our own thread stays queued; each one is charged to the
# sandbox's user and, above it, to the server's host user.
SIGNAL_FILL = """
import errno, signal, threading
sig = signal.SIGRTMIN + 1
signal.pthread_sigmask(signal.SIG_BLOCK, [sig])
n, err = 0, 0
for _ in range(%d):
    try:
        signal.pthread_kill(threading.get_ident(), sig)
    except OSError as e:
        err = e.errno
        break
    n += 1
print('queued=%%d err=%%s' %% (n, errno.errorcode.get(err, err)))
"""

SIGNAL_ONE = SIGNAL_FILL % 1


def test_pending_signals_stop_at_the_sandbox_bound(server):
    bound = default_policy()["limits"]["sigpending"]
    assert bound < SIGNAL_CAP
    s = run_ok(server, SIGNAL_FILL % SIGNAL_CAP, "sig-a")
    f = fields(last_line(s))
    assert f["err"] == "EAGAIN" and 1 <= int(f["queued"]) <= bound, (f, bound)
    assert fields(last_line(run_ok(server, SIGNAL_ONE, "sig-b")))["queued"] == "1"
    assert fields(as_server_user(server, SIGNAL_ONE))["queued"] == "1"


# -- finding 13: set-id files ------------------------------------------------------------------

SETID = ATTEMPT + """
import shutil, stat
for d in ('/workspace', '/tmp'):
    tag = d.strip('/')
    dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    idc = os.path.join(d, 'idcopy')
    shutil.copyfile('/usr/bin/id', idc)
    attempt(tag + ':chmod4755', lambda: os.chmod(idc, 0o4755))
    attempt(tag + ':chmod2755', lambda: os.chmod(idc, 0o2755))
    attempt(tag + ':fchmodat6755', lambda: os.chmod('idcopy', 0o6755, dir_fd=dfd))
    fd = os.open(idc, os.O_RDONLY)
    attempt(tag + ':fchmod4755', lambda: os.fchmod(fd, 0o4755))
    os.close(fd)
    attempt(tag + ':open4755', lambda: os.close(
        os.open(os.path.join(d, 'created'), os.O_CREAT | os.O_WRONLY, 0o4755)))
    attempt(tag + ':openat2755', lambda: os.close(
        os.open('created2', os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o2755, dir_fd=dfd)))
    attempt(tag + ':tmpfile4755', lambda: os.close(os.open(d, os.O_TMPFILE | os.O_WRONLY, 0o4755)))
    attempt(tag + ':mknod4755', lambda: os.mknod(os.path.join(d, 'node'), stat.S_IFREG | 0o4755))
    attempt(tag + ':chmod0755', lambda: os.chmod(idc, 0o755))
    setid = [n for n in os.listdir(d)
             if os.lstat(os.path.join(d, n)).st_mode & (stat.S_ISUID | stat.S_ISGID)]
    print(tag + ':setid=' + (','.join(setid) or 'none'))
    print(tag + ':idmode=' + oct(os.stat(idc).st_mode & 0o7777))
"""


def test_setid_bits_are_never_created(server):
    s = run_ok(server, SETID, "setid")
    f = fields(s["stdout"])
    for d in ("workspace", "tmp"):
        for op in ("chmod4755", "chmod2755", "fchmodat6755", "fchmod4755", "open4755",
                   "openat2755", "tmpfile4755", "mknod4755"):
            assert f[d + ":" + op] == "EPERM", (d, op, f)
        assert f[d + ":chmod0755"] == "ok", f
        assert f[d + ":idmode"] == "0o755", f
        assert f[d + ":setid"] == "none", f
    # On the host, nothing in the workspace carries a set-id bit.
    found = []
    for root, dirs, files in os.walk(server.workspace):
        for n in dirs + files:
            if os.lstat(os.path.join(root, n)).st_mode & (stat.S_ISUID | stat.S_ISGID):
                found.append(os.path.join(root, n))
    assert not found, found


# -- finding 14: memfd execution ---------------------------------------------------------------

MEMFD = """
import errno, os
MFD_CLOEXEC, MFD_ALLOW_SEALING, MFD_NOEXEC_SEAL, MFD_EXEC = 1, 2, 8, 16
elf = open('/usr/bin/true', 'rb').read()
def run(target):
    pid = os.fork()
    if pid == 0:
        try:
            os.execve(target, ['true'], {})
        except OSError as e:
            os._exit(e.errno)
        os._exit(255)
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    return 'ran' if code == 0 else errno.errorcode.get(code, str(code))
for name, flags in (('none', 0), ('cloexec', MFD_CLOEXEC), ('sealing', MFD_ALLOW_SEALING),
                    ('exec', MFD_EXEC), ('noexec_seal', MFD_NOEXEC_SEAL)):
    try:
        fd = os.memfd_create('payload', flags)
    except OSError as e:
        print(name + ':create=' + errno.errorcode[e.errno])
        continue
    os.write(fd, elf)
    try:
        os.fchmod(fd, 0o755)
        chmod = 'ok'
    except OSError as e:
        chmod = errno.errorcode[e.errno]
    print(name + ':create=ok', name + ':chmod=' + chmod, name + ':fexecve=' + run(fd),
          name + ':procfd=' + run('/proc/self/fd/%d' % fd))
    os.close(fd)
"""


def test_memfd_cannot_be_executed(server):
    s = run_ok(server, MEMFD, "memfd")
    f = fields(s["stdout"])
    assert "ran" not in f.values(), f
    # The memfd that stays available is sealed against exec; the others are refused up front.
    assert f["noexec_seal:create"] == "ok", f
    assert f["noexec_seal:fexecve"] == "EACCES" and f["noexec_seal:procfd"] == "EACCES", f
    assert f["exec:create"] == "EPERM", f
    for name in ("none", "cloexec", "sealing"):
        assert f[name + ":create"] == "ENOSYS", f
