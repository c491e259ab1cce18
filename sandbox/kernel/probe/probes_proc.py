"""/proc and /sys: kernel knobs, kernel memory and addresses, init's secrets, cgroup escape, fds.

No probe writes a value that matters: a file that opens for writing is reported (and, for
sysctls, given back the value it already holds), never changed.
"""
import os
import stat

from mcpx_probe import Skip, contained, ename, escaped, probe
from probes_fs import clip, mounts


def _open_write(path):
    """None when path opened for writing (closed again at once), else the errno name."""
    try:
        os.close(os.open(path, os.O_WRONLY))
        return None
    except OSError as e:
        return ename(e)


def _masked(path):
    """How path is hidden: 'masked (/dev/null)', 'absent', or '' when it is the real file."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "absent"
    return "masked (/dev/null)" if stat.S_ISCHR(st.st_mode) else ""


@probe("proc.sysctl-write", "write kernel sysctls: hostname, core_pattern, modprobe, panic")
def sysctl_write():
    seen = {}
    for name in ("hostname", "core_pattern", "modprobe", "panic"):
        path = "/proc/sys/kernel/" + name
        try:
            with open(path, "rb") as f:
                current = f.read()
        except OSError as e:
            seen.setdefault("read " + ename(e), []).append(name)
            continue
        try:
            fd = os.open(path, os.O_WRONLY)
        except OSError as e:
            seen.setdefault(ename(e), []).append(name)
            continue
        try:
            os.write(fd, current)  # the value it already has: proves the write, changes nothing
            return escaped("wrote %s (its own value back)" % path)
        except OSError as e:
            return escaped("opened %s for writing (write: %s)" % (path, ename(e)))
        finally:
            os.close(fd)
    ro = [m["point"] for m in mounts() if m["point"] == "/proc/sys" and "ro" in m["opts"]]
    note = " (/proc/sys is a read-only mount)" if ro else ""
    return contained(clip("; ".join("%s: %s" % (k, ",".join(v)) for k, v in seen.items()) + note))


@probe("proc.sysrq-trigger", "open /proc/sysrq-trigger for writing (never written)")
def sysrq_trigger():
    how = _masked("/proc/sysrq-trigger")
    if how == "absent":
        raise Skip("/proc/sysrq-trigger does not exist (kernel without CONFIG_MAGIC_SYSRQ?)")
    err = _open_write("/proc/sysrq-trigger")
    if how:
        return contained("%s; open for writing: %s" % (how, err or "ok, the null device"))
    if err is None:
        return escaped("opened the real /proc/sysrq-trigger for writing (not written)")
    return contained("open for writing: " + err)


@probe("proc.kcore", "read /proc/kcore (kernel memory)")
def kcore():
    how = _masked("/proc/kcore")
    if how == "absent":
        raise Skip("/proc/kcore does not exist (kernel without CONFIG_PROC_KCORE?)")
    try:
        with open("/proc/kcore", "rb") as f:
            data = f.read(64)
    except OSError as e:
        return contained("%s%s" % (ename(e), "; " + how if how else ""))
    if data:
        return escaped("read %d bytes of /proc/kcore" % len(data))
    return contained("read 0 bytes: " + (how or "empty"))


@probe("proc.kallsyms", "kernel symbol addresses in /proc/kallsyms (non-zero = KASLR leak)")
def kallsyms():
    how = _masked("/proc/kallsyms")
    if how == "absent":
        raise Skip("/proc/kallsyms does not exist (kernel without CONFIG_KALLSYMS)")
    try:
        with open("/proc/kallsyms") as f:
            lines = [f.readline() for _ in range(200)]
    except OSError as e:
        return contained("%s%s" % (ename(e), "; " + how if how else ""))
    lines = [ln for ln in lines if ln.strip()]
    if not lines:
        return contained("no symbols: " + (how or "empty file"))
    nonzero = [ln.split()[0] for ln in lines if int(ln.split()[0], 16) != 0]
    if nonzero:
        return escaped("kernel addresses visible, e.g. %s" % nonzero[0])
    return contained("%d symbols, all addresses zero (kptr_restrict)" % len(lines))


@probe("proc.init-secrets", "read PID 1's environ and memory (/proc/1/environ, /proc/1/mem)")
def init_secrets():
    with open("/proc/1/comm") as f:
        comm = f.read().strip()
    seen = []
    try:
        with open("/proc/1/environ", "rb") as f:
            data = f.read()
        if data:
            return escaped("read %d bytes of %s's environ" % (len(data), comm))
        seen.append("environ empty")
    except OSError as e:
        seen.append("environ " + ename(e))
    try:
        fd = os.open("/proc/1/mem", os.O_RDONLY)
    except OSError as e:
        seen.append("mem " + ename(e))
    else:
        os.close(fd)
        return escaped("opened /proc/1/mem of %s" % comm)
    return contained("pid 1 is %s: %s (not dumpable)" % (comm, ", ".join(seen)))


@probe("proc.oom-score-adj", "lower /proc/self/oom_score_adj below 0 (-1000 = never OOM-killed)")
def oom_score_adj():
    with open("/proc/self/oom_score_adj") as f:
        before = int(f.read())
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("-1000")
    except OSError as e:
        return contained("%s writing -1000 (was %d): no CAP_SYS_RESOURCE" % (ename(e), before))
    with open("/proc/self/oom_score_adj") as f:
        after = int(f.read())
    if after < min(before, 0):
        return escaped("oom_score_adj %d -> %d" % (before, after))
    return contained("write accepted but value stays %d" % after)


@probe("proc.lsm-attr", "write 'unconfined' to /proc/self/attr/current and attr/exec")
def lsm_attr():
    seen = []
    for name in ("current", "exec"):
        path = "/proc/self/attr/" + name
        try:
            with open(path, "w") as f:
                f.write("unconfined")
            return escaped("wrote %s" % path)
        except OSError as e:
            seen.append("%s %s" % (name, ename(e)))
    try:
        with open("/proc/self/attr/current") as f:
            label = f.read().strip("\0\n ") or "none"
    except OSError as e:
        label = "unreadable (%s)" % ename(e)
    return contained(clip("%s; LSM label %s" % (", ".join(seen), label)))


@probe("sys.kernel-write", "open /sys/kernel and /sys/module knobs for writing (never written)")
def sys_kernel_write():
    paths = ["/sys/kernel/uevent_helper", "/sys/kernel/mm/transparent_hugepage/enabled",
             "/sys/kernel/profiling", "/sys/power/state"]
    sysfs = [m["point"] for m in mounts() if m["fstype"] == "sysfs"]
    seen = {}
    for path in paths:
        err = _open_write(path)
        if err is None:
            return escaped("opened %s for writing (not written)" % path)
        seen.setdefault(err, []).append(os.path.basename(path))
    where = "sysfs at %s" % ",".join(sysfs) if sysfs else "no sysfs mounted"
    return contained(clip("%s; %s" % (where, "; ".join(
        "%s: %s" % (k, ",".join(v)) for k, v in seen.items()))))


@probe("sys.cgroup-escape", "open a parent cgroup's cgroup.procs for writing to leave our cgroup")
def cgroup_escape():
    with open("/proc/self/cgroup") as f:
        ours = [line.strip().split(":", 2) for line in f if line.strip()]
    fs = [m for m in mounts() if m["fstype"] in ("cgroup", "cgroup2")]
    candidates = ["/sys/fs/cgroup/cgroup.procs"]
    for m in fs:
        candidates.append(os.path.join(m["point"], "cgroup.procs"))
        candidates.append(os.path.join(os.path.dirname(m["point"]), "cgroup.procs"))
    for _, controllers, path in ours:
        for top in ("/sys/fs/cgroup", "/sys/fs/cgroup/" + controllers.split(",")[0]):
            parent = os.path.dirname(path.rstrip("/")) or "/"
            candidates.append(os.path.normpath(top + parent + "/cgroup.procs"))
    seen = {}
    for path in dict.fromkeys(candidates):
        err = _open_write(path)
        if err is None:
            return escaped("opened %s for writing (not written)" % path)
        seen.setdefault(err, 0)
        seen[err] += 1
    unified = [p for _, c, p in ours if c == ""]
    return contained(clip("%s; our cgroup %s; %s" % (
        "cgroupfs mounted" if fs else "no cgroupfs mounted", unified[0] if unified else "?",
        ", ".join("%d %s" % (n, e) for e, n in seen.items()))))


def _fd_flags(fd):
    with open("/proc/self/fdinfo/%d" % fd) as f:
        for line in f:
            if line.startswith("flags:"):
                return int(line.split()[1], 8)
    return 0


@probe("fds.inherited", "fds beyond 0-2 and the result pipe: host files, sockets, a tty")
def inherited_fds():
    fds = sorted(int(n) for n in os.listdir("/proc/self/fd"))
    odd, pipes, seen = [], [], []
    for fd in fds:
        try:
            target = os.readlink("/proc/self/fd/%d" % fd)
        except OSError:
            continue  # the listing's own directory fd, closed by now
        seen.append("%d=%s" % (fd, target.split(":")[0]))
        if fd <= 2:
            if target.startswith("/dev/pts") or target.startswith("/dev/tty") or \
                    (target.startswith("/") and target != "/dev/null"):
                odd.append("%d -> %s" % (fd, target))
            continue
        if target.startswith("pipe:") and _fd_flags(fd) & os.O_ACCMODE == os.O_WRONLY:
            pipes.append(fd)  # a write end: the probe's own result pipe
            continue
        odd.append("%d -> %s" % (fd, target))
    if len(pipes) > 1:
        odd.append("%d write pipes %s" % (len(pipes), pipes))
    if odd:
        return escaped(clip("unexpected fds: " + ", ".join(odd)))
    if not pipes:
        raise RuntimeError("no result pipe among %s: the scan cannot be judged" % " ".join(seen))
    return contained(clip("only %s (fd %d is the result pipe)" % (" ".join(seen), pipes[0])))

