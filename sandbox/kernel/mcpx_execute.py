"""Runs cells in one persistent __main__ namespace: exec all statements, eval the last
expression, turn exceptions into {type, message, traceback} trimmed to the user's code."""

import _signal
import ast
import builtins
import contextlib
import inspect
import io
import linecache
import os
import signal
import sys
import time
import traceback
import types

import mcpx_display
import mcpx_magics
import mcpx_tracebacks

_MAX_TRACEBACK_CHARS = 8_000
_MAX_MESSAGE_CHARS = 4_000


class StdinNotSupportedError(EOFError):
    """input() and sys.stdin reads: an EOFError subclass, so loops that stop at end of input
    still stop, while the message says why."""


_STDIN_MESSAGE = ("input() is not supported: the sandbox has no interactive stdin; "
                  "pass data in code or files")


def _no_input(prompt=""):
    del prompt
    raise StdinNotSupportedError(_STDIN_MESSAGE)


class _NoStdin(io.TextIOBase):
    """sys.stdin replacement: every read fails with the same clear error instead of blocking or
    silently returning end of file."""

    encoding = "utf-8"
    errors = "strict"

    def readable(self):
        return True

    def fileno(self):
        return 0

    def isatty(self):
        return False

    def read(self, size=-1):
        raise StdinNotSupportedError(_STDIN_MESSAGE)

    def readline(self, size=-1):
        raise StdinNotSupportedError(_STDIN_MESSAGE)

    def readlines(self, hint=-1):
        raise StdinNotSupportedError(_STDIN_MESSAGE)

    def __next__(self):
        raise StdinNotSupportedError(_STDIN_MESSAGE)

    @property
    def buffer(self):
        raise StdinNotSupportedError(_STDIN_MESSAGE)


def install_stdin_guard():
    builtins.input = _no_input
    sys.stdin = _NoStdin()


class Interrupts:
    """SIGINT raises KeyboardInterrupt only while a cell runs; an idle kernel ignores it (the
    server may interrupt just as a cell finishes)."""

    def __init__(self):
        self.armed = False
        self._deferring = False
        self._pending = False

    def _handler(self, signum, frame):
        del signum, frame
        if self.armed:
            if self._deferring:
                self._pending = True
            else:
                raise KeyboardInterrupt

    @contextlib.contextmanager
    def deferred(self):
        """A SIGINT inside the block raises when the block ends: a frame written or read half
        way on fd 3 would leave the channel out of step."""
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = False
            pending, self._pending = self._pending, False
        if pending and self.armed:
            raise KeyboardInterrupt

    def install(self):
        # Reinstalled around every cell: user code may have replaced or reset the handler.
        # _signal's own function: signal.signal turns the old handler into an enum on the way
        # back, through a ValueError for a Python function, every time.
        _signal.signal(signal.SIGINT, self._handler)


def flush_output():
    """Pushes everything the cell printed into fd 1/2 before the reply is written on fd 3."""
    # C stdio first: its buffer can only hold output older than Python's partial last line.
    try:
        _libc().fflush(None)
    except Exception:
        pass
    seen = set()
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        if stream is None or id(stream) in seen:
            continue
        seen.add(id(stream))
        try:
            stream.flush()
        except Exception:
            pass  # a user-installed stream that cannot flush must not lose the reply


_LIBC = None


def _libc():
    global _LIBC
    if _LIBC is None:
        import ctypes  # loaded once at startup by the kernel; cheap here afterwards
        _LIBC = ctypes.CDLL(None)
    return _LIBC


def _safe_str(obj):
    try:
        return str(obj)
    except Exception as e:
        return f"<str() failed: {type(e).__name__}>"


