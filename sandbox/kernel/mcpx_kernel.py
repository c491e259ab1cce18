"""mcp-executor's Python kernel: the process that runs inside the jail.

Started as `/usr/bin/python3 -s /opt/mcpx/kernel/mcpx_kernel.py` with the control channel at fd 3
(env MCPX_KERNEL_FD). It answers framed JSON requests one at a time; user output goes to fd 1/2.
The protocol is specified in PROTOCOL.md next to this file.
"""

import os
import sys
import time

_STARTED = time.perf_counter()

# Every stdlib module the kernel needs is imported now, before the workspace is on sys.path.
import builtins  # noqa: E402
import ctypes  # noqa: E402,F401  (flush_output's fflush(NULL))
import gc  # noqa: E402
import io  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import warnings  # noqa: E402

import mcpx_display  # noqa: E402
import mcpx_execute  # noqa: E402
import mcpx_packages  # noqa: E402
import mcpx_protocol  # noqa: E402

_MPL_BACKEND = "module://mcpx_mpl_backend"
_DEFAULT_OUTPUT_SUBDIR = os.path.join(".mcp-executor", "outputs")


def _setup_streams():
    # Line-buffered text over fd 1/2: print() lines reach the pipe in order with output of C
    # code and subprocesses; partial lines are flushed before every reply.
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(encoding="utf-8", errors="backslashreplace", line_buffering=True)
    mcpx_execute.install_stdin_guard()
    builtins.display = mcpx_display.display


def _isolate_sys_path():
    """sys.path without the workspace: the standard library, installed packages, then the
    kernel's own directory (for the matplotlib backend module).

    The workspace is shared by every session and written by sandboxed code. A warm kernel imports
    its preloads before any session owns it, so a module planted there (`cycler.py`, which
    matplotlib imports) would run in the next session's kernel before that session sent anything.
    Relative entries ('' included) resolve against the working directory, the workspace.
    """
    kernel_dir = os.path.dirname(os.path.abspath(__file__))
    cwd = os.getcwd()
    sys.path[:] = [p for p in sys.path
                   if p and os.path.isabs(p) and os.path.abspath(p) not in (kernel_dir, cwd)]
    sys.path.append(kernel_dir)
    sys.argv[:] = [""]


def _add_workspace_to_sys_path():
    """After the preloads: the workspace (the working directory) goes last, so `import mymodule`
    finds the user's module, but a planted `json.py` or `random.py` never shadows the standard
    library or an installed package that a session imports later."""
    sys.path.append(os.getcwd())


def _setup_matplotlib_env(config_dir=None):
    """Points matplotlib at Agg-based output and a writable config dir holding the prepared
    font cache, before anything can import it (building the cache takes seconds). A forked
    kernel passes its zygote's `config_dir`, to make it again in its own /tmp."""
    os.environ["MPLBACKEND"] = _MPL_BACKEND
    if config_dir is None:
        config_dir = tempfile.mkdtemp(prefix="mcpx-mpl-")
    else:
        os.makedirs(config_dir, mode=0o700, exist_ok=True)
    copied = 0
    cache = os.environ.get("MCPX_MPL_CACHE")
    if cache and os.path.isdir(cache):
        for name in os.listdir(cache):
            if name.endswith(".matplotlib-lock"):
                continue  # a lock left by an older server that built the cache in place
            src = os.path.join(cache, name)
            if os.path.isfile(src) and not os.path.islink(src):
                try:
                    # copy2 keeps mtimes, which lets tests prove the cache was used unchanged.
                    shutil.copy2(src, os.path.join(config_dir, name))
                    copied += 1
                except OSError as e:
                    print(f"mcpx-kernel: cannot copy matplotlib cache {src}: {e}", file=sys.stderr)
    os.environ["MPLCONFIGDIR"] = config_dir
    # For code that forces the stock Agg backend: its show() only warns that it cannot show.
    warnings.filterwarnings("ignore", message=".*non-GUI backend.*")
    warnings.filterwarnings("ignore", message=".*is non-interactive, and thus cannot be shown.*")
    return config_dir, copied


