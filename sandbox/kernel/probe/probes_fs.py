"""Files: host secrets the code must not see, and writes it must not make outside its folders.

Every file a probe creates has a unique name (.mcpx-probe-<what>-<pid>) and is removed again, so
a weakened policy that lets a write through leaves nothing behind. Details name what stopped the
attempt: EROFS is a read-only mount, EXDEV a different mount, EPERM on chmod/mknod/memfd the
seccomp filter, EACCES in a folder whose mode would allow the write is Landlock.
"""
import errno
import os
import shutil
import socket
import stat
import subprocess
import time

from mcpx_probe import Skip, contained, ename, escaped, host, probe


def clip(text, n=120):
    return text if len(text) <= n else text[:n - 3] + "..."


def unique(folder, what):
    return os.path.join(folder, ".mcpx-probe-%s-%d" % (what, os.getpid()))


def remove(path):
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            os.rmdir(path)
        else:
            os.unlink(path)
    except OSError:
        pass


def mounts():
    """The mounts of /proc/self/mountinfo: point, root (path in its filesystem), opts, fstype."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, right = line.split(" - ", 1)
            fields, after = left.split(), right.split()
            unescape = lambda s: s.replace("\\040", " ").replace("\\011", "\t")  # noqa: E731
            out.append({"root": unescape(fields[3]), "point": unescape(fields[4]),
                        "opts": set(fields[5].split(",")), "fstype": after[0],
                        "source": after[1] if len(after) > 1 else ""})
    return out


def mount_of(path):
    """The mount that holds path (the longest mount point that is a prefix of it)."""
    best = None
    for m in mounts():
        p = m["point"]
        if path == p or path.startswith(p.rstrip("/") + "/"):
            if best is None or len(p) >= len(best["point"]):
                best = m
    return best


def why(path, err):
    """errno name plus what it means for a write at path (EACCES: Landlock or file modes)."""
    if err == "EROFS":
        return "EROFS (read-only mount)"
    if err == "EXDEV":
        return "EXDEV (another mount)"
    if err == "ENOSYS":
        return "ENOSYS (seccomp)"  # every call tried here exists in the kernels we support
    if err == "EACCES" and host().get("landlock_abi") != 0:
        try:
            st = os.stat(os.path.dirname(path) or "/")
            if st.st_uid == os.getuid() and st.st_mode & stat.S_IWUSR:
                return "EACCES (Landlock)"
        except OSError:
            pass
        return "EACCES (file modes)"
    return err


def host_fact(key):
    value = host().get(key)
    if value in (None, ""):
        raise Skip("host().%s not given (run by hand without it)" % key)
    return value


@probe("secrets.shadow", "read /etc/shadow and /etc/gshadow")
def read_shadow():
    seen = []
    for path in ("/etc/shadow", "/etc/gshadow"):
        try:
            with open(path, "rb") as f:
                return escaped("read %d bytes of %s" % (len(f.read(4096)), path))
        except OSError as e:
            seen.append("%s: %s" % (path, ename(e)))
    return contained("; ".join(seen) + " (not in the sandbox's /etc)")


@probe("secrets.passwd", "/etc/passwd holds only the sandbox's own users, no host accounts")
def passwd_accounts():
    with open("/etc/passwd") as f:
        rows = [line.split(":") for line in f.read().splitlines() if line.strip()]
    names = [r[0] for r in rows]
    own = {"sandbox", "nobody", "root"}
    home = host().get("home")
    foreign = [n for n in names if n not in own]
    homes = [r[0] for r in rows if home and len(r) > 5 and r[5] == home]
    if foreign or homes:
        return escaped(clip("host accounts: " + ",".join(foreign + homes)))
    return contained("only %s (synthetic passwd)" % ",".join(names))


@probe("secrets.other-homes", "list or read /home, /root and the server's $HOME")
def other_homes():
    folders = ["/home", "/root"]
    if host().get("home") and host()["home"] not in folders:
        folders.append(host()["home"])
    seen = []
    for path in folders:
        try:
            names = os.listdir(path)
        except OSError as e:
            seen.append("%s %s" % (path, ename(e)))
            continue
        if names:
            return escaped(clip("listed %s: %s" % (path, ",".join(sorted(names)[:6]))))
        seen.append("%s empty" % path)
    return contained(clip(", ".join(seen)))


@probe("secrets.host-paths", "open the state dir and the canary file by their host paths")
def host_paths():
    state, canary = host_fact("state_dir"), host_fact("canary_dir")
    token = host_fact("canary_token")
    seen = []
    try:
        names = os.listdir(state)
        if names:
            return escaped(clip("listed state dir %s: %s" % (state, ",".join(sorted(names)[:5]))))
        seen.append("state dir empty")
    except OSError as e:
        seen.append("state dir " + ename(e))
    for path in (os.path.join(canary, "secret"), canary):
        what = "canary file" if path != canary else "canary dir"
        try:
            if os.path.isdir(path):
                seen.append("%s listable (%d names)" % (what, len(os.listdir(path))))
                continue
            with open(path) as f:
                if token in f.read(4096):
                    return escaped("read the canary token at " + path)
            seen.append("canary file without the token")
        except OSError as e:
            seen.append("%s %s" % (what, ename(e)))
    return contained(clip(", ".join(seen) + " (host paths absent here)"))


SCAN_SKIP = ("/proc", "/sys", "/usr", "/dev")


@probe("secrets.canary-scan", "search every visible file (not /proc /sys /usr /dev) for the canary",
       timeout=20.0)
def canary_scan():
    token = host_fact("canary_token").encode()
    deadline, files, unreadable = time.monotonic() + 12.0, 0, 0
    for top, dirs, names in os.walk("/", onerror=lambda e: None):
        dirs[:] = [d for d in dirs if os.path.join(top, d) not in SCAN_SKIP]
        for n in names:
            path = os.path.join(top, n)
            if time.monotonic() > deadline or files >= 50000:
                return contained("no token in %d files (scan cut short by its bound)" % files)
            try:
                if not stat.S_ISREG(os.lstat(path).st_mode):
                    continue
                files += 1
                with open(path, "rb") as f:
                    if token in f.read(1 << 20):
                        return escaped(clip("canary token found in " + path))
            except OSError:
                unreadable += 1
    return contained("no token in %d files (%d unreadable)" % (files, unreadable))


def _proc_pids():
    return sorted(int(p) for p in os.listdir("/proc") if p.isdigit())


@probe("secrets.environ", "the canary in os.environ or in any readable /proc/*/environ")
def environ_leak():
    token = host().get("canary_token")
    needles = [b"MCPX_PROBE_CANARY"] + ([token.encode()] if token else [])
    if "MCPX_PROBE_CANARY" in os.environ or (token and token in str(os.environ)):
        return escaped("canary in os.environ")
    import ctypes

    # The runner is not dumpable, nor is this fork of it: become dumpable so that our own
    # environ reads (the control); init's and the runner's stay closed.
    ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)
    read, denied = [], []
    for pid in _proc_pids():
        try:
            with open("/proc/%d/environ" % pid, "rb") as f:
                data = f.read()
            read.append(pid)
        except OSError as e:
            denied.append("%d %s" % (pid, ename(e)))
            continue
        if any(n in data for n in needles):
            return escaped("canary in /proc/%d/environ" % pid)
    note = "" if token else " (no token given: name only)"
    return contained(clip("not in os.environ nor environ of pids %s; denied: %s%s" % (
        read, ", ".join(denied) or "none", note)))


@probe("secrets.cmdline", "/proc/*/cmdline names mcp-executor, a host path or the canary")
def cmdline_leak():
    # Every process is looked at, the runner and this probe included: the server passes the
    # context (which holds the canary token) on the runner's stdin, never on its command line.
    facts = ["workspace", "state_dir", "home", "canary_dir", "cwd", "canary_token"]
    needles = [b"mcp-executor"] + [host()[k].encode() for k in facts
                                   if host().get(k) and host()[k] not in ("/", "/tmp")]
    seen = []
    for pid in _proc_pids():
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                data = f.read()
        except OSError:
            continue
        seen.append(pid)
        hit = [n.decode() for n in needles if n in data]
        if hit:
            return escaped(clip("/proc/%d/cmdline has %s" % (pid, hit[0])))
    return contained("no server name, host path or canary in the cmdline of pids %s" % seen)


@probe("secrets.mountinfo", "host paths in /proc/self/mountinfo beyond the sandbox's own binds")
def mountinfo_paths():
    # procfs names each bind's source path (its root in the source filesystem): a known limit
    # for the binds the sandbox is built from (docs/SECURITY.md "Known limits"). Any other host
    # path under the home or state dir shown there is a leak this probe reports.
    state, home = host_fact("state_dir"), host().get("home")
    own = set(host_fact("binds"))
    roots = {m["root"] for m in mounts()}
    named = sorted(r for r in roots if r.startswith(state) or
                   (home and home != "/" and r.startswith(home.rstrip("/") + "/")))
    other = [r for r in named if r not in own]
    if other:
        return escaped(clip("%d mount roots name host paths that are not the sandbox's binds: %s"
                            % (len(other), other[0])))
    return contained("only the sandbox's own %d bind sources are named (known limit: names, "
                     "no access)" % len(named))


@probe("fs.write-system-dirs", "create a file in /, /etc, /usr, /opt/mcpx/kernel, packages, /var")
def write_system_dirs():
    by_err = {}
    for folder in ("/", "/etc", "/usr", "/usr/bin", "/opt/mcpx/kernel", "/opt/mcpx/packages",
                   "/var"):
        label = folder
        path = unique(folder, "w")
        if not os.path.isdir(folder):
            label, path = folder + "(mkdir)", folder
        try:
            if path == folder:
                os.mkdir(path)
            else:
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except OSError as e:
            by_err.setdefault(why(path, ename(e)), []).append(label)
            continue
        remove(path)
        return escaped("created " + path)
    return contained(clip("; ".join("%s: %s" % (k, " ".join(v)) for k, v in by_err.items())))


WRITABLE_OK = ("/workspace", "/tmp", "/dev/shm", "/proc")


@probe("fs.rw-mounts", "read-write mounts other than /workspace, /tmp, /dev/shm and /proc")
def rw_mounts():
    extra = []
    for m in mounts():
        p = m["point"]
        if "rw" not in m["opts"] or p in WRITABLE_OK or p.startswith("/proc/"):
            continue
        try:
            if stat.S_ISCHR(os.stat(p).st_mode):
                continue  # /dev/null and friends, and the /proc masks bound from /dev/null
        except OSError:
            pass
        path = unique(p, "rw")
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            remove(path)
            extra.append("%s (wrote)" % p)
        except OSError as e:
            extra.append("%s (write %s)" % (p, why(path, ename(e))))
    if extra:
        return escaped(clip("rw host mount: " + ", ".join(extra)))
    return contained("only /workspace, /tmp, /dev/shm, /proc and device binds are rw")


@probe("fs.remount-root", "remount / read-write")
def remount_root():
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    MS_REMOUNT, MS_BIND = 32, 4096
    if libc.mount(b"none", b"/", None, MS_REMOUNT | MS_BIND, None) == 0:
        return escaped("mount(/, MS_REMOUNT|MS_BIND) without MS_RDONLY succeeded")
    first = errno.errorcode.get(ctypes.get_errno(), "?")
    if libc.mount(b"none", b"/", None, MS_REMOUNT, None) == 0:
        return escaped("mount(/, MS_REMOUNT) succeeded")
    second = errno.errorcode.get(ctypes.get_errno(), "?")
    libc.mount(b"none", ctypes.c_void_p(0x10), None, MS_REMOUNT, None)
    control = errno.errorcode.get(ctypes.get_errno(), "?")  # EFAULT unless the call is filtered
    cause = "seccomp" if control == second else "kernel; bad pointer gets " + control
    try:
        open(unique("/", "rm"), "w").close()
        return escaped("/ writable after the attempt")
    except OSError as e:
        return contained("bind remount %s, remount %s (%s); / still %s" % (
            first, second, cause, ename(e)))


@probe("fs.hardlink-outside", "hard-link files from outside into /workspace")
def hardlink_outside():
    sources = ["/etc/passwd", "/usr/bin/python3", "/opt/mcpx/kernel/probe/mcpx_probe.py"]
    canary = host().get("canary_dir")
    if canary:
        sources.append(os.path.join(canary, "secret"))
    seen = {}
    for src in sources:
        dst = unique("/workspace", "ln")
        try:
            os.link(src, dst)
        except OSError as e:
            seen.setdefault(why(dst, ename(e)), []).append(os.path.basename(src))
            continue
        remove(dst)
        return escaped("linked %s into /workspace" % src)
    return contained(clip("; ".join("%s: %s" % (k, ",".join(v)) for k, v in seen.items())))


def _status_field(name):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return line.split(":", 1)[1].strip()
    return ""


@probe("fs.setid-bits", "chmod 4755/2755 (and create with them) a file in /workspace and /tmp")
def setid_bits():
    stopped, set_ok = [], []
    for folder in ("/workspace", "/tmp"):
        path = unique(folder, "suid")
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o755))
            for mode in (0o4755, 0o2755):
                try:
                    os.chmod(path, mode)
                    if os.stat(path).st_mode & mode & 0o6000:
                        set_ok.append("%s %o" % (folder, mode))
                except OSError as e:
                    stopped.append("chmod %o %s" % (mode, ename(e)))
        finally:
            remove(path)
        path = unique(folder, "suid-creat")
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o4755))
            if os.stat(path).st_mode & 0o4000:
                set_ok.append("%s open(0o4755)" % folder)
        except OSError as e:
            stopped.append("open(O_CREAT, 04755) " + ename(e))
        finally:
            remove(path)
    if not set_ok:
        return contained(clip("set-id bits refused: " + ", ".join(sorted(set(stopped)))))
    nosuid = all("nosuid" in mount_of(f)["opts"] for f in ("/workspace", "/tmp"))
    if nosuid and _status_field("NoNewPrivs") == "1":
        return contained(clip("bits set (%s) but nosuid + no_new_privs" % ", ".join(set_ok)))
    return escaped(clip("set-id bit kept: " + ", ".join(set_ok)))


def _true_binary():
    path = shutil.which("true") or "/bin/true"
    with open(path, "rb") as f:
        return f.read()


@probe("fs.exec-written", "execute a copy of /bin/true written to /workspace, /tmp, /dev/shm")
def exec_written():
    image, seen = _true_binary(), []
    for folder in ("/workspace", "/tmp", "/dev/shm"):
        path = unique(folder, "exec")
        try:
            with open(path, "wb") as f:
                f.write(image)
            os.chmod(path, 0o755)
        except OSError as e:
            seen.append("%s write %s" % (folder, why(path, ename(e))))
            remove(path)
            continue
        try:
            subprocess.run([path], check=True, timeout=5)
            return escaped("ran a binary written to " + folder)
        except OSError as e:
            noexec = "noexec" in mount_of(folder)["opts"]
            seen.append("%s %s (%s)" % (folder, ename(e), "noexec" if noexec else "exec mount"))
        except subprocess.SubprocessError as e:
            seen.append("%s ran but %s" % (folder, type(e).__name__))
        finally:
            remove(path)
    if any(" ran " in s for s in seen):
        return escaped(clip("; ".join(seen)))
    return contained(clip("; ".join(seen)))


MFD_EXEC, MFD_NOEXEC_SEAL = 0x10, 0x8


def _fexecve(fd):
    """Runs the program in fd with fexecve (execveat AT_EMPTY_PATH) in a child: "" or errno."""
    pid = os.fork()
    if pid == 0:
        try:
            os.execve(fd, ["true"], {})
        except OSError as e:
            os._exit(min(e.errno, 99) + 100)
        os._exit(99)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code >= 100:
        return errno.errorcode.get(code - 100, str(code - 100))
    return "" if code == 0 else "exit %d" % code


@probe("fs.memfd-exec", "memfd_create + execve of a memfd holding a copy of /bin/true")
def memfd_exec():
    image, seen = _true_binary(), []
    for label, flags in (("0", 0), ("MFD_EXEC", MFD_EXEC), ("MFD_NOEXEC_SEAL", MFD_NOEXEC_SEAL)):
        try:
            fd = os.memfd_create("mcpx-probe", flags)
        except OSError as e:
            seen.append("%s: %s" % (label, ename(e)))
            continue
        steps = []
        try:
            os.write(fd, image)
            try:
                os.fchmod(fd, 0o755)
            except OSError as e:
                steps.append("chmod +x " + ename(e))
            err = _fexecve(fd)
            if not err or err.startswith("exit"):
                return escaped("fexecve of a memfd (flags %s) ran /bin/true's copy %s" % (
                    label, err or "(exit 0)"))
            seen.append("%s: %s" % (label, ", ".join(steps + ["fexecve " + err])))
        finally:
            os.close(fd)
    return contained(clip("; ".join(seen)))


def _plant(kind, folder):
    """Creates a symlink, FIFO, socket or device node in folder: None when it worked, else why."""
    path = unique(folder, kind)
    try:
        if kind == "symlink":
            os.symlink("/etc/passwd", path)
        elif kind == "fifo":
            os.mkfifo(path, 0o600)
        elif kind == "socket":
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.bind(path)
        else:
            os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    except OSError as e:
        return why(path, ename(e))
    finally:
        remove(path)
    return None


def _plant_probe(kind):
    err = _plant(kind, "/workspace")
    if err is None:
        return escaped("created a %s in /workspace" % kind)
    control = _plant(kind, "/tmp")
    return contained("%s in /workspace; in /tmp: %s" % (err, control or "allowed"))


@probe("workspace.symlink", "plant a symlink to /etc/passwd in /workspace")
def plant_symlink():
    return _plant_probe("symlink")


@probe("workspace.fifo", "plant a FIFO in /workspace")
def plant_fifo():
    return _plant_probe("fifo")


@probe("workspace.unix-socket", "bind a unix socket to a path in /workspace")
def plant_socket():
    return _plant_probe("socket")


@probe("workspace.mknod", "mknod a character device (1,3 = null) in /workspace and /tmp")
def plant_device():
    return _plant_probe("device")