class Executor:
    def __init__(self, interrupts):
        self.interrupts = interrupts
        self.execution_count = 0
        self.pid = os.getpid()
        self.module = types.ModuleType("__main__")
        self.namespace = self.module.__dict__
        self.namespace["__builtins__"] = builtins
        # Functions and classes defined in cells must be importable as __main__.X for pickle
        # and multiprocessing.
        sys.modules["__main__"] = self.module
        # Modules under the working directory at start are the user's: their frames stay in
        # tracebacks.
        self.workspace = os.getcwd()
        self._loop = None
        self._filenames = set()

    def _cell_filename(self, count, code):
        name = f"<cell {count}>"
        suffix = 1
        while name in self._filenames:
            suffix += 1
            name = f"<cell {count}.{suffix}>"
        self._filenames.add(name)
        # mtime None: linecache.checkcache() keeps entries it cannot stat.
        linecache.cache[name] = (len(code), None, code.splitlines(True), name)
        return name

    def _run(self, code_obj):
        if code_obj.co_flags & inspect.CO_COROUTINE:
            # Top-level await: one loop for the kernel's lifetime, so loop-bound objects
            # survive between cells.
            import asyncio
            if self._loop is None or self._loop.is_closed():
                self._loop = asyncio.new_event_loop()
            return self._loop.run_until_complete(eval(code_obj, self.namespace))
        return eval(code_obj, self.namespace)  # exec-mode code objects evaluate to None

    def _run_cell(self, source, filename, out):
        """Returns (value, has_value). Runs inside the interruptible window."""
        tree = ast.parse(mcpx_magics.transform_cell(source), filename, "exec")
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr) and \
                not _ends_with_semicolon(source, tree.body[-1]):
            last = ast.Expression(tree.body.pop().value)
        flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        body = compile(tree, filename, "exec", flags=flags, dont_inherit=True)
        last_code = compile(last, filename, "eval", flags=flags, dont_inherit=True) \
            if last is not None else None
        self._run(body)
        if last_code is None:
            return None
        value = self._run(last_code)
        if value is None:
            return None
        if mcpx_display.is_image_value(value):
            mcpx_display.show_value_image(value)
            return None
        if _echoes_a_plot(value, out):
            return None
        return mcpx_display.text_form(value, out.limits.max_result_chars)

    def execute(self, source, execution_count, limits, output_dir):
        count = execution_count if execution_count is not None else self.execution_count + 1
        self.execution_count = max(self.execution_count, count)
        filename = self._cell_filename(count, source)
        out = mcpx_display.CellOutput(limits, output_dir, count)
        started = time.perf_counter()
        cpu_started = time.process_time()
        result = None
        error = None
        self.interrupts.install()
        mcpx_display.set_current(out)
        self.interrupts.armed = True
        try:
            try:
                result = self._run_cell(source, filename, out)
            except BaseException as e:
                error = e
            try:
                # Figures still open are shown even after an error, as in notebooks.
                mcpx_display.show_figures()
            except BaseException as e:
                _close_all_figures()
                if error is None:
                    error = e
        finally:
            self.interrupts.armed = False
            mcpx_display.set_current(None)
            self.interrupts.install()
        if os.getpid() != self.pid:
            _exit_forked_child(error)
        status = "ok"
        error_info = None
        if isinstance(error, SystemExit) and error.code in (None, 0):
            out.notes.append(f"sys.exit({error.code!r}) was called: the session keeps running "
                             "and keeps its state")
        elif error is not None:
            status = "error"
            error_info = self._error_info(error, filename, source)
        error = None  # drop frames (and their locals) now, not at the next cell
        return {
            "type": "result",
            "status": status,
            "execution_count": count,
            "result": result,
            "error": error_info,
            "images": out.images,
            "saved_images": out.saved_images,
            "notes": out.notes,
            "duration_ms": round((time.perf_counter() - started) * 1000.0, 3),
            "cpu_ms": round((time.process_time() - cpu_started) * 1000.0, 3),
        }

    def _error_info(self, exc, filename, source):
        if isinstance(exc, SyntaxError) and exc.filename == filename and exc.text is None and \
                exc.lineno:
            lines = source.splitlines()
            if 0 < exc.lineno <= len(lines):
                exc.text = lines[exc.lineno - 1] + "\n"
        try:
            te = traceback.TracebackException(type(exc), exc, exc.__traceback__, compact=True)
            frames = list(te.stack)
            mcpx_tracebacks.Trimmer(self.workspace, filename).trim(te)
            text = "".join(te.format())
        except Exception as e:
            text = f"{type(exc).__name__}: <traceback could not be formatted: {e!r}>\n"
            frames = []
        if isinstance(exc, SystemExit):
            message = (f"sys.exit({exc.code!r}) was called: the session keeps running and "
                       "keeps its state")
        elif isinstance(exc, KeyboardInterrupt):
            message = "execution interrupted; the session keeps its state"
        else:
            message = _safe_str(exc)
        lineno = None
        if isinstance(exc, SyntaxError):
            lineno = exc.lineno if exc.filename == filename else None
        else:
            for frame in reversed(frames):
                if frame.filename == filename:
                    lineno = frame.lineno
                    break
        return {
            "type": type(exc).__name__,
            "message": mcpx_display.cap_text(message, _MAX_MESSAGE_CHARS),
            "traceback": mcpx_display.cap_text(text, _MAX_TRACEBACK_CHARS),
            "lineno": lineno,
        }


