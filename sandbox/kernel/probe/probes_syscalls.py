"""Seccomp, ioctl and result-channel probes.

Each denied syscall is called with arguments that fail harmlessly if the call reaches the kernel
(bad pointers, bad fds, invalid flags: containers/bubblewrap tests/try-syscall.c style), so the
filter's answer (EPERM from the built-in filter, ENOSYS from the profile's default, SIGSYS for a
foreign architecture) is told apart from the kernel's (EFAULT, EBADF, EINVAL, ...). Every call
runs in a forked grandchild: a call that succeeds unexpectedly changes only that process, and a
SIGSYS kill is an answer, not a crash of the probe.

Syscall numbers are x86_64's. Some calls meet a capability check before their arguments are read
(pivot_root, fsopen, reboot, swapon, acct, syslog, ...); without a filter the kernel says EPERM
too, which is still contained, just not told apart.
"""
import ctypes
import errno
import mmap
import os
import signal

import mcpx_probe
from mcpx_probe import Skip, contained, escaped, probe
from probes_controls import BAD, syscall

# Answers that mean the call never reached the kernel, with what gave them.
FILTER_ERRNOS = {"EPERM": "built-in filter", "ENOSYS": "profile default, or no such syscall"}

AT_FDCWD = -100
CLONE_SIGHAND = 0x800  # without CLONE_VM: EINVAL from the kernel before anything is created
CLONE_NEW = {"NEWNS": 0x20000, "NEWCGROUP": 0x02000000, "NEWUTS": 0x04000000,
             "NEWIPC": 0x08000000, "NEWUSER": 0x10000000, "NEWPID": 0x20000000,
             "NEWNET": 0x40000000}
X32_SYSCALL_BIT = 0x40000000
TIOCSTI = 0x5412
TIOCLINUX = 0x541C


def _x86_64():
    if os.uname().machine != "x86_64":
        raise Skip("syscall numbers here are x86_64's; this is " + os.uname().machine)


