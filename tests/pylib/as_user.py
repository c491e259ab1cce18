"""Running the mcp-executor binary as another uid (the security suites' uid 65534) from any
checkout, including one that uid cannot enter (root cloning into /root/..., mode 0700).

The binary finds its data (policies/, rootfs/, sandbox/kernel/) in MCPX_DATA_DIR or in the source
folder compiled into it (src/cli/options.cc DefaultDataDir). When the uid cannot reach the binary
or that data, a copy of both is staged once per test process in a world-readable temporary
folder (removed at exit), and the server runs from there with MCPX_DATA_DIR set.
"""
import atexit
import os
import shutil
import stat
import tempfile

# What DefaultDataDir's consumers read: the policies (and their seccomp profiles), the rootfs
# manifest with its synthetic files, and the kernel's Python code (bound into every sandbox).
DATA_FOLDERS = ("policies", "rootfs", os.path.join("sandbox", "kernel"))

_staged = {}  # binary path -> (staged binary, staged data dir)


def data_dir():
    """The data folder the binary uses when MCPX_DATA_DIR is not given to it."""
    return (os.environ.get("MCPX_DATA_DIR") or os.environ.get("MCPX_SOURCE_DIR") or
            os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))


def _allows(st, uid, gid, bits):
    """Whether the mode bits give `bits` (a mask of 4 r, 2 w, 1 x) to uid/gid, as the kernel
    checks them for an unprivileged process without supplementary groups."""
    if uid == 0:
        return True
    if st.st_uid == uid:
        shift = 6
    elif st.st_gid == gid:
        shift = 3
    else:
        shift = 0
    return (st.st_mode >> shift) & bits == bits


def can_reach(path, uid, gid=None, bits=4):
    """Whether uid can search every folder above `path` and has `bits` on `path` itself."""
    gid = uid if gid is None else gid
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    while True:
        try:
            if not _allows(os.stat(parent), uid, gid, 1):
                return False
        except OSError:
            return False
        if parent == "/":
            break
        parent = os.path.dirname(parent)
    try:
        return _allows(os.stat(path), uid, gid, bits)
    except OSError:
        return False


def _open_up(root):
    """Folders 0755, files 0644 (0755 if executable): readable by every uid."""
    for dirpath, dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                os.chmod(p, 0o755 if os.stat(p).st_mode & stat.S_IXUSR else 0o644)


def _stage(binary, data):
    base = tempfile.mkdtemp(prefix="mcpx-staged-")
    atexit.register(shutil.rmtree, base, ignore_errors=True)
    staged_bin = os.path.join(base, "bin", os.path.basename(binary))
    os.makedirs(os.path.dirname(staged_bin))
    shutil.copy2(binary, staged_bin)
    # The zygote's module is found next to the binary (session/zygote.h).
    module = os.path.join(os.path.dirname(binary), "_mcpx_fork.so")
    if os.path.exists(module):
        shutil.copy2(module, os.path.dirname(staged_bin))
    staged_data = os.path.join(base, "data")
    for folder in DATA_FOLDERS:
        shutil.copytree(os.path.join(data, folder), os.path.join(staged_data, folder),
                        ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    _open_up(base)
    return staged_bin, staged_data


def runnable(binary, uid):
    """(binary path, extra environment) with which `uid` can run the server: the binary itself
    when uid reaches it and its data, else a staged copy with MCPX_DATA_DIR pointing at it."""
    binary = os.path.abspath(binary)
    data = data_dir()
    needs = [(binary, 1), (data, 5)] + [(os.path.join(data, f), 5) for f in DATA_FOLDERS] + [
        (os.path.join(data, "policies", "default.json"), 4)]
    if all(can_reach(p, uid, bits=bits) for p, bits in needs):
        return binary, {}
    if binary not in _staged:
        _staged[binary] = _stage(binary, data)
    staged_bin, staged_data = _staged[binary]
    return staged_bin, {"MCPX_DATA_DIR": staged_data}


def command(binary, uid, args=()):
    """(argv, extra environment) that runs `binary args...` as uid (and gid uid, no groups);
    uid None runs it as the caller."""
    if uid is None:
        return [binary, *args], {}
    path, env = runnable(binary, uid)
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", path, *args], env


def exec_user(user, nobody=65534):
    """(uid, skip reason) for a suite's "root" or "unprivileged" case: "root" runs as the caller
    and needs root; "unprivileged" runs as `nobody` when the suite is root, else as the caller."""
    if user == "root" and os.geteuid() != 0:
        return None, "suite not running as root: the root case needs root"
    return (nobody if os.geteuid() == 0 and user != "root" else None), None


def exec_dirs(prefix, uid):
    """(base, workspace, state dir) for `exec` run as uid: a new folder that every uid can
    search, holding a workspace and a state dir owned by uid (None: the caller). The caller
    removes base."""
    base = tempfile.mkdtemp(prefix=prefix)
    os.chmod(base, 0o755)
    ws = os.path.join(base, "workspace")
    state = os.path.join(base, "state")
    for p in (ws, state):
        os.mkdir(p)
        if uid is not None:
            os.chown(p, uid, uid)
    return base, ws, state
