"""Budget probes: processes, threads, memory, disk, inodes, fds, inotify, queued signals and CPU
stop at the policy's limits (mcpx_probe.limits()).

Every bomb is bounded by the probe itself, a little past the limit it tests, so that a weakened
sandbox costs the host at most that much; each cleans up after itself.

Processes and threads: init's watchdog (sandbox/jail/mini_init.cc) kills the whole sandbox, the
runner included, when it counts the process limit's worth of tasks on one of its 250 ms ticks.
The bombs therefore hold one task below the limit, wait for a tick (init's voluntary context
switches, in /proc/1/status, go up by one on each), and only then make the two forks that reach
the limit and go past it, releasing everything right after.
"""
import ctypes
import errno
import hashlib
import json
import math
import os
import resource
import signal
import threading
import time

from mcpx_probe import Skip, contained, ename, escaped, fork_with_pipe, host, limits, probe

MiB = 1 << 20
_libc = ctypes.CDLL(None, use_errno=True)


def _limit(key):
    value = limits().get(key)
    if not value:
        raise Skip("limits().%s not given" % key)
    return value


_SOURCE = {"ENOSYS": " (profile default)", "EPERM": " (built-in filter)"}


def count_tasks():
    """Tasks (threads included) in /proc, counted the way init's watchdog counts them."""
    tasks = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            links = os.stat("/proc/%s/task" % entry).st_nlink
        except OSError:
            links = 0
        tasks += links - 2 if links > 2 else 1
    return tasks


