"""A small client for the kernel: spawns it outside the jail with the control channel at fd 3
and its stdout/stderr on pipes, as the server does."""

import base64
import json
import os
import select
import signal
import socket
import struct
import subprocess
import time

import pytest

PYTHON = "/usr/bin/python3"
KERNEL_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KERNEL = os.path.join(KERNEL_DIR, "mcpx_kernel.py")
REPLY_TIMEOUT = 120


class Kernel:
    def __init__(self, workdir, preload="", env=None):
        self.workdir = str(workdir)
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock = parent
        full_env = {
            "PATH": "/usr/bin:/bin",
            "HOME": self.workdir,
            "TMPDIR": self.workdir,
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "MCPX_KERNEL_FD": "3",
            "MCPX_PRELOAD": preload,
        }
        for key, value in (env or {}).items():
            if value is None:
                full_env.pop(key, None)
            else:
                full_env[key] = value
        child_fd = child.fileno()
        self.spawned_at = time.perf_counter()
        # The channel must sit at fd 3 exactly, as in the jail.
        self.proc = subprocess.Popen(
            [PYTHON, "-s", KERNEL], cwd=self.workdir, env=full_env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, close_fds=False,
            preexec_fn=lambda: os.dup2(child_fd, 3))
        child.close()
        self.stdout = b""
        self.stderr = b""
        self.next_id = 0
        self.ready = self.recv()
        self.ready_after_s = time.perf_counter() - self.spawned_at
        assert self.ready["type"] == "ready", self.ready
        self.drain()

    def send_raw(self, payload):
        self.sock.sendall(struct.pack(">I", len(payload)) + payload)

    def send(self, message):
        self.send_raw(json.dumps(message).encode())

    def _read_exact(self, n):
        data = b""
        deadline = time.monotonic() + REPLY_TIMEOUT
        while len(data) < n:
            # Keep the output pipes drained while waiting, as the server does, or a cell that
            # prints more than a pipe buffer would block forever.
            ready, _, _ = select.select([self.sock, self.proc.stdout, self.proc.stderr], [], [],
                                       max(0.0, deadline - time.monotonic()))
            if not ready:
                raise TimeoutError("no reply from the kernel")
            if self.sock in ready:
                chunk = self.sock.recv(n - len(data))
                if not chunk:
                    self.drain()
                    raise EOFError("kernel closed the control channel; its stderr: " +
                                   self.stderr.decode("utf-8", "replace")[-2000:])
                data += chunk
            self._drain_ready([r for r in ready if r is not self.sock])
        return data

    def recv(self):
        (length,) = struct.unpack(">I", self._read_exact(4))
        return json.loads(self._read_exact(length).decode("utf-8"))

    def _drain_ready(self, pipes):
        for pipe in pipes:
            chunk = os.read(pipe.fileno(), 1 << 16)
            if pipe is self.proc.stdout:
                self.stdout += chunk
            else:
                self.stderr += chunk

    def drain(self):
        """Reads what is already in the pipes without waiting for more (what the server does
        after a reply)."""
        while True:
            ready, _, _ = select.select([self.proc.stdout, self.proc.stderr], [], [], 0)
            if not ready:
                return
            before = len(self.stdout) + len(self.stderr)
            self._drain_ready(ready)
            if len(self.stdout) + len(self.stderr) == before:
                return  # EOF

    def take_output(self):
        self.drain()
        out, err = self.stdout.decode("utf-8", "replace"), self.stderr.decode("utf-8", "replace")
        self.stdout = self.stderr = b""
        return out, err

    def request(self, op, **fields):
        rid = self.start(op, **fields)
        reply = self.recv()
        assert reply["id"] == rid, reply
        return reply

    def execute(self, code, **fields):
        reply = self.request("execute", code=code, **fields)
        assert reply["type"] == "result", reply
        reply["stdout"], reply["stderr"] = self.take_output()
        return reply

    def start(self, op, **fields):
        """Sends a request without waiting for its reply; returns its id."""
        rid = self.next_id
        self.next_id += 1
        self.send(dict(fields, id=rid, op=op))
        return rid

    def wait_stdout(self, marker):
        """Blocks until marker shows up on the kernel's stdout (proof that a cell is running)."""
        self._wait_output(marker, "stdout")

    def wait_stderr(self, marker):
        self._wait_output(marker, "stderr")

    def _wait_output(self, marker, stream):
        deadline = time.monotonic() + REPLY_TIMEOUT
        while marker.encode() not in getattr(self, stream):
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.proc.stdout, self.proc.stderr], [], [], max(0, left))
            if not ready:
                raise TimeoutError(f"{marker!r} never appeared on {stream}")
            self._drain_ready(ready)

    def interrupt(self):
        os.kill(self.proc.pid, signal.SIGINT)

    def close(self):
        if self.proc.poll() is None:
            try:
                self.request("shutdown")
            except (OSError, EOFError, TimeoutError):
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.sock.close()
        self.proc.stdout.close()
        self.proc.stderr.close()


def png_header_size(data_b64):
    data = base64.b64decode(data_b64)
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.fixture
def kernel_factory(tmp_path):
    kernels = []

    def make(preload="", env=None, workdir=None):
        k = Kernel(workdir or tmp_path, preload=preload, env=env)
        kernels.append(k)
        return k

    yield make
    for k in kernels:
        k.close()


@pytest.fixture(scope="module")
def shared_kernel(tmp_path_factory):
    """One plain kernel for tests that do not depend on a fresh state."""
    k = Kernel(tmp_path_factory.mktemp("ws"))
    yield k
    k.close()
