"""Runs `mcp-executor exec --audit`'s code as `python -c CODE` would, noting its current line.

    python3 /opt/mcpx/kernel/mcpx_audit.py FD CODE

FD is a shared page (a memfd the server made) of SLOTS slots of two little-endian u32: a
thread's id in the sandbox's PID namespace and the line of the user's code that thread is on.
When the policy denies a syscall, the server reads the calling thread's slot to say which line
made it. A tracer line-traces only the user's own code objects; any other frame gets no local
tracer, so while a library makes the call, the slot still holds the user's line that called it.

Everything the code can observe is kept as `python -c` has it: a fresh `__main__`, sys.argv
`['-c']`, sys.path[0] `''`, the filename `<string>`, tracebacks without this file's frames, exit
codes (SystemExit, 1 for an uncaught exception, death by SIGINT after KeyboardInterrupt). The
differences left: sys.gettrace() is set, sys.orig_argv names this file, and `ctypes` is
imported.
"""
import sys

SLOTS = 2048
SLOT_BYTES = 8


def _user_code_ids(code):
    """ids of `code` and of every code object nested in it (functions, classes, lambdas)."""
    ids, todo = set(), [code]
    while todo:
        c = todo.pop()
        ids.add(id(c))
        todo.extend(k for k in c.co_consts if isinstance(k, type(code)))
    return ids


def _tracer(page, code):
    import _thread
    import struct

    pack_into = struct.Struct("<II").pack_into
    native_id = _thread.get_native_id
    user = _user_code_ids(code)

    by_thread = {}  # tid -> its local tracer (a fork's threads get their own)

    def local_tracer(tid):
        slot = (tid % SLOTS) * SLOT_BYTES

        def local(frame, event, arg):
            if event == "line":
                pack_into(page, slot, tid, frame.f_lineno)
            elif event == "return":
                back = frame.f_back  # back in the caller, on the line of the call
                if back is not None and id(back.f_code) in user:
                    pack_into(page, slot, tid, back.f_lineno)
            return local

        return local

    def on_call(frame, event, arg):
        if id(frame.f_code) not in user:
            return None
        tid = native_id()
        local = by_thread.get(tid)
        if local is None:
            local = by_thread[tid] = local_tracer(tid)
        return local

    return on_call


def _silent_hook(*_):
    pass


def _map_page(fd):
    """The page as a writable buffer, and `fd` closed: the code sees the fds `python -c` would.
    Through libc's mmap, since the mmap module keeps a duplicate of the fd open."""
    import ctypes
    import os

    size = SLOTS * SLOT_BYTES
    mmap = ctypes.CDLL(None, use_errno=True).mmap
    mmap.restype = ctypes.c_void_p
    mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                     ctypes.c_long)
    prot_read_write, map_shared = 3, 1
    addr = mmap(None, size, prot_read_write, map_shared, fd, 0)
    os.close(fd)
    if addr is None or addr == ctypes.c_void_p(-1).value:
        raise OSError(ctypes.get_errno(), "mmap of the audit page")
    return (ctypes.c_char * size).from_address(addr)


def main():
    fd, source = int(sys.argv[1]), sys.argv[2]
    import threading
    import types

    page = _map_page(fd)
    sys.argv[:] = ["-c"]
    sys.path[0] = ""
    main_module = types.ModuleType("__main__")
    builtins = sys.modules["builtins"]
    main_module.__loader__ = builtins.__loader__  # BuiltinImporter, as for `python -c`
    main_module.__dict__.update(__annotations__={}, __builtins__=builtins)
    sys.modules["__main__"] = main_module
    try:
        code = compile(source, "<string>", "exec")
        trace = _tracer(page, code)
        threading.settrace(trace)
        sys.settrace(trace)
        exec(code, main_module.__dict__)
    except SystemExit:
        raise
    except BaseException as e:  # noqa: B036 - as the interpreter's top level does
        # Drop this frame: the trace starts in the user's code (None for a SyntaxError, which
        # `python -c` prints without a trace too).
        tb = e.__traceback__.tb_next
        sys.last_type, sys.last_value, sys.last_traceback = type(e), e, tb
        sys.excepthook(type(e), e.with_traceback(tb), tb)
        # The interpreter's top level decides the exit (1, or SIGINT for KeyboardInterrupt,
        # after finalization); it prints nothing more.
        sys.excepthook = _silent_hook
        raise


if __name__ == "__main__":
    main()
