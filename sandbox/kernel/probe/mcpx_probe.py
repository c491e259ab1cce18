"""The escape-probe corpus that `mcp-executor probe` runs inside a policy's sandbox.

Usage (inside the sandbox): python3 mcpx_probe.py < CONTEXT_JSON (or CONTEXT_JSON as argv[1] for
a run by hand: the server passes it on stdin, since every process can read /proc/<pid>/cmdline
and the context holds the canary token)
CONTEXT_JSON: {"only": "PATTERN" or "", "list": bool, "limits": {...the policy's limits...},
               "host": {...facts the server measured outside: canary paths and token, ...}}

Each probe is a function registered with @probe(name, what). It runs in a forked child of this
process (so a probe that changes its process, crashes or gets killed cannot touch the next one)
and returns one of contained(detail), escaped(detail), allowed(detail) or raises Skip(reason).
The runner prints one JSON line per probe on fd 3 (the server's result pipe; stdout when fd 3 is
not open, for a run by hand), in registration order:
  {"name", "group", "what", "expect", "observed", "detail"}
expect is "contained" for an attack and "allowed" for a control (something the sandbox must
let through, so that a contained attack means something); observed is one of contained,
escaped, allowed, skipped, error. A last line {"end": N} says all N chosen probes were reported
(without it the server knows the runner died midway). The server turns these into the table.

The result channel is the runner's alone: a probe's child closes fd 3 before the probe runs, and
the runner is not dumpable, so a probe cannot reach it through /proc/<runner>/fd either. What a
probe prints on stdout or stderr is not read as a result.
"""
import errno
import fnmatch
import json
import os
import select
import signal
import sys
import time
import traceback

PROBES = []
CONTEXT = {}


class Skip(Exception):
    """This machine or policy cannot run the probe; the message says why."""


def contained(detail):
    return ("contained", detail)


def escaped(detail):
    return ("escaped", detail)


def allowed(detail):
    return ("allowed", detail)


def probe(name, what, expect="contained", timeout=10.0):
    """Registers fn as probe `name` ("group.short-name"); `what` is one line for the table."""

    def register(fn):
        if any(p["name"] == name for p in PROBES):
            raise ValueError("duplicate probe " + name)
        PROBES.append({"name": name, "group": name.split(".", 1)[0], "what": what,
                       "expect": expect, "timeout": timeout, "fn": fn})
        return fn

    return register


def ename(e):
    """An exception's errno name (ENOENT), or its text when it carries no errno."""
    code = getattr(e, "errno", None)
    return errno.errorcode.get(code, str(code)) if code else str(e)


def limits():
    return CONTEXT.get("limits", {})


def host():
    return CONTEXT.get("host", {})


def _selected(name, pattern):
    if not pattern:
        return True
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(name, pattern)
    return pattern in name


RESULT_FD = 3


def _run_child(p, w):
    """In the forked child: run the probe and write (observed, detail) as JSON to w."""
    try:
        if RESULT_FD != 1:
            os.close(RESULT_FD)
        os.setpgid(0, 0)
        observed, detail = p["fn"]()
        out = {"observed": observed, "detail": str(detail)}
    except Skip as e:
        out = {"observed": "skipped", "detail": str(e)}
    except BaseException as e:  # noqa: BLE001: every failure is a result
        tb = traceback.extract_tb(e.__traceback__)
        where = ":%d" % tb[-1].lineno if tb else ""
        detail = "%s: %s (probe line%s)" % (type(e).__name__, e, where)
        out = {"observed": "error", "detail": detail}
    data = json.dumps(out).encode()
    os.write(w, data[:60000])
    os._exit(0)


def _describe_end(status):
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return "killed by %s" % signal.Signals(sig).name
    return "exited %d without a result" % os.WEXITSTATUS(status)


def fork_with_pipe(child_main):
    """Forks a child that runs child_main(write fd) and must end with os._exit; returns
    (pid, read fd) in the parent."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        child_main(w)
        os._exit(0)
    os.close(w)
    return pid, r


def run_one(p):
    pid, r = fork_with_pipe(lambda w: _run_child(p, w))
    chunks, deadline, status = [], time.monotonic() + p["timeout"], None
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select([r], [], [], left)
        if not ready:
            continue
        data = os.read(r, 65536)
        if not data:
            break
        chunks.append(data)
    os.close(r)
    timed_out = time.monotonic() >= deadline
    for target in (-pid, pid):  # the probe's process group, then the child itself
        try:
            os.kill(target, signal.SIGKILL)
        except OSError:
            pass
    _, status = os.waitpid(pid, 0)
    if chunks:
        try:
            return json.loads(b"".join(chunks))
        except ValueError:
            pass
    if timed_out:
        return {"observed": "error", "detail": "no answer within %g s" % p["timeout"]}
    return {"observed": "error", "detail": "probe process " + _describe_end(status)}


def _not_dumpable():
    import ctypes

    PR_SET_DUMPABLE = 4
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0)")


def main(argv):
    global RESULT_FD
    CONTEXT.update(json.loads(argv[1] if len(argv) > 1 else sys.stdin.read() or "{}"))
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    # Run as a script this module is __main__: the probe modules' `from mcpx_probe import ...`
    # must find this copy, whose PROBES the loop below reads.
    sys.modules.setdefault("mcpx_probe", sys.modules[__name__])
    import mcpx_probes_all  # noqa: F401: registers every probe module

    try:
        os.fstat(RESULT_FD)
    except OSError:
        RESULT_FD = 1
    _not_dumpable()
    chosen = [p for p in PROBES if _selected(p["name"], CONTEXT.get("only", ""))]
    for p in chosen:
        line = {k: p[k] for k in ("name", "group", "what", "expect")}
        if not CONTEXT.get("list"):
            line.update(run_one(p))
        _emit(line)
    _emit({"end": len(chosen)})
    return 0


def _emit(obj):
    data = (json.dumps(obj) + "\n").encode()
    while data:
        data = data[os.write(RESULT_FD, data):]


if __name__ == "__main__":
    sys.exit(main(sys.argv))
