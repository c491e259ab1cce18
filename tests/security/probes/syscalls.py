# Runs inside a kernel. Calls each syscall with arguments that make it fail harmlessly when it
# is allowed (bad pointers, bad fds, invalid flag combinations), so an allowed call returns
# EFAULT/EBADF/EINVAL/... and a filtered one the policy's errno (bubblewrap try-syscall style).
# Prints one line "name=RESULT" per probe; RESULT is an errno name or "ok".
import ctypes
import errno

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
BAD = 0x10  # never mapped: the kernel's copy_from_user fails with EFAULT


def _sc(nr, *args):
    ctypes.set_errno(0)
    r = _libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    if r >= 0:
        return "ok"
    e = ctypes.get_errno()
    return errno.errorcode.get(e, str(e))


CLONE_FS = 0x200
CLONE_SIGHAND = 0x800
CLONE_THREAD = 0x10000
CLONE_NEWUSER = 0x10000000
AT_FDCWD = -100

PROBES = {
    # Denied by the built-in filter and absent from the profile: the profile's ENOSYS wins.
    "unshare": (272, 0xFFFFFFFF),                 # unfiltered: EINVAL
    "setns": (308, -1, 0),                        # EBADF
    "mount": (165, BAD, BAD, BAD, 0, 0),          # EFAULT
    "pivot_root": (155, BAD, BAD),                # EPERM/EFAULT
    "keyctl": (250, -1, 0, 0, 0, 0),              # EOPNOTSUPP
    "add_key": (248, BAD, BAD, 0, 0, 0),          # EFAULT
    "bpf": (321, -1, BAD, 0),                     # EINVAL/EPERM
    "perf_event_open": (298, BAD, 0, -1, -1, 0),  # EFAULT
    "userfaultfd": (323, -1),                     # EINVAL
    "io_uring_setup": (425, 1, BAD),              # EFAULT
    "ptrace": (101, -1, 1, 0, 0),                 # EIO/ESRCH
    "process_vm_readv": (310, 1, BAD, 1, BAD, 1, 0),
    "kcmp": (312, 1, 1, -1, 0, 0),                # EINVAL
    "open_by_handle_at": (304, -1, BAD, 0),       # EBADF
    "clone3": (435, BAD, 88),                     # EFAULT; filtered to ENOSYS
    # Only the built-in filter objects (clone is allowed by the profile); CLONE_NEWUSER|CLONE_FS
    # is EINVAL for the kernel, so nothing is created even unfiltered.
    "clone_newuser": (56, CLONE_NEWUSER | CLONE_FS, 0, 0, 0, 0),
    # personality: the profile allows five values only; ADDR_NO_RANDOMIZE falls to its ENOSYS.
    "personality_addr_no_randomize": (135, 0x0040000),
    # Socket families: built-in filter answers as a kernel without them would.
    "socket_af_vsock": (41, 40, 1, 0),
    "socket_af_alg": (41, 38, 5, 0),
    # TIOCSTI on /dev/null: unfiltered ENOTTY; the built-in filter's masked compare says EPERM,
    # also with high bits set in the 64-bit argument (CVE-2019-10063).
    "ioctl_tiocsti": (16, 0, 0x5412, BAD),
    "ioctl_tiocsti_high_bits": (16, 0, 0x5412 | (1 << 32), BAD),
    # Controls: allowed calls, same style of arguments; they show the probe reports the
    # kernel's own errno when nothing filters.
    "control_read": (0, -1, BAD, 1),                     # EBADF
    "control_openat": (257, AT_FDCWD, BAD, 0),           # EFAULT
    "control_clone_thread": (56, CLONE_THREAD, 0, 0, 0, 0),  # EINVAL (needs CLONE_SIGHAND)
    "control_ioctl_tcgets": (16, 0, 0x5401, BAD),        # ENOTTY
    "control_personality_query": (135, 0xFFFFFFFF),       # ok
    "control_socket_unix": (41, 1, 1, 0),                 # ok (fd leaked for the cell's life)
}

for _name, (_nr, *_args) in PROBES.items():
    print("%s=%s" % (_name, _sc(_nr, *_args)))