def _ends_with_semicolon(source, node):
    """`expr;` on the last line hides the value, as in notebooks."""
    lines = source.splitlines()
    if node.end_lineno is None or node.end_lineno > len(lines):
        return False
    line = lines[node.end_lineno - 1]
    rest = line.encode("utf-8")[node.end_col_offset:].decode("utf-8", "replace")
    return rest.lstrip().startswith(";")


def _echoes_a_plot(value, out):
    """The Line2D list of plt.plot(), the Text of plt.title(), the Axes of df.plot(): next to
    the image of the plot their repr says nothing, as a trailing `;` would hide it. Without a
    plot (nothing shown, no figure open) such a value is shown like any other."""
    if not _is_artists(value):
        return False
    if out.images or out.saved_images:
        return True
    plt = sys.modules.get("matplotlib.pyplot")
    return plt is not None and bool(plt.get_fignums())


_MAX_ARTIST_ITEMS = 1_000


def _is_artists(value):
    """An artist, container of artists or colorbar, or a non-empty list, tuple, dict or object
    array of them (a few levels deep: plt.subplots() gives (Figure, array of Axes)). Types come
    from sys.modules: checking a value must never import matplotlib."""
    kinds = tuple(getattr(sys.modules.get(module), name, None) for module, name in (
        ("matplotlib.artist", "Artist"), ("matplotlib.container", "Container"),
        ("matplotlib.colorbar", "Colorbar")))
    kinds = tuple(k for k in kinds if isinstance(k, type))
    return bool(kinds) and _all_of(value, kinds, 0)


def _all_of(value, kinds, depth):
    if isinstance(value, kinds):
        return True
    if depth >= 3:
        return False
    if isinstance(value, dict):
        value = list(value.values())
    np = sys.modules.get("numpy")
    if np is not None and isinstance(value, np.ndarray):
        if value.dtype != object or value.size > _MAX_ARTIST_ITEMS:
            return False
        value = value.ravel().tolist()
    if not isinstance(value, (list, tuple)) or not value or len(value) > _MAX_ARTIST_ITEMS:
        return False
    return all(_all_of(item, kinds, depth + 1) for item in value)


def _close_all_figures():
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        try:
            plt.close("all")
        except Exception:
            pass


def _exit_forked_child(error):
    """A process forked by user code that runs off the end of the cell must not answer on the
    control channel it shares with the kernel: it ends like a script would."""
    code = 0
    if isinstance(error, SystemExit):
        code = error.code if isinstance(error.code, int) else (0 if error.code is None else 1)
    elif error is not None:
        traceback.print_exception(error)
        code = 1
    flush_output()
    os._exit(code)
