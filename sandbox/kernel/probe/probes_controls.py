"""Controls: what the sandbox must allow, so that a contained attack is not a broken harness."""
import ctypes
import errno
import os

from mcpx_probe import allowed, contained, probe

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
BAD = 0x10  # never mapped: an allowed call that copies from it fails with EFAULT


def syscall(nr, *args):
    """(return value, errno name or "") of a raw syscall."""
    ctypes.set_errno(0)
    r = _libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    if r >= 0:
        return r, ""
    e = ctypes.get_errno()
    return r, errno.errorcode.get(e, str(e))


@probe("control.workspace-write", "create, write and remove a file in /workspace", "allowed")
def workspace_write():
    path = "/workspace/.mcpx-probe-%d" % os.getpid()
    with open(path, "w") as f:
        f.write("probe")
    os.unlink(path)
    return allowed("wrote and removed " + path)


@probe("control.bad-pointer-efault", "an allowed syscall with a bad pointer gets EFAULT", "allowed")
def bad_pointer_baseline():
    _, err = syscall(257, -100, BAD, 0)  # openat(AT_FDCWD, BAD, 0)
    if err == "EFAULT":
        return allowed("openat(BAD) -> EFAULT: the bad-pointer technique tells blocked from failed")
    return contained("openat(BAD) -> %s, not EFAULT: syscall probes cannot be judged" % err)