def _warm_matplotlib():
    """First draw loads fonts and the Agg renderer; pay for it before `ready`, not in a cell."""
    import matplotlib.pyplot as plt
    fig = plt.figure(figsize=(2, 2))
    fig.add_subplot().plot([0, 1], [0, 1])
    fig.savefig(io.BytesIO(), format="png", bbox_inches="tight")
    plt.close(fig)


def _preload(spec):
    preloaded = []
    failed = []
    for name in (n.strip() for n in spec.split(",")):
        if not name:
            continue
        if not all(part.isidentifier() for part in name.split(".")):
            failed.append({"module": name, "error": "not a module name"})
            continue
        try:
            __import__(name)
            if name == "matplotlib":
                _warm_matplotlib()
            preloaded.append(name)
        except (Exception, SystemExit) as e:
            failed.append({"module": name, "error": f"{type(e).__name__}: {e}"})
    return preloaded, failed


def _process_age_ms():
    """Time since exec of this process, from /proc (10 ms resolution); None if unavailable."""
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime", encoding="ascii") as f:
            uptime = float(f.read().split()[0])
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")
        return max(0.0, round((uptime - started) * 1000.0, 1))
    except (OSError, ValueError, IndexError):
        return None


def _memory():
    info = {}
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    info[key] = int(value.split()[0]) * 1024
    except (OSError, ValueError):
        pass
    return info.get("VmRSS"), info.get("VmHWM")


class PreparedProcess:
    """What prepare_process did: a forked kernel inherits it from its zygote."""

    def __init__(self, mpl_config_dir, mpl_cache_files, preloaded, failed, preload_ms):
        self.mpl_config_dir = mpl_config_dir
        self.mpl_cache_files = mpl_cache_files
        self.preloaded = preloaded
        self.failed = failed
        self.preload_ms = preload_ms


def prepare_process():
    """Everything a kernel needs before its first request that does not depend on the session:
    streams, sys.path, matplotlib's environment, the preloads. A cold kernel does it at start, a
    zygote once before its first fork."""
    _setup_streams()
    _isolate_sys_path()
    mpl_config_dir, mpl_cache_files = _setup_matplotlib_env()
    preload_started = time.perf_counter()
    # Preloads run outside the workspace too: matplotlib reads ./matplotlibrc at import.
    workspace = os.getcwd()
    os.chdir("/")
    try:
        preloaded, failed = _preload(os.environ.get("MCPX_PRELOAD", ""))
    finally:
        os.chdir(workspace)
    preload_ms = round((time.perf_counter() - preload_started) * 1000.0, 3)
    _add_workspace_to_sys_path()
    # The preloaded modules are hundreds of thousands of long-lived objects: keep them out of
    # every later garbage collection (a full pass over them costs ~20 ms in a user's cell). In a
    # zygote this also keeps the collector from writing to them, so their pages stay shared.
    gc.collect()
    gc.freeze()
    return PreparedProcess(mpl_config_dir, mpl_cache_files, preloaded, failed, preload_ms)


def _reseed():
    """A forked kernel starts with its zygote's memory: every generator seeded there would repeat
    in each session. `random` reseeds itself at the fork (an at-fork hook, which the fork module
    runs); numpy's global generator does not."""
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()


