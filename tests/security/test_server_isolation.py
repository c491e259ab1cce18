"""What a hostile kernel sees and can reach, through `serve` and execute_python.

test_jail_hostile.py covers one-shot `exec` runs; this suite covers what only the server path
has: kernels started by the session manager (warm pool included), several sessions side by side
in one server, the server's own fds and pipes, and its state dir. Every case runs against a root
server and an unprivileged one (uid 65534).
"""
import json
import os
import socket
import stat
import uuid

import pytest

from probes.harness import (ATTEMPT, NOBODY, descendants, host_pid_of, kernel_pids, last_line,
                            module_server, probe, reset_named_sessions, run, run_ok, status_fields)


# In the server's environment: no sandbox may ever see it (the kernel gets an explicit env).
SERVER_SECRET = "mcpx-server-secret-" + uuid.uuid4().hex


server, _fresh_sessions = module_server(env={"MCPX_TEST_SERVER_SECRET": SERVER_SECRET})


def lines_to_dict(stdout):
    return dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)


# -- identity -------------------------------------------------------------------------------

def test_kernel_identity_in_proc_status(server):
    s = run_ok(server, "print(open('/proc/self/status').read())")
    st = dict(line.split(":\t", 1) for line in s["stdout"].splitlines() if ":\t" in line)
    assert st["Uid"].split() == ["1000"] * 4, st["Uid"]
    assert st["Gid"].split() == ["1000"] * 4, st["Gid"]
    assert st["Groups"].split() == [], st["Groups"]
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert st[cap] == "0000000000000000", (cap, st[cap])
    assert st["NoNewPrivs"] == "1"
    assert st["Seccomp"] == "2"
    assert int(st["Seccomp_filters"]) >= 2  # built-in + the policy's profile


def test_workspace_file_is_not_host_root(server):
    name = "owned-%s" % uuid.uuid4().hex[:8]
    run_ok(server, "open('/workspace/%s', 'w').write('x')\nimport os\nos.mkdir('/workspace/%s.d')"
           % (name, name))
    for p in (name, name + ".d"):
        st = os.stat(os.path.join(server.workspace, p))
        assert st.st_uid != 0 and st.st_gid != 0, (p, st.st_uid, st.st_gid)
        if server.user == "unprivileged":
            assert (st.st_uid, st.st_gid) == (NOBODY, NOBODY)
        assert not st.st_mode & (stat.S_ISUID | stat.S_ISGID)


def test_kernels_never_run_as_host_root(server):
    run_ok(server, "x = 1", session="second")  # two live kernels plus the warm pool
    tree = descendants(server.proc.pid)
    kernels = kernel_pids(server.proc.pid)
    assert len(kernels) >= 2, (tree, kernels)
    server_ns = os.stat("/proc/%d/ns/pid" % server.proc.pid).st_ino
    sandboxed = []
    for pid in tree:
        try:
            if os.stat("/proc/%d/ns/pid" % pid).st_ino == server_ns:
                continue  # the server's own helpers (font cache), not sandboxes
        except OSError:
            continue
        st = status_fields(pid)
        if st is None:
            continue  # ended meanwhile
        sandboxed.append(pid)
        uids = [int(x) for x in st["Uid"].split()]
        gids = [int(x) for x in st["Gid"].split()]
        assert 0 not in uids and 0 not in gids, (pid, st["Uid"], st["Gid"])
        assert st["CapEff"] == "0000000000000000", (pid, st["CapEff"])
        if server.user == "unprivileged":
            assert uids == [NOBODY] * 4, (pid, uids)
    # each kernel is a sandboxed process, plus its init
    assert set(kernels) <= set(sandboxed), (kernels, sandboxed)


# -- syscalls -------------------------------------------------------------------------------

# Expected answer of each probe under the default policy (docs/POLICIES.md "Seccomp"): a call
# both filters deny gets the profile's ENOSYS (the newer filter wins between two errnos); a call
# only the built-in filter denies gets its own errno.
EXPECTED_SYSCALLS = {
    "unshare": "ENOSYS", "setns": "ENOSYS", "mount": "ENOSYS", "pivot_root": "ENOSYS",
    "keyctl": "ENOSYS", "add_key": "ENOSYS", "bpf": "ENOSYS", "perf_event_open": "ENOSYS",
    "userfaultfd": "ENOSYS", "io_uring_setup": "ENOSYS", "ptrace": "ENOSYS",
    "process_vm_readv": "ENOSYS", "kcmp": "ENOSYS", "open_by_handle_at": "ENOSYS",
    "clone3": "ENOSYS", "clone_newuser": "EPERM", "personality_addr_no_randomize": "ENOSYS",
    "socket_af_vsock": "EAFNOSUPPORT", "socket_af_alg": "EAFNOSUPPORT",
    "ioctl_tiocsti": "EPERM", "ioctl_tiocsti_high_bits": "EPERM",
    "control_read": "EBADF", "control_openat": "EFAULT", "control_clone_thread": "EINVAL",
    "control_ioctl_tcgets": "ENOTTY", "control_personality_query": "ok",
    "control_socket_unix": "ok",
}


