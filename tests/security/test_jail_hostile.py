"""Hostile code run through `mcp-executor exec`: each snippet must be contained.

Runs every case twice: as root (when the suite runs as root) and as an unprivileged user
(setpriv --reuid=65534), since the jail takes different paths for the two (id mapping, cgroup
or RLIMIT_AS). Each snippet prints a verdict line the test checks; the jail must also report a
sane exit code and the host must be untouched.
"""
import os
import shutil
import socket
import subprocess

import pytest

import as_user  # tests/pylib, on sys.path through conftest.py

BIN = os.environ.get("MCPX_BIN")
NOBODY = 65534


@pytest.fixture(params=["root", "unprivileged"])
def runner(request):
    if not BIN:
        pytest.skip("MCPX_BIN is not set (run through ctest)")
    uid, skip = as_user.exec_user(request.param, NOBODY)
    if skip:
        pytest.skip(skip)
    base, ws, state = as_user.exec_dirs("mcpx-hostile-", uid)

    def run(code, timeout=180):
        # As uid 65534 from a staged copy when it cannot reach this checkout (as_user.py).
        cmd, env = as_user.command(BIN, uid, ["exec", "--workspace", ws, "--state-dir", state,
                                              "-c", code])
        env.update(PATH=os.environ.get("PATH", "/usr/bin:/bin"), HOME=base)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)

    run.user = request.param
    run.workspace = ws
    yield run
    shutil.rmtree(base, ignore_errors=True)


SYSCALL = """
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
def sc(nr, *args):
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    e = ctypes.get_errno()
    return 'ALLOWED' if r >= 0 else errno.errorcode.get(e, str(e))
"""


def verdict(proc):
    assert proc.returncode != 125, f"jail setup failed: {proc.stderr}"
    return proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""


def test_baseline_runs(runner):
    proc = runner("print('hello from', __import__('os').getuid())")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "hello from 1000\n"


def test_read_shadow(runner):
    proc = runner("""
try:
    print(open('/etc/shadow').read()[:20]); print('LEAKED')
except OSError as e:
    print('blocked', type(e).__name__)
""")
    assert verdict(proc) == "blocked FileNotFoundError"


def test_write_usr_and_proc_self_exe(runner):
    proc = runner("""
import errno
out = []
for p in ['/usr/bin/python3', '/usr/evil', '/proc/self/exe', '/etc/passwd']:
    try:
        open(p, 'ab'); out.append(p + ':WRITABLE')
    except OSError as e:
        out.append(p + ':' + errno.errorcode[e.errno])
print(' '.join(out))
""")
    line = verdict(proc)
    assert "WRITABLE" not in line, line
    assert "/usr/evil:EROFS" in line


def test_socket_to_host(runner):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    try:
        proc = runner(f"""
import socket
s = socket.socket()
s.settimeout(5)
try:
    s.connect(('127.0.0.1', {port})); print('CONNECTED')
except OSError as e:
    print('blocked', e.errno)
""")
    finally:
        listener.close()
    assert verdict(proc).startswith("blocked"), proc.stdout


@pytest.mark.parametrize("name,call", [
    ("unshare(CLONE_NEWUSER)", "sc(272, 0x10000000)"),
    ("unshare(CLONE_NEWNS)", "sc(272, 0x00020000)"),
    ("mount tmpfs", "sc(165, 0, 0, 0, 0, 0)"),
    ("ptrace attach init", "sc(101, 16, 1, 0, 0)"),
    ("keyctl get keyring", "sc(250, 0, -3, 0)"),
    ("io_uring_setup", "sc(425, 1, 0)"),
    ("bpf", "sc(321, 0, 0, 0)"),
    ("perf_event_open", "sc(298, 0, 0, -1, -1, 0)"),
    ("userfaultfd", "sc(323, 0)"),
    ("setns", "sc(308, 0, 0)"),
])
def test_dangerous_syscalls_denied(runner, name, call):
    proc = runner(SYSCALL + f"print({call})")
    result = verdict(proc)
    assert result not in ("ALLOWED", ""), f"{name}: {result} {proc.stderr}"


def test_unshare_via_os_module(runner):
    proc = runner("""
import os
try:
    os.unshare(os.CLONE_NEWUSER); print('UNSHARED')
except OSError as e:
    print('blocked', e.errno)
except AttributeError:
    import ctypes; libc = ctypes.CDLL(None, use_errno=True)
    print('blocked' if libc.unshare(0x10000000) != 0 else 'UNSHARED')
""")
    assert verdict(proc).startswith("blocked")


def test_tiocsti_has_no_terminal(runner):
    # No controlling terminal, stdin is /dev/null, and the ioctl itself is filtered.
    proc = runner(SYSCALL + """
import fcntl, termios
res = []
for fd in (0, 1, 2):
    try:
        fcntl.ioctl(fd, termios.TIOCSTI, b'x'); res.append('INJECTED')
    except OSError as e:
        res.append(errno.errorcode[e.errno])
try:
    os.open('/dev/tty', os.O_RDWR); res.append('TTY')
except OSError as e:
    res.append('notty')
print(' '.join(res))
""")
    line = verdict(proc)
    assert "INJECTED" not in line and "TTY" not in line, line


def test_fork_bomb_is_bounded(runner):
    proc = runner("""
import os, time
n = 0
try:
    for _ in range(5000):
        pid = os.fork()
        if pid == 0:
            time.sleep(60); os._exit(0)
        n += 1
except OSError as e:
    print('stopped at', n, e.errno)
else:
    print('UNBOUNDED', n)
""")
    line = verdict(proc)
    assert line.startswith("stopped at"), line + proc.stderr
    assert int(line.split()[2]) <= 512


def test_runaway_fork_loop_is_stopped_at_the_limit(runner):
    # Every copy retries when fork fails: only stopping the whole sandbox ends it.
    proc = runner("""
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
""", timeout=60)
    assert proc.returncode == 137, proc.stderr
    assert "killed: process limit 128 reached" in proc.stderr, proc.stderr


def test_allocate_4gib_is_stopped(runner):
    proc = runner("""
try:
    b = b'x' * (4 << 30)
    print('ALLOCATED', len(b))
except MemoryError:
    print('blocked MemoryError')
""")
    out = proc.stdout
    assert "ALLOCATED" not in out, out
    if proc.returncode == 0:
        assert verdict(proc) == "blocked MemoryError"
    else:
        # The cgroup OOM killer took Python; the server says so by name.
        assert proc.returncode == 128 + 9, (proc.returncode, proc.stderr)
        assert "killed: memory limit" in proc.stderr, proc.stderr


def test_workspace_files_are_not_host_root(runner):
    proc = runner("open('/workspace/owned', 'w').write('x'); print('ok')")
    assert verdict(proc) == "ok"
    st = os.stat(os.path.join(runner.workspace, "owned"))
    assert st.st_uid != 0 and st.st_gid != 0
    if runner.user == "unprivileged":
        assert st.st_uid == NOBODY


def test_done_criterion_numpy_matplotlib_status(runner):
    proc = runner('import numpy, matplotlib; print(open("/proc/self/status").read())')
    assert proc.returncode == 0, proc.stderr
    assert "Seccomp:\t2" in proc.stdout
    assert "NoNewPrivs:\t1" in proc.stdout
    assert "CapEff:\t0000000000000000" in proc.stdout