class Kernel:
    def __init__(self, fd):
        self.fd = fd
        self.inbox = mcpx_protocol.Inbox(fd)
        self.interrupts = mcpx_execute.Interrupts()
        self.packages = mcpx_packages.Packages(self.inbox, self._send, self.interrupts)
        mcpx_packages.activate(self.packages)
        self.executor = mcpx_execute.Executor(self.interrupts)
        self.mpl_config_dir = None
        self.mpl_cache_files = 0
        self.preloaded = []

    def start(self):
        # Before anything slow: an early SIGINT must not kill a kernel that is starting.
        self.interrupts.install()
        process = prepare_process()
        self.mpl_config_dir, self.mpl_cache_files = process.mpl_config_dir, process.mpl_cache_files
        self.preloaded = process.preloaded
        self._ready(process, init_ms=round((time.perf_counter() - _STARTED) * 1000.0, 3))

    def start_forked(self, process):
        """A kernel forked from a zygote (mcpx_zygote.py), which prepared `process` already."""
        started = time.perf_counter()
        self.interrupts.install()
        _reseed()
        self.mpl_config_dir, self.mpl_cache_files = _setup_matplotlib_env(process.mpl_config_dir)
        self.preloaded = process.preloaded
        self._ready(process, init_ms=round((time.perf_counter() - started) * 1000.0, 3))

    def _ready(self, process, init_ms):
        mcpx_execute.flush_output()
        self._send({
            "type": "ready",
            "protocol": mcpx_protocol.PROTOCOL_VERSION,
            "pid": os.getpid(),
            "python": sys.version.split()[0],
            "preloaded": process.preloaded,
            "failed_preloads": process.failed,
            "startup_ms": _process_age_ms(),
            "init_ms": init_ms,
            "preload_ms": process.preload_ms,
            "max_frame_bytes": mcpx_protocol.MAX_FRAME_BYTES,
        })

    def _send(self, message):
        try:
            frame = mcpx_protocol.encode_message(message)
        except Exception as e:
            frame = mcpx_protocol.encode_message(_internal_error(message.get("id"), e))
        if len(frame) > mcpx_protocol.MAX_FRAME_BYTES + 4:
            frame = mcpx_protocol.encode_message(_shrink(message, len(frame)))
        mcpx_protocol.write_frame(self.fd, frame)

    def serve(self):
        while True:
            try:
                request = self.inbox.read()
            except mcpx_protocol.FrameError as e:
                self._send(_bad_request(None, str(e)))
                continue
            if request.get("op") == "install_result":
                # The late answer to an install whose cell was interrupted: not a request.
                self.packages.stray_answer()
                continue
            reply, stop = self._handle(request)
            mcpx_execute.flush_output()
            self._send(reply)
            if stop:
                return

    def _handle(self, request):
        rid = request.get("id")
        if isinstance(rid, (dict, list)):
            rid = None
        op = request.get("op")
        try:
            if op == "execute":
                reply = self._execute(rid, request)
            elif op == "ping":
                reply = {"type": "pong"}
            elif op == "info":
                reply = self._info()
            elif op == "shutdown":
                return {"id": rid, "type": "shutdown"}, True
            else:
                return _bad_request(rid, f"unknown op {op!r} (expected execute, ping, info or "
                                         "shutdown)"), False
        except _BadRequest as e:
            return _bad_request(rid, str(e)), False
        except KeyboardInterrupt:
            # SIGINT landed on the edge of the interruptible window, after the cell's own
            # handling: the cell was interrupted all the same.
            self.interrupts.armed = False
            mcpx_display.set_current(None)
            reply = {"type": "result", "status": "error",
                     "execution_count": self.executor.execution_count, "result": None,
                     "error": {"type": "KeyboardInterrupt",
                               "message": "execution interrupted; the session keeps its state",
                               "traceback": "KeyboardInterrupt\n", "lineno": None},
                     "images": [], "saved_images": [], "notes": [], "duration_ms": 0.0,
                     "cpu_ms": 0.0}
        except Exception as e:
            reply = _internal_error(rid, e)
        if reply.get("type") == "result":
            imports = self.packages.new_imports()
            if imports:
                reply["imports"] = imports
        reply["id"] = rid
        return reply, False

    def _execute(self, rid, request):
        code = request.get("code")
        if not isinstance(code, str):
            raise _BadRequest("execute needs `code` (string)")
        count = request.get("execution_count")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or
                                  count < 1):
            raise _BadRequest(f"`execution_count` must be a positive integer, got {count!r}")
        limits = request.get("limits")
        if limits is not None and not isinstance(limits, dict):
            raise _BadRequest("`limits` must be an object")
        try:
            limits = mcpx_display.Limits(limits)
        except ValueError as e:
            raise _BadRequest(str(e)) from None
        output_dir = request.get("output_dir")
        if output_dir is None:
            output_dir = os.path.join(os.getcwd(), _DEFAULT_OUTPUT_SUBDIR)
        elif not isinstance(output_dir, str) or not output_dir:
            raise _BadRequest("`output_dir` must be a non-empty string")
        generation = request.get("packages_generation")
        if generation is not None and (isinstance(generation, bool) or
                                       not isinstance(generation, int) or generation < 0):
            raise _BadRequest(f"`packages_generation` must be an integer >= 0, got "
                              f"{generation!r}")
        self.packages.sync(generation)
        self.packages.request_id = rid
        try:
            return self.executor.execute(code, count, limits, output_dir)
        finally:
            self.packages.request_id = None

    def _info(self):
        rss, peak = _memory()
        times = os.times()
        names = [n for n, v in self.executor.namespace.items()
                 if not n.startswith("_") and not isinstance(v, type(os))]
        return {
            "type": "info",
            "pid": os.getpid(),
            "python": sys.version.split()[0],
            "execution_count": self.executor.execution_count,
            "rss_bytes": rss,
            "peak_rss_bytes": peak,
            "cpu_ms": round((times.user + times.system) * 1000.0, 3),
            "threads": threading.active_count(),
            "variables": len(names),
            "preloaded": self.preloaded,
            "mpl_config_dir": self.mpl_config_dir,
            "mpl_cache_files": self.mpl_cache_files,
        }


