"""The process: its identity and privileges, namespaces it could enter or make, the processes it
could trace or signal. Calls use real arguments (a path that exists, a pid that exists), so an
error is the kernel's or the filter's answer to the attack itself; signals are only ever 0.
"""
import ctypes
import errno
import os
import platform

from mcpx_probe import Skip, contained, ename, escaped, host, limits, probe
from probes_controls import BAD, syscall
from probes_fs import clip, remove, unique

_libc = ctypes.CDLL(None, use_errno=True)
_libc.ptrace.restype = ctypes.c_long
_libc.process_vm_readv.restype = ctypes.c_ssize_t


def _call(fn, *args):
    """(ok, errno name) of a libc call that returns -1 on failure."""
    ctypes.set_errno(0)
    r = fn(*args)
    if r != -1:
        return True, ""
    e = ctypes.get_errno()
    return False, errno.errorcode.get(e, str(e))


def _cause(err, control):
    """err of the attack, told apart by control: the errno of a harmless call of the same kind
    (a bad pointer, fd or flag that the kernel itself would answer with EFAULT, EBADF, ...)."""
    if err == control:
        return "%s (seccomp)" % err
    return "%s (kernel; harmless call: %s)" % (err, control or "ok")


def _status():
    with open("/proc/self/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


@probe("ids.uid-map", "the sandbox's uid and gid map to a host id that is not root")
def uid_map():
    server_uid = host().get("uid")
    seen = []
    for kind, inside in (("uid", os.getuid()), ("gid", os.getgid())):
        with open("/proc/self/%s_map" % kind) as f:
            rows = [tuple(int(x) for x in line.split()) for line in f if line.strip()]
        for first, outside, count in rows:
            if outside <= 0 < outside + count or outside == 0:
                return escaped("%s_map maps host 0: %d %d %d" % (kind, first, outside, count))
        out = [o + inside - f for f, o, c in rows if f <= inside < f + c]
        if not out:
            return escaped("%s %d is not in its own map %s" % (kind, inside, rows))
        if server_uid == 0 and out[0] == 0:
            return escaped("%s %d is host root" % (kind, inside))
        seen.append("%s %d -> host %d" % (kind, inside, out[0]))
    if server_uid is None:
        return contained("; ".join(seen) + " (server uid not given)")
    with open("/proc/self/uid_map") as f:
        host_uid = int(f.read().split()[1])
    if server_uid == 0 and host_uid == 0:
        return escaped("runs as the root server's own uid 0")
    role = "root server" if server_uid == 0 else "server uid %d" % server_uid
    return contained(clip("; ".join(seen) + "; " + role))


@probe("ids.become-root", "setuid(0), setgid(0), setresuid(0,0,0), setgroups([0])")
def become_root():
    seen, me = [], os.getuid()
    try:
        os.setuid(me)  # the harmless call: our own uid again
        control = ""
    except OSError as e:
        control = ename(e)
    for label, fn in (("setuid", lambda: os.setuid(0)), ("setgid", lambda: os.setgid(0)),
                      ("setresuid", lambda: os.setresuid(0, 0, 0)),
                      ("setgroups", lambda: os.setgroups([0]))):
        try:
            fn()
            return escaped("%s(0) succeeded: now uid %d gid %d" % (label, os.getuid(), os.getgid()))
        except OSError as e:
            seen.append("%s %s" % (label, ename(e)))
    errs = {s.split()[1] for s in seen}
    cause = "seccomp" if errs == {control} else "kernel: 0 unmapped, no CAP_SETUID"
    return contained("%s; setuid(%d) %s: %s" % (", ".join(seen), me, control or "ok", cause))


@probe("ids.capabilities", "CapInh/CapPrm/CapEff/CapBnd/CapAmb all empty")
def capabilities():
    status = _status()
    sets = {k: status.get(k, "?") for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}
    held = {k: v for k, v in sets.items() if v.strip("0") != ""}
    if held:
        return escaped(clip("capabilities held: " + " ".join("%s=%s" % kv for kv in held.items())))
    return contained("all five capability sets are 0")


@probe("ids.nnp-seccomp", "NoNewPrivs 1 and Seccomp 2 (filter mode) with filters installed")
def nnp_seccomp():
    status = _status()
    nnp, mode = status.get("NoNewPrivs", "?"), status.get("Seccomp", "?")
    filters = status.get("Seccomp_filters", "?")
    detail = "NoNewPrivs %s, Seccomp %s, %s filters" % (nnp, mode, filters)
    if nnp != "1" or mode != "2" or ("Seccomp_filters" in status and filters == "0"):
        return escaped(detail)
    return contained(detail)


CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000


@probe("ns.unshare-user", "unshare(CLONE_NEWUSER): a new user namespace with full capabilities")
def unshare_user():
    ok, err = _call(_libc.unshare, CLONE_NEWUSER)
    if ok:
        return escaped("unshare(CLONE_NEWUSER) succeeded")
    ok2, err2 = _call(_libc.unshare, CLONE_NEWUSER | CLONE_NEWNS)
    if ok2:
        return escaped("unshare(CLONE_NEWUSER|CLONE_NEWNS) succeeded")
    _, control = _call(_libc.unshare, 0x1)  # an unknown flag: EINVAL from the kernel
    return contained("NEWUSER %s, NEWUSER|NEWNS %s" % (_cause(err, control), err2))


@probe("ns.unshare-mount", "unshare(CLONE_NEWNS): a private mount namespace")
def unshare_mount():
    ok, err = _call(_libc.unshare, CLONE_NEWNS)
    if ok:
        return escaped("unshare(CLONE_NEWNS) succeeded")
    _, control = _call(_libc.unshare, 0x1)
    return contained("unshare(CLONE_NEWNS) " + _cause(err, control))


@probe("ns.setns", "setns into /proc/1/ns/* and our own namespaces")
def setns():
    seen = {}
    for name in ("mnt", "net", "pid", "user", "uts", "ipc", "cgroup"):
        for pid in ("1", "self"):
            path = "/proc/%s/ns/%s" % (pid, name)
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError as e:
                seen.setdefault("open %s" % ename(e), []).append("%s/%s" % (pid, name))
                continue
            try:
                ok, err = _call(_libc.setns, fd, 0)
            finally:
                os.close(fd)
            if ok and pid == "1":
                return escaped("setns into %s succeeded" % path)
            seen.setdefault("setns %s" % (err or "ok"), []).append("%s/%s" % (pid, name))
    if not any(k.startswith("setns") for k in seen):
        raise Skip("no namespace file opened, setns never called: %s" % seen)
    _, control = _call(_libc.setns, -1, 0)  # a bad fd: EBADF from the kernel
    errs = sorted({k.split()[1] for k in seen if k.startswith("setns")})
    cause = "seccomp" if errs == [control] else "kernel; setns(-1) gets " + control
    return contained(clip("%s (%s)" % (
        "; ".join("%s: %d" % (k, len(v)) for k, v in seen.items()), cause)))


@probe("ns.mount-tmpfs", "mount a tmpfs on a folder in /tmp")
def mount_tmpfs():
    target = unique("/tmp", "mnt")
    os.mkdir(target)
    try:
        ok, err = _call(_libc.mount, b"tmpfs", target.encode(), b"tmpfs", 0, None)
        if ok:
            _libc.umount2(target.encode(), 2)
            return escaped("mounted a tmpfs on " + target)
        _, control = _call(_libc.mount, b"tmpfs", ctypes.c_void_p(BAD), b"tmpfs", 0, None)
        return contained("mount(tmpfs) " + _cause(err, control))
    finally:
        remove(target)


@probe("ns.chroot", "chroot into a folder in /tmp")
def chroot():
    target = unique("/tmp", "root")
    os.mkdir(target)
    try:
        os.chroot(target)
        return escaped("chroot(%s) succeeded" % target)
    except OSError as e:
        _, control = syscall(CHROOT[platform.machine()], BAD) if platform.machine() in CHROOT \
            else (0, "?")
        return contained("chroot " + _cause(ename(e), control))
    finally:
        remove(target)


PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
CHROOT = {"x86_64": 161, "aarch64": 51}


@probe("ns.pivot-root", "pivot_root onto a folder in /tmp")
def pivot_root():
    nr = PIVOT_ROOT.get(platform.machine())
    if nr is None:
        raise Skip("no pivot_root number known for " + platform.machine())
    new = unique("/tmp", "pivot")
    old = os.path.join(new, "old")
    os.mkdir(new)
    os.mkdir(old)
    try:
        buf_new, buf_old = ctypes.create_string_buffer(new.encode()), \
            ctypes.create_string_buffer(old.encode())
        r, err = syscall(nr, ctypes.addressof(buf_new), ctypes.addressof(buf_old))
        if r == 0:
            return escaped("pivot_root(%s) succeeded" % new)
        _, control = syscall(nr, BAD, BAD)
        return contained("pivot_root " + _cause(err, control))
    finally:
        remove(old)
        remove(new)


PTRACE_ATTACH, PTRACE_DETACH = 16, 17


@probe("ptrace.attach", "PTRACE_ATTACH to PID 1 (init) and to the parent (the probe runner)")
def ptrace_attach():
    seen = []
    for label, pid in (("init", 1), ("parent", os.getppid())):
        ok, err = _call(_libc.ptrace, PTRACE_ATTACH, pid, None, None)
        if ok:
            _libc.ptrace(PTRACE_DETACH, pid, None, None)
            return escaped("attached to %s (pid %d)" % (label, pid))
        seen.append("%s %s" % (label, err))
    _, control = _call(_libc.ptrace, PTRACE_ATTACH, 0x3FFFFFFF, None, None)  # no such pid
    cause = "seccomp" if {s.split()[1] for s in seen} == {control} else "kernel"
    return contained("%s (%s; a pid that does not exist: %s)" % (", ".join(seen), cause, control))


class _Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


def _vm_readv(pid, remote_addr):
    buf = ctypes.create_string_buffer(64)
    local = _Iovec(ctypes.addressof(buf), 64)
    remote = _Iovec(remote_addr, 64)
    ctypes.set_errno(0)
    n = _libc.process_vm_readv(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
    return n, errno.errorcode.get(ctypes.get_errno(), "") if n < 0 else ""


@probe("ptrace.vm-readv", "process_vm_readv of PID 1's memory (self as the control)")
def vm_readv():
    addr = ctypes.addressof(ctypes.create_string_buffer(b"mcpx", 64))
    n, err = _vm_readv(1, addr)
    if n >= 0 or err == "EFAULT":
        return escaped("process_vm_readv(pid 1) %s: access granted" % (err or "read %d" % n))
    _, self_err = _vm_readv(os.getpid(), addr)
    cause = "seccomp denies the call" if self_err else "ptrace access check"
    return contained("pid 1 %s; self %s: %s" % (err, self_err or "ok", cause))


def _comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return "?"


@probe("signals.server-pid", "kill(server's host pid, 0): the server is invisible")
def signal_server():
    pid = host().get("server_pid")
    if not pid:
        raise Skip("host().server_pid not given (run by hand without it)")
    ok, err = _call(_libc.kill, int(pid), 0)
    if os.path.isdir("/proc/%d" % pid):
        comm = _comm(pid)
        if comm.startswith("mcp-executor"):
            return escaped("pid %d is visible as %s" % (pid, comm))
        return contained("pid %d here is a sandbox process (%s), not the server" % (pid, comm))
    if ok:
        return escaped("kill(%d, 0) succeeded with no /proc entry" % pid)
    return contained("kill(%d, 0) %s (not in our PID namespace)" % (pid, err))


@probe("signals.kill-all", "kill(-1, 0) reaches only the sandbox's own processes")
def signal_all():
    ok, err = _call(_libc.kill, -1, 0)
    pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    names = sorted({_comm(p) for p in pids})
    server = host().get("server_pid")
    foreign = [n for n in names if n.startswith("mcp-executor") or n in ("systemd", "init")]
    if foreign or (server and server in pids and _comm(server).startswith("mcp")):
        return escaped(clip("host processes visible: %s" % ",".join(foreign or ["server pid"])))
    if _comm(1) != "mcpx-init":
        return escaped("pid 1 is %s, not the sandbox's init" % _comm(1))
    limit = limits().get("pids") or 4096
    if len(pids) > limit:
        return escaped("%d processes visible" % len(pids))
    return contained(clip("kill(-1,0) %s; %d pids, all ours (%s)" % (
        "ok" if ok else err, len(pids), ",".join(names))))