def _isolated(nr, *args):
    """Runs one raw syscall in a forked grandchild: its errno name, "ok=N" or "killed by SIG"."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        me = os.getpid()
        ret, err = syscall(nr, *args)
        if os.getpid() != me:  # a clone that went through: this is its child
            os._exit(0)
        os.write(w, (err or "ok=%d" % ret).encode())
        os._exit(0)
    os.close(w)
    out = os.read(r, 64).decode()
    os.close(r)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return "killed by " + signal.Signals(os.WTERMSIG(status)).name
    return out or "exited %d" % os.WEXITSTATUS(status)


def _join(parts):
    text = "; ".join(parts)
    return text if len(text) <= 120 else text[:117] + "..."


def _summary(prefix, answers, label, source):
    """Formats "PREFIX a b -> ERR (source); c -> ERR2", naming calls while that fits 120."""
    by_answer = {}
    for name, a in answers:
        by_answer.setdefault(a, []).append(name)
    for short in (False, True):
        parts = []
        for a, names in by_answer.items():
            calls = "%d calls" % len(names) if short else label or " ".join(names)
            parts.append("%s -> %s%s" % (calls, a, " (%s)" % source(a) if source(a) else ""))
        detail = prefix + "; ".join(parts)
        if len(detail) <= 120:
            break
    return _join([detail])


def judge(calls, blocked=None, label=None):
    """calls: [(name, nr, args...)]. Contained when every answer is the filter's; `label`
    names the calls as a whole in the detail."""
    _x86_64()
    blocked = dict(FILTER_ERRNOS, **(blocked or {}))
    answers = [(c[0], _isolated(c[1], *c[2:])) for c in calls]
    reached = [(name, a) for name, a in answers if a not in blocked and a != "killed by SIGSYS"]
    if reached:
        return escaped(_summary("reached the kernel: ", reached, label, lambda a: ""))
    return contained(_summary("blocked: ", answers, label,
                              lambda a: blocked.get(a, "seccomp kill")))


@probe("seccomp.mount", "mount, umount2, pivot_root, chroot")
def mount_family():
    return judge([("mount", 165, BAD, BAD, BAD, 0, 0), ("umount2", 166, BAD, -1),
                  ("pivot_root", 155, BAD, BAD), ("chroot", 161, BAD)])


@probe("seccomp.mount-api", "fsopen, fsconfig, fsmount, fspick, move_mount, open_tree, "
       "mount_setattr")
def mount_api():
    return judge([("fsopen", 430, BAD, 0xFFFFFFFF), ("fsconfig", 431, -1, 0xFF, 0, 0, 0),
                  ("fsmount", 432, -1, 0xFFFFFFFF, 0), ("fspick", 433, -1, BAD, 0xFFFFFFFF),
                  ("move_mount", 429, -1, BAD, -1, BAD, 0xFFFFFFFF),
                  ("open_tree", 428, -1, BAD, 0xFFFFFFFF),
                  ("mount_setattr", 442, -1, BAD, 0xFFFFFFFF, BAD, 0)])


@probe("seccomp.namespaces", "unshare(all flags), setns(-1)")
def namespaces():
    return judge([("unshare", 272, 0xFFFFFFFF), ("setns", 308, -1, 0)])


@probe("seccomp.clone-newns", "clone with each CLONE_NEW* flag (+CLONE_SIGHAND: EINVAL if allowed)")
def clone_namespaces():
    return judge([(name, 56, flag | CLONE_SIGHAND, 0, 0, 0, 0)
                  for name, flag in CLONE_NEW.items()])


@probe("seccomp.clone3", "clone3(bad pointer): ENOSYS so glibc falls back to clone")
def clone3():
    return judge([("clone3", 435, BAD, 88)], {"ENOSYS": "built-in filter"})


@probe("seccomp.keyrings", "keyctl, add_key, request_key (keyrings are not namespaced)")
def keyrings():
    return judge([("keyctl", 250, -1, 0, 0, 0, 0), ("add_key", 248, BAD, BAD, 0, 0, 0),
                  ("request_key", 249, BAD, BAD, BAD, 0)])


@probe("seccomp.bpf", "bpf(bad command, bad pointer)")
def bpf():
    return judge([("bpf", 321, -1, BAD, 0)])


@probe("seccomp.perf", "perf_event_open(bad attr pointer)")
def perf_event_open():
    return judge([("perf_event_open", 298, BAD, 0, -1, -1, 0)])


@probe("seccomp.userfaultfd", "userfaultfd(invalid flags)")
def userfaultfd():
    return judge([("userfaultfd", 323, -1)])


@probe("seccomp.io_uring", "io_uring_setup, io_uring_enter, io_uring_register (bypass seccomp)")
def io_uring():
    return judge([("io_uring_setup", 425, 1, BAD), ("io_uring_enter", 426, -1, 0, 0, 0, 0, 0),
                  ("io_uring_register", 427, -1, 0, 0, 0)])


@probe("seccomp.ptrace", "ptrace(PEEKDATA) of a pid that does not exist")
def ptrace():
    return judge([("ptrace", 101, 2, 0x3FFFFFFF, BAD, BAD)])


@probe("seccomp.cross-process", "process_vm_readv/writev, process_madvise, kcmp, pidfd_getfd")
def cross_process():
    me = os.getpid()
    return judge([("process_vm_readv", 310, me, BAD, 1, BAD, 1, 0xFF),
                   ("process_vm_writev", 311, me, BAD, 1, BAD, 1, 0xFF),
                   ("process_madvise", 440, -1, BAD, 1, 0, 1),
                   ("kcmp", 312, me, me, -1, 0, 0), ("pidfd_getfd", 438, -1, 0, 1)])


@probe("seccomp.file-handles", "open_by_handle_at, name_to_handle_at (the 'shocker' breakout)")
def file_handles():
    return judge([("open_by_handle_at", 304, -1, BAD, 0),
                  ("name_to_handle_at", 303, AT_FDCWD, BAD, BAD, BAD, 0xFFFFFFFF)])


@probe("seccomp.kernel-code", "kexec_load, kexec_file_load, init/finit/delete_module")
def kernel_code():
    return judge([("kexec_load", 246, 0, 0x10000, 0, 0xFFFF0000),
                  ("kexec_file_load", 320, -1, -1, 0, BAD, 0xFFFFFFFF),
                  ("init_module", 175, BAD, 0, BAD), ("finit_module", 313, -1, BAD, 0xFFFFFFFF),
                  ("delete_module", 176, BAD, 0)])


@probe("seccomp.host-admin", "reboot, swapon/off, acct, quotactl(_fd), syslog, sethostname")
def host_admin():
    return judge([("reboot", 169, 0, 0, 0, BAD), ("swapon", 167, BAD, 0), ("swapoff", 168, BAD),
                  ("acct", 163, BAD), ("quotactl", 179, 0xFF, BAD, 0, BAD),
                  ("quotactl_fd", 443, -1, 0xFF, 0, BAD), ("syslog", 103, 10, 0, 0),
                  ("sethostname", 170, BAD, 0x1000), ("setdomainname", 171, BAD, 0x1000)])


@probe("seccomp.set-time", "settimeofday, clock_settime, clock_adjtime, adjtimex (bad pointers)")
def set_time():
    return judge([("settimeofday", 164, BAD, BAD), ("clock_settime", 227, 0, BAD),
                  ("clock_adjtime", 305, 0, BAD), ("adjtimex", 159, BAD)])


@probe("seccomp.ioports", "iopl(4), ioperm(empty range)")
def ioports():
    return judge([("iopl", 172, 4), ("ioperm", 173, 0, 0, 1)])


@probe("seccomp.fanotify", "fanotify_init(FAN_REPORT_FID | unknown bit)")
def fanotify():
    # FAN_REPORT_FID passes the unprivileged check, the unknown bit then gives EINVAL.
    return judge([("fanotify_init", 300, 0x200 | 0x40000000, 0)])


@probe("seccomp.personality", "personality(ADDR_NO_RANDOMIZE), READ_IMPLIES_EXEC")
def personality():
    return judge([("ADDR_NO_RANDOMIZE", 135, 0x0040000), ("READ_IMPLIES_EXEC", 135, 0x0400000)])


def _int80_getpid():
    """In a grandchild: i386 getpid through int 0x80 from a 7-byte stub in anonymous memory."""
    code = bytes([0xB8, 20, 0, 0, 0,  # mov eax, 20 (i386 getpid)
                  0xCD, 0x80,  # int 0x80
                  0xC3])  # ret
    page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    page.write(code)
    stub = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(page)))
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(w, str(stub()).encode())
        os._exit(0)
    os.close(w)
    out = os.read(r, 32).decode()
    _, status = os.waitpid(pid, 0)
    return out, status


@probe("seccomp.i386", "i386 getpid through int 0x80 (machine code in anonymous memory)")
def i386():
    _x86_64()
    try:
        out, status = _int80_getpid()
    except (OSError, ValueError) as e:
        raise Skip("cannot map the int 0x80 stub: %s" % e) from e
    if os.WIFSIGNALED(status):
        sig = signal.Signals(os.WTERMSIG(status)).name
        if sig == "SIGSYS":
            return contained("int 0x80 getpid: killed by SIGSYS (foreign architecture)")
        if sig == "SIGSEGV":
            raise Skip("int 0x80 faults with SIGSEGV: this kernel has no i386 syscall entry")
        return contained("int 0x80 getpid: killed by " + sig)
    return escaped("int 0x80 getpid reached the kernel: returned %s" % out)


@probe("seccomp.x32", "x32 getpid (syscall number | 0x40000000)")
def x32():
    _x86_64()
    answer = _isolated(X32_SYSCALL_BIT | 39)
    if answer == "killed by SIGSYS":
        return contained("x32 getpid: killed by SIGSYS (x32 bit)")
    return escaped("x32 getpid reached the kernel: " + answer)


def _tty_fds():
    """fds 0-2 and /dev/tty if it opens; the second value says what /dev/tty did."""
    fds = [fd for fd in (0, 1, 2) if _is_open(fd)]
    try:
        fds.append(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK))
        note = "/dev/tty opened"
    except OSError as e:
        note = "/dev/tty: " + errno.errorcode.get(e.errno, str(e.errno))
    return fds, note


def _is_open(fd):
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


def _ioctl_probe(name, request):
    fds, note = _tty_fds()
    if not fds:
        raise Skip("no fd 0-2 open and " + note)
    # The argument is a bad pointer: a tty that got the call would fail with EFAULT.
    calls = [("%s@%d%s" % (name, fd, hi), 16, fd, request | high, BAD)
             for fd in fds for hi, high in (("", 0), ("+hi", 1 << 32),
                                            ("+hi32", 0xFFFFFFFF << 32))]
    label = "%d calls on fds %s" % (len(calls), ",".join(map(str, fds)))
    kind, detail = judge(calls, label=label)
    return kind, _join([detail, note])


@probe("ioctl.tiocsti", "TIOCSTI on fds 0-2 and /dev/tty, also with high bits (CVE-2019-10063)")
def tiocsti():
    return _ioctl_probe("TIOCSTI", TIOCSTI)


@probe("ioctl.tioclinux", "TIOCLINUX on fds 0-2 and /dev/tty, also with high bits")
def tioclinux():
    return _ioctl_probe("TIOCLINUX", TIOCLINUX)


FORGED = b'{"name": "frames.forged", "observed": "contained", "detail": "forged"}\n'


@probe("frames.fd3-write", "write a forged result line to fd 3 (the runner's result channel)")
def fd3_write():
    # First thing, before any open could reuse the number.
    try:
        os.write(3, FORGED)
    except OSError as e:
        return contained("fd 3 is closed in the probe's process: %s"
                         % errno.errorcode.get(e.errno, str(e.errno)))
    return escaped("wrote a forged result line to fd 3 (%s)" % os.readlink("/proc/self/fd/3"))


@probe("frames.runner-fd", "reach the runner's fd 3 through /proc/<runner>/fd")
def runner_fd():
    runner = os.getppid()
    answers = []
    for what, call in (("list fd/", lambda: os.listdir("/proc/%d/fd" % runner)),
                       ("open fd/3", lambda: os.close(
                           os.open("/proc/%d/fd/3" % runner, os.O_WRONLY | os.O_NONBLOCK)))):
        try:
            call()
            answers.append((what, None))
        except OSError as e:
            answers.append((what, errno.errorcode.get(e.errno, str(e.errno))))
    if answers[1][1] is None:
        return escaped("opened /proc/%d/fd/3 for writing" % runner)
    if answers[0][1] is None:
        return escaped("listed /proc/%d/fd (runner dumpable?); open fd/3: %s"
                       % (runner, answers[1][1]))
    return contained("runner (pid %d) is not dumpable: %s" % (
        runner, ", ".join("%s %s" % a for a in answers)))


@probe("frames.stdout-line", "print a forged result line on stdout (not read as results)")
def stdout_line():
    fd3 = _is_open(3)
    if mcpx_probe.RESULT_FD == 1:
        raise Skip("run by hand: stdout is the result channel here, so nothing is forged")
    os.write(1, FORGED)
    if fd3:
        return escaped("fd 3 is open in the probe's process (%s)" % os.readlink("/proc/self/fd/3"))
    return contained("printed a forged line on stdout; fd 3 is not open here, stdout is not read")