def host_has_family(family, kind):
    try:
        socket.socket(family, kind).close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def syscall_results(server):
    s = run_ok(server, probe("syscalls.py"), session="sys")
    reset_named_sessions(server)
    return lines_to_dict(s["stdout"])


@pytest.mark.parametrize("name", sorted(EXPECTED_SYSCALLS))
def test_syscall_probe(syscall_results, name):
    if name == "socket_af_alg" and not host_has_family(38, socket.SOCK_SEQPACKET):
        pytest.skip("the host kernel has no AF_ALG either: EAFNOSUPPORT cannot tell the filter "
                    "from the kernel here")
    if name == "socket_af_vsock" and not host_has_family(40, socket.SOCK_STREAM):
        pytest.skip("the host kernel has no AF_VSOCK either: EAFNOSUPPORT proves nothing here")
    assert syscall_results.get(name) == EXPECTED_SYSCALLS[name], (name, syscall_results)


# -- network --------------------------------------------------------------------------------

def test_no_network(server):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    try:
        s = run_ok(server, f"""
import socket
c = socket.socket()
c.settimeout(5)
try:
    c.connect(('127.0.0.1', {port}))
    print('connect=CONNECTED')
except OSError as e:
    print('connect=' + type(e).__name__)
print('ifaces=' + ','.join(sorted(n for _, n in socket.if_nameindex())))
try:
    socket.getaddrinfo('example.com', 443)
    print('dns=RESOLVED')
except OSError as e:
    print('dns=' + type(e).__name__)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    u.sendto(b'x', ('192.0.2.1', 9))  # TEST-NET-1: only a route would let this out
    print('udp=SENT')
except OSError as e:
    print('udp=' + type(e).__name__)
""")
        try:
            conn, _ = listener.accept()
            conn.close()
            accepted = True
        except BlockingIOError:
            accepted = False
    finally:
        listener.close()
    r = lines_to_dict(s["stdout"])
    assert r["connect"] == "ConnectionRefusedError", r  # the netns's own lo, not the host's
    assert not accepted
    assert r["ifaces"] == "lo", r
    assert r["dns"] == "gaierror", r
    assert r["udp"] == "OSError", r  # ENETUNREACH: no route, no interface but lo


# -- filesystem -----------------------------------------------------------------------------

def test_host_paths_absent(server):
    canary = "/tmp/mcpx-sec-canary-%s" % uuid.uuid4().hex[:8]
    open(canary, "w").close()
    try:
        paths = ["/home", "/root", "/etc/shadow", "/var", "/run", "/sys/fs/cgroup", "/boot",
                 server.state_dir, server.workspace, os.path.dirname(server.workspace),
                 canary, os.path.realpath(os.environ["MCPX_BIN"]), "/work"]
        s = run_ok(server, "import os\nfor p in %r:\n    print(p + '=' + str(os.path.lexists(p)))"
                   % (paths,))
    finally:
        os.unlink(canary)
    r = lines_to_dict(s["stdout"])
    for p in paths:
        assert r.get(p) == "False", (p, r)


def test_root_and_system_paths_read_only(server):
    s = run_ok(server, """
import errno, os
for p in ['/evil', '/usr/evil', '/etc/evil', '/etc/passwd', '/opt/mcpx/kernel/mcpx_kernel.py',
          '/opt/mcpx/kernel/evil.py', '/opt/mcpx/packages/evil.py', '/proc/self/exe']:
    try:
        open(p, 'ab').close()
        print(p + '=WRITABLE')
    except OSError as e:
        print(p + '=' + errno.errorcode[e.errno])
""")
    r = lines_to_dict(s["stdout"])
    assert "WRITABLE" not in r.values(), r
    for p in ("/evil", "/usr/evil", "/etc/evil", "/opt/mcpx/kernel/evil.py"):
        assert r[p] == "EROFS", (p, r)
    # The kernel's own code is read-only: a session cannot plant code for the next kernels.
    assert r["/opt/mcpx/kernel/mcpx_kernel.py"] in ("EROFS", "EACCES"), r
    assert r["/opt/mcpx/packages/evil.py"] in ("EROFS", "ENOENT", "EACCES"), r


MASKED_PROC = ["/proc/kcore", "/proc/sysrq-trigger", "/proc/keys", "/proc/kallsyms",
               "/proc/timer_list", "/proc/sched_debug", "/proc/latency_stats"]