def _init_switches():
    try:
        with open("/proc/1/status") as f:
            for line in f:
                if line.startswith("voluntary_ctxt_switches:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def await_tick(limit_s=0.6):
    """Returns just after init's watchdog woke (True), or False when that cannot be seen."""
    first = _init_switches()
    if first is None:
        return False
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if _init_switches() != first:
            return True
        time.sleep(0.0005)
    return False


def _process_limit():
    """The policy's process limit: min(pids, nproc), where fork fails and init's watchdog acts."""
    pids = _limit("pids")
    return min(pids, limits().get("nproc") or pids)


def _hold():
    """A forked holder: sleeps until the bomb kills it."""
    while True:
        time.sleep(60)


def _bomb(what, spawn, limit):
    """Spawns tasks up to limit - 1, then, just after a watchdog tick, two more."""
    try:
        for _ in range(max(0, limit - 1 - count_tasks())):
            spawn()
    except OSError as e:
        return contained("%s: %s at %d tasks, below the process limit %d"
                         % (what, ename(e), count_tasks(), limit))
    before = count_tasks()
    synced = "" if await_tick() else "; no watchdog tick seen"
    made = 0
    try:
        while made < 2:  # the first reaches the limit, the second would go past it
            spawn()
            made += 1
    except OSError as e:
        return contained("%s: %s at %d tasks (process limit %d)%s"
                         % (what, ename(e), before + made, limit, synced))
    return escaped("%s went past the process limit %d: %d tasks" % (what, limit, before + made))


def _settle(tasks, limit_s=3.0):
    deadline = time.monotonic() + limit_s
    while count_tasks() > tasks and time.monotonic() < deadline:
        time.sleep(0.01)


@probe("budget.fork-bomb", "fork until fork fails: EAGAIN at the policy's process limit",
       timeout=30)
def fork_bomb():
    limit = _process_limit()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the holders
    baseline, held = count_tasks(), []

    def spawn():
        pid = os.fork()
        if pid == 0:
            _hold()
        held.append(pid)

    try:
        return _bomb("fork", spawn, limit)
    finally:
        for pid in held:
            os.kill(pid, signal.SIGKILL)
        _settle(baseline)


def _in_grandchild(fn):
    """Runs fn() in a forked grandchild (whose exit ends all its threads at once); fn returns
    a JSON-able value, passed back through a pipe. Returns (value or None, wait status)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            out = {"value": fn()}
        except BaseException as e:  # noqa: BLE001: reported by the parent
            out = {"error": "%s: %s" % (type(e).__name__, e)}
        os.write(w, json.dumps(out).encode())
        os._exit(0)
    os.close(w)
    chunks = []
    while True:
        data = os.read(r, 65536)
        if not data:
            break
        chunks.append(data)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    return (json.loads(b"".join(chunks)) if chunks else None), status


def _pthread_bomb(limit):
    """In the grandchild: threads that sleep in pause(), made with pthread_create (its EAGAIN
    is visible, unlike Python's "can't start new thread"), small stacks so memory is no limit."""
    create = _libc.pthread_create
    create.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    attr = ctypes.create_string_buffer(256)
    _libc.pthread_attr_init(attr)
    _libc.pthread_attr_setstacksize(attr, ctypes.c_size_t(64 * 1024))
    start = ctypes.cast(_libc.pause, ctypes.c_void_p)
    tid = ctypes.c_ulong()

    def spawn():
        err = create(ctypes.byref(tid), attr, start, None)
        if err:
            raise OSError(err, os.strerror(err))

    return _bomb("pthread_create", spawn, limit)


@probe("budget.thread-bomb", "threads until pthread_create fails: EAGAIN at the process limit",
       timeout=30)
def thread_bomb():
    limit = _process_limit()
    baseline = count_tasks()
    result, status = _in_grandchild(lambda: _pthread_bomb(limit))
    _settle(baseline)
    if result is None or "error" in result:
        raise RuntimeError("thread bomb: %s" % (result or {}).get("error", "status %d" % status))
    return tuple(result["value"])


def _allocate(cap_mib, w):
    """In the grandchild: 16 MiB blocks, every page written, each reported on w."""
    try:
        with open("/proc/self/oom_score_adj", "w") as f:  # the OOM killer's first choice
            f.write("1000")
    except OSError:
        pass
    blocks, total = [], 0
    try:
        while total < cap_mib:
            blocks.append(b"\x01" * (16 * MiB))
            total += 16
            os.write(w, b"%d\n" % total)
    except MemoryError:
        os._exit(3)
    os._exit(0)


@probe("budget.memory-bomb", "allocate and touch memory past memory_mb in a grandchild",
       timeout=30)
def memory_bomb():
    limit = _limit("memory_mb")
    cap = limit + 64  # never more than limit + 64 MiB (+ the runner's own few MiB)
    pid, r = fork_with_pipe(lambda w: _allocate(cap, w))
    data = b""
    while True:
        chunk = os.read(r, 4096)
        if not chunk:
            break
        data += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    reached = int(data.split()[-1]) if data.split() else 0
    if os.WIFSIGNALED(status):
        sig = signal.Signals(os.WTERMSIG(status)).name
        why = " (OOM kill)" if sig == "SIGKILL" else ""
        return contained("killed by %s after %d MiB of memory_mb %d%s" % (sig, reached, limit, why))
    if os.WEXITSTATUS(status) == 3:
        return contained("MemoryError after %d MiB (memory_mb %d: address-space limit)"
                         % (reached, limit))
    return escaped("allocated %d MiB, past memory_mb %d + 64, without a kill" % (reached, limit))


def _fill(path, cap_mib):
    """Writes 1 MiB blocks to a new file until an error or cap_mib; removes it.
    Returns (bytes written, errno name or None)."""
    block, written, err = b"\x01" * MiB, 0, None
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        while written < cap_mib * MiB:
            written += os.write(fd, block)
    except OSError as e:
        err = ename(e)
    finally:
        os.close(fd)
        os.unlink(path)
    return written, err


def _disk_bomb(folder, key):
    size = _limit(key)
    written, err = _fill("%s/.mcpx-probe-fill-%d" % (folder, os.getpid()), size + 16)
    mib = written / MiB
    if err is None:
        return escaped("wrote %.0f MiB to %s, past %s %d, without ENOSPC"
                       % (mib, folder, key, size))
    return contained("%s after %.1f MiB in %s (%s %d)" % (err, mib, folder, key, size))


@probe("budget.tmp-disk", "fill /tmp (tmpfs capped at tmp_mb) until ENOSPC", timeout=30)
def tmp_disk():
    return _disk_bomb("/tmp", "tmp_mb")


@probe("budget.shm-disk", "fill /dev/shm (tmpfs capped at shm_mb) until ENOSPC", timeout=30)
def shm_disk():
    return _disk_bomb("/dev/shm", "shm_mb")


@probe("budget.file-size", "one sparse /workspace file past fsize_mb: EFBIG (SIGXFSZ ignored)")
def file_size():
    limit = _limit("fsize_mb") * MiB
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    path = "/workspace/.mcpx-probe-fsize-%d" % os.getpid()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.pwrite(fd, b"x", limit - 1)  # the last byte the limit allows: sparse, 1 byte used
        except OSError as e:
            return contained("%s already at fsize_mb %d minus one byte" % (ename(e), limit // MiB))
        try:
            os.pwrite(fd, b"x", limit)
        except OSError as e:
            return contained("%s writing at %d MiB (fsize_mb %d); the byte before it was written"
                             % (ename(e), limit // MiB, limit // MiB))
        return escaped("wrote a byte at offset %d MiB, past fsize_mb" % (limit // MiB))
    finally:
        os.close(fd)
        os.unlink(path)


@probe("budget.tmp-inodes", "empty files in /tmp until ENOSPC (inodes: one per 4 KiB of tmp_mb)",
       timeout=30)
def tmp_inodes():
    bound = _limit("tmp_mb") * 256  # what tmp_mb holds at one page per file
    folder = "/tmp/.mcpx-probe-inodes-%d" % os.getpid()
    os.mkdir(folder, 0o700)
    made, err = 0, None
    try:
        while made < bound + 1024:
            os.close(os.open("%s/%d" % (folder, made), os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                             0o600))
            made += 1
    except OSError as e:
        err = ename(e)
    finally:
        total = os.statvfs("/tmp").f_files
        for n in range(made):
            os.unlink("%s/%d" % (folder, n))
        os.rmdir(folder)
    if err is None:
        return escaped("%d empty files, no ENOSPC: /tmp has %d inodes (> %d, 1 per 4 KiB of "
                       "tmp_mb)" % (made, total, bound))
    return contained("%s after %d files in /tmp (%d inodes; bound %d)" % (err, made, total, bound))


@probe("budget.open-files", "open /dev/null until EMFILE (nofile), then raise the hard limit")
def open_files():
    limit = _limit("nofile")
    first = len(os.listdir("/proc/self/fd")) - 1  # without listdir's own fd
    fds, err = [], None
    try:
        while first + len(fds) < limit + 16:
            fds.append(os.open("/dev/null", os.O_RDONLY))
    except OSError as e:
        err = ename(e)
    finally:
        for fd in fds:
            os.close(fd)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard + 1, hard + 1))
        raised = "raised the hard limit to %d" % (hard + 1)
    except (OSError, ValueError) as e:
        raised = "raising the hard limit: %s" % (ename(e) if isinstance(e, OSError) else "EPERM")
    total = first + len(fds)
    if err is None or total > limit or raised.startswith("raised"):
        return escaped("%d fds open (nofile %d), %s" % (total, limit, raised))
    return contained("%s at %d open fds (nofile %d); %s" % (err, total, limit, raised))


def _inotify_init():
    fd = _libc.inotify_init1(os.O_CLOEXEC)
    if fd < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return fd


@probe("budget.inotify-instances", "inotify_init1 until EMFILE: at most inotify_instances")
def inotify_instances():
    limit = _limit("inotify_instances")
    host_max = host().get("inotify_max_user_instances")
    cap = limit + 4 if not host_max else min(limit + 4, max(limit, int(host_max) - 8))
    fds, err = [], None
    try:
        while len(fds) < cap:
            fds.append(_inotify_init())
    except OSError as e:
        err = ename(e)
    finally:
        for fd in fds:
            os.close(fd)
    on_host = " of the host's %s per user" % host_max if host_max else ""
    if err and not fds:
        return contained("inotify_init1: %s%s" % (err, _SOURCE.get(err, "")))
    if err is None or len(fds) > limit:
        return escaped("%d inotify instances (inotify_instances %d%s)" % (len(fds), limit, on_host))
    return contained("%s after %d instances (inotify_instances %d%s)"
                     % (err, len(fds), limit, on_host))


@probe("budget.inotify-watches", "inotify watches on distinct files until ENOSPC")
def inotify_watches():
    limit = _limit("inotify_watches")
    folder = "/tmp/.mcpx-probe-watch-%d" % os.getpid()
    os.mkdir(folder, 0o700)
    files = ["%s/%d" % (folder, n) for n in range(limit + 8)]
    watched, err, fd = 0, None, None
    try:
        for path in files:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        fd = _inotify_init()
        for path in files:
            if _libc.inotify_add_watch(fd, path.encode(), 0x2) < 0:  # IN_MODIFY
                e = ctypes.get_errno()
                raise OSError(e, os.strerror(e))
            watched += 1
    except OSError as e:
        err = ename(e)
    finally:
        if fd is not None:
            os.close(fd)
        for path in files:
            if os.path.exists(path):
                os.unlink(path)
        os.rmdir(folder)
    if err is None or watched > limit:
        return escaped("%d watches (inotify_watches %d)" % (watched, limit))
    if fd is None:
        return contained("inotify_init1: %s%s" % (err, _SOURCE.get(err, "")))
    return contained("%s after %d watches (inotify_watches %d)" % (err, watched, limit))


def _sigq():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("SigQ:"):
                return line.split()[1]
    return "?"


@probe("budget.sigpending", "queue real-time signals to self (blocked) until EAGAIN")
def sigpending():
    limit = _limit("sigpending")
    sig = signal.SIGRTMIN
    signal.pthread_sigmask(signal.SIG_BLOCK, [sig])
    queue = _libc.sigqueue
    queue.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p]  # sigval: a pointer's size
    queued, err = 0, None
    while queued < limit + 16:
        if queue(os.getpid(), sig, None) != 0:
            err = errno.errorcode.get(ctypes.get_errno(), "?")
            break
        queued += 1
    if err == "ENOSYS":  # rt_sigqueueinfo is not in the profile: kill() queues them too
        for _ in range(limit + 16):
            os.kill(os.getpid(), sig)
        pending = int(_sigq().split("/")[0])
        if pending > limit:
            return escaped("kill() queued %d signals (sigpending %d)" % (pending, limit))
        return contained("sigqueue: ENOSYS; kill() x%d queued %d (SigQ %s, sigpending %d)"
                         % (limit + 16, pending, _sigq(), limit))
    if err is None or queued > limit:
        return escaped("%d signals queued (sigpending %d)" % (queued, limit))
    return contained("%s after %d queued signals (SigQ %s, sigpending %d)"
                     % (err, queued, _sigq(), limit))


@probe("budget.cpu", "busy threads for 2 s: CPU time within cpus x wall time", timeout=15)
def cpu():
    # On a host whose CPUs are busy with other work, unconfined threads may get no more than
    # the limit either; "contained" then only says the use stayed within it. Two seconds, not
    # one: a quota is enforced per period (100 ms for the cgroup and for init's meter), so the
    # first period's burst on every core would eat most of a one-second margin.
    cpus = _limit("cpus")
    available = len(os.sched_getaffinity(0))
    threads = min(available, max(2, math.ceil(cpus) + 1))
    if threads <= cpus * 1.25:
        raise Skip("%d CPUs here: %d busy threads cannot exceed cpus %g" % (available, threads,
                                                                             cpus))
    stop = time.monotonic() + 2.0
    block = b"\x01" * MiB

    def burn():  # sha256 of large buffers releases the GIL
        h = hashlib.sha256()
        while time.monotonic() < stop:
            h.update(block)

    before, start = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    workers = [threading.Thread(target=burn) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    after, wall = resource.getrusage(resource.RUSAGE_SELF), time.monotonic() - start
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    bound = cpus * wall * 1.25 + 0.1
    detail = "%d busy threads used %.2f s CPU in %.2f s (cpus %g: at most %.2f s)" % (
        threads, used, wall, cpus, bound)
    limit_by = host().get("cpu_limit_by")  # "cgroup", "init", "" (none); absent by hand
    if limit_by == "init":
        detail += "; held by the sandbox's init (no cgroup cpu controller)"
    if limit_by == "":
        # The server knows it set no CPU limit: a busy host must not make this look contained.
        return escaped("no CPU limit (the server set none); " + detail)
    return contained(detail) if used <= bound else escaped(detail)
