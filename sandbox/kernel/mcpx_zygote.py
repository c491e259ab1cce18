"""mcp-executor's zygote: one Python per policy that imports the preloads once and forks a
kernel for each new session (docs/ARCHITECTURE.md "Zygote", jail/session_fork.h).

Started like a kernel (`python3 -s /opt/mcpx/kernel/mcpx_zygote.py`, the same environment), in a
sandbox with the outer layers only, with a SOCK_SEQPACKET socket to the server at fd 3 (env
MCPX_ZYGOTE_FD). The server sends the session plan (JSON, one message); the zygote prepares the
process as a kernel would (mcpx_kernel.prepare_process), answers {"type": "ready", ...} and then
serves fork requests: {"op": "fork"} with the session's fds attached (SCM_RIGHTS: report,
control, stdout, stderr, init's note pipe, then the cgroup files). Each fork's child becomes the
session's kernel through _mcpx_fork.enter_session and serves its control channel as
mcpx_kernel.py does; what happens there is reported on the report socket, not here. It runs no
user code, and no session can reach it.
"""

import json
import os
import signal
import socket
import sys

import mcpx_kernel  # noqa: E402  (its imports are every kernel's)

_ZYGOTE_MODULE_DIR = "/opt/mcpx/zygote"
_FIXED_FDS = 5  # report, control, stdout, stderr, note
_MAX_FDS = _FIXED_FDS + 8  # and the cgroup files (v1: one per hierarchy)
# Above any fd a session maps: the kernel's channel is fd 3 in every forked kernel.
_SOCKET_FD_FLOOR = 64


def _channel():
    raw = os.environ.pop("MCPX_ZYGOTE_FD", "") or "3"
    try:
        fd = os.dup2(int(raw), _SOCKET_FD_FLOOR, inheritable=False)
        os.close(int(raw))
        return socket.socket(fileno=fd)
    except (ValueError, OSError) as e:
        print(f"mcpx-zygote: no channel at MCPX_ZYGOTE_FD={raw!r}: {e}", file=sys.stderr)
        sys.exit(2)


def _fork_session(sock, fork_module, process, fds):
    """Forks one session; returns in the zygote once its first child has gone."""
    pid = os.fork()
    if pid == 0:
        code = 125
        try:
            sock.detach()  # closed by enter_session, whose kernel gets fd 3 for its own channel
            fork_module.enter_session(*fds[:_FIXED_FDS], tuple(fds[_FIXED_FDS:]))
            code = 0
        finally:
            if code != 0:
                os._exit(code)
        os.set_inheritable(3, False)  # user code's subprocesses must not get the channel
        mcpx_kernel.run(3, process)
    for fd in fds:
        os.close(fd)
    # That child only makes the session's namespaces and forks its init, in milliseconds.
    os.waitpid(pid, 0)


def main():
    sock = _channel()
    # A SIGINT meant for a forked kernel that arrives before it has its handler is dropped (the
    # server repeats it); the kernel installs its own first thing.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.path.insert(0, _ZYGOTE_MODULE_DIR)
    import _mcpx_fork
    sys.path.remove(_ZYGOTE_MODULE_DIR)
    _mcpx_fork.configure(sock.recv(1 << 22))
    process = mcpx_kernel.prepare_process()
    sock.send(json.dumps({
        "type": "ready",
        "pid": os.getpid(),
        "preloaded": process.preloaded,
        "failed_preloads": process.failed,
        "preload_ms": process.preload_ms,
    }).encode())
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(sock, 4096, _MAX_FDS)
        except OSError as e:
            print(f"mcpx-zygote: cannot read the server's request: {e}", file=sys.stderr)
            os._exit(1)
        if not message:
            os._exit(0)  # the server closed the channel
        try:
            request = json.loads(message)
        except ValueError:
            request = None
        if not isinstance(request, dict) or request.get("op") != "fork" or len(fds) < _FIXED_FDS:
            print("mcpx-zygote: malformed request from the server", file=sys.stderr)
            for fd in fds:
                os.close(fd)
            continue
        _fork_session(sock, _mcpx_fork, process, fds)


if __name__ == "__main__":
    main()