@pytest.fixture(scope="module")
def proc_masks(server):
    s = run_ok(server, """
import os
for p in PATHS:
    try:
        st = os.stat(p)
        with open(p, 'rb') as f:
            n = len(f.read(4096))
        print('%s=%d:%d:%d' % (p, os.major(st.st_rdev), os.minor(st.st_rdev), n))
    except OSError as e:
        print('%s=%s' % (p, type(e).__name__))
""".replace("PATHS", repr(MASKED_PROC)))
    return lines_to_dict(s["stdout"])


@pytest.mark.parametrize("path", MASKED_PROC)
def test_proc_dangerous_files_masked(proc_masks, path):
    if not os.path.exists(path):
        pytest.skip("%s does not exist on this host kernel: nothing to mask" % path)
    # A bind of /dev/null (char 1:3, reads nothing) over the real file, or the file removed.
    assert proc_masks[path] in ("1:3:0", "FileNotFoundError"), (path, proc_masks)


def host_landlock_abi():
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    # landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)
    return max(0, libc.syscall(ctypes.c_long(444), None, ctypes.c_long(0), ctypes.c_long(1)))


def test_landlock_stops_planting_links_in_workspace(server):
    if host_landlock_abi() < 1:
        pytest.skip("the host kernel has no Landlock: the policy's Landlock layer is inactive")
    s = run_ok(server, ATTEMPT + """
attempt('symlink', lambda: os.symlink('/etc/passwd', '/workspace/ll-evil'))
attempt('fifo', lambda: os.mkfifo('/workspace/ll-fifo'))
attempt('sock', lambda: socket.socket(socket.AF_UNIX).bind('/workspace/ll-sock'))
attempt('tmp_symlink', lambda: os.symlink('/etc/passwd', '/tmp/ll-evil'))
attempt('file', lambda: open('/workspace/ll-file', 'w').close())
""")
    r = lines_to_dict(s["stdout"])
    assert r == {"symlink": "EACCES", "fifo": "EACCES", "sock": "EACCES", "tmp_symlink": "ok",
                 "file": "ok"}, r
    for name in ("ll-evil", "ll-fifo", "ll-sock"):
        assert not os.path.lexists(os.path.join(server.workspace, name))


def test_tmp_is_private_per_session(server):
    name = "/tmp/private-%s" % uuid.uuid4().hex[:8]
    run_ok(server, "open(%r, 'w').write('secret of A')" % name, session="a")
    s = run_ok(server, "import os\nprint(os.path.exists(%r), sorted(os.listdir('/tmp')))" % name,
               session="b")
    assert last_line(s).startswith("False"), s["stdout"]
    assert not os.path.exists(name)  # nor on the host


# -- sessions -------------------------------------------------------------------------------

def test_sessions_cannot_see_or_signal_each_other(server):
    marker = "mcpx-sec-%s" % uuid.uuid4().hex[:10]
    run_ok(server, "import subprocess\nkeep = 'B state'\n"
           "p = subprocess.Popen(['/usr/bin/python3', '-c', 'import time; time.sleep(600)', %r])"
           % marker, session="b")
    b_host_pid = host_pid_of(server, "b")
    s = run_ok(server, """
import os
mine = []
for d in os.listdir('/proc'):
    if d.isdigit():
        try:
            mine.append((int(d), open('/proc/' + d + '/cmdline', 'rb').read()))
        except OSError:
            pass
print('pids=' + ','.join(str(p) for p, _ in sorted(mine)))
print('marker_seen=' + str(any(%r.encode() in c for _, c in mine)))
try:
    os.kill(%d, 0)
    print('host_pid=VISIBLE')
except OSError as e:
    print('host_pid=' + type(e).__name__)
""" % (marker, b_host_pid), session="a")
    r = lines_to_dict(s["stdout"])
    assert r["marker_seen"] == "False", r
    assert r["host_pid"] == "ProcessLookupError", r
    pids = [int(p) for p in r["pids"].split(",")]
    assert 1 in pids and max(pids) < 100, r  # only the namespace's own small pids
    # kill(-1) reaches every process the caller may signal: in a shared PID namespace with the
    # same host uid it would take session B's kernel and its child down.
    s = run_ok(server, "import os, signal\ntry:\n    os.kill(-1, signal.SIGKILL)\n"
               "    print('kill(-1)=sent')\nexcept OSError as e:\n"
               "    print('kill(-1)=' + type(e).__name__)", session="a")
    # ESRCH: nothing but itself and its init in its namespace; "sent" is fine if A had children.
    assert last_line(s) in ("kill(-1)=ProcessLookupError", "kill(-1)=sent"), s
    s = run_ok(server, "print(keep, p.poll())", session="b")
    assert last_line(s) == "B state None", s