class _BadRequest(Exception):
    pass


def _bad_request(rid, message):
    return {"id": rid, "type": "error", "error": {"type": "BadRequest", "message": message}}


def _internal_error(rid, exc):
    return {"id": rid, "type": "error",
            "error": {"type": "KernelError", "message": f"{type(exc).__name__}: {exc}"[:4000]}}


def _shrink(message, size):
    """A reply over the frame limit keeps everything but its images."""
    dropped = len(message.get("images") or [])
    shrunk = dict(message, images=[])
    shrunk["notes"] = list(message.get("notes") or []) + [
        f"{dropped} image(s) dropped: the reply was {size} bytes, over the frame limit of "
        f"{mcpx_protocol.MAX_FRAME_BYTES} bytes"]
    return shrunk


def main():
    raw_fd = os.environ.pop("MCPX_KERNEL_FD", "") or "3"
    try:
        fd = int(raw_fd)
        # Subprocesses of user code must not inherit the control channel.
        os.set_inheritable(fd, False)
    except (ValueError, OSError) as e:
        print(f"mcpx-kernel: no control channel at MCPX_KERNEL_FD={raw_fd!r}: {e}",
              file=sys.stderr)
        sys.exit(2)
    run(fd)


def run(fd, process=None):
    """Serves the control channel at `fd` until it closes, then ends the process. `process`:
    what a zygote prepared before it forked this kernel (a cold kernel prepares its own)."""
    kernel = Kernel(fd)
    try:
        if process is None:
            kernel.start()
        else:
            kernel.start_forked(process)
        kernel.serve()
    except mcpx_protocol.ChannelClosed:
        pass
    mcpx_execute.flush_output()
    if kernel.mpl_config_dir:
        shutil.rmtree(kernel.mpl_config_dir, ignore_errors=True)
    # Skip interpreter teardown: user threads that never end would block a normal exit.
    os._exit(0)


if __name__ == "__main__":
    main()