def test_killing_pid1_inside_ends_only_its_own_sandbox(server):
    run_ok(server, "keep = 'B state'", session="b")
    r, s = run(server, "import os, signal, time\nos.kill(1, signal.SIGKILL)\ntime.sleep(0.5)\n"
               "print('init ignored it')", session="a")
    # PID 1 ignores SIGKILL from inside its own namespace; if it ever died, the sandbox ends.
    assert s["status"] in ("ok", "killed"), s
    s = run_ok(server, "print(keep)", session="b")
    assert last_line(s) == "B state"
    s = run_ok(server, "print('a again')", session="a")
    assert last_line(s) == "a again"


def test_init_memory_and_environment_are_closed(server):
    # The sandbox's init is a fork of the server that never execs: its memory is a copy of the
    # server's (other sessions' code and output, the environment). It runs as the kernel's uid,
    # so only its not-dumpable flag keeps /proc/1 closed (an unprivileged server's sandboxes have
    # the server's host uid).
    s = run_ok(server, ATTEMPT + """
SECRET = 'MCPX_TEST_SERVER_SECRET'.encode()
found = []
def read(path, n=1 << 16, seek=0):
    with open(path, 'rb') as f:
        f.seek(seek)
        data = f.read(n)
    if SECRET in data:
        found.append(path)
def read_heap():
    heap = [l for l in open('/proc/1/maps') if '[heap]' in l][0]
    lo, hi = (int(x, 16) for x in heap.split()[0].split('-'))
    read('/proc/1/mem', hi - lo, lo)
attempt('self_environ', lambda: read('/proc/self/environ'))
attempt('environ', lambda: read('/proc/1/environ'))
attempt('maps', lambda: read('/proc/1/maps'))
attempt('mem', read_heap)
attempt('fd', lambda: os.listdir('/proc/1/fd'))
attempt('cwd', lambda: os.readlink('/proc/1/cwd'))
print('found=' + ','.join(found))
print('cmdline=' + open('/proc/1/cmdline', 'rb').read().replace(b'\\0', b' ').decode().strip())
""", session="init")
    r = lines_to_dict(s["stdout"])
    assert r["self_environ"] == "ok", r  # the kernel's own environment: the probe works
    for what in ("environ", "maps", "mem", "fd", "cwd"):
        assert r[what] == "EACCES", (what, r)
    assert r["found"] == "", r
    assert SERVER_SECRET not in json.dumps(s)
    # cmdline needs no ptrace access: init wipes the server's command line (host paths).
    assert r["cmdline"] == "", r


# -- fds ------------------------------------------------------------------------------------

def host_fd_targets(pid):
    out = {}
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            out[int(fd)] = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            pass
    return out


def test_no_server_fds_leak_into_kernels(server):
    s = run_ok(server, probe("fds.py"), session="fds")
    kernel = {}
    for line in s["stdout"].splitlines():
        if line.startswith("fd="):
            fd, target, dev, ino, tfds = line.split("\t")
            kernel[int(fd.split("=")[1])] = (target, int(dev), int(ino), tfds)
    assert set(kernel) >= {0, 1, 2, 3}, kernel
    assert kernel[0][0] == "/dev/null"
    assert kernel[1][0].startswith("pipe:") and kernel[2][0].startswith("pipe:")
    assert kernel[3][0].startswith("socket:")

    server_fds = host_fd_targets(server.proc.pid)
    own_pipes = {kernel[1][0], kernel[2][0]}
    # The test's pipes to the server (its stdin/stdout) and every other server fd object.
    server_objects = {t for t in server_fds.values() if t.startswith(("pipe:", "socket:"))}
    ws, state = os.stat(server.workspace), os.stat(server.state_dir)
    for fd, (target, dev, ino, tfds) in kernel.items():
        if fd in (1, 2):
            continue
        assert target not in server_objects, (fd, target, "shared with the server")
        assert "pidfd" not in target and "[eventfd]" != target.split(":")[-1], (fd, target)
        assert (dev, ino) != (ws.st_dev, ws.st_ino), (fd, "workspace root fd leaked")
        assert (dev, ino) != (state.st_dev, state.st_ino), (fd, "state dir fd leaked")
        if target.startswith("/"):
            # A path fd must name something inside the sandbox's own tree.
            assert target.startswith(("/dev/", "/proc/", "/usr/", "/opt/mcpx/", "/workspace",
                                      "/tmp/")), (fd, target)
        if target == "anon_inode:[eventpoll]":
            # Python's own selector is fine; one watching server objects would be a leak.
            for t in tfds.split(",") if tfds != "-" else []:
                assert t in kernel_inodes(kernel), (fd, t, kernel)
    for t in own_pipes:
        assert t in server_fds.values(), (t, "fd 1/2 pipes should be the server's")


def kernel_inodes(kernel):
    return {str(ino) for (_, _, ino, _) in kernel.values()}
