"""A minimal MCP client over stdio for the Python test suites (integration, security, bench).

It speaks raw JSON lines to the real binary so tests can also send malformed input. Each client
owns one server process and its own temporary workspace and state dir; close() stops the server by
pid and checks it exits.
"""
import json
import os
import selectors
import signal
import subprocess
import tempfile
import time

import as_user

BIN = os.environ.get("MCPX_BIN", os.path.join(os.path.dirname(__file__), "..", "..", "build",
                                              "mcp-executor"))
LATEST = "2025-11-25"
MODERN = "2026-07-28"


def modern_meta(tasks=False):
    """The _meta of a 2026-07-28 request; `tasks` declares the tasks extension."""
    caps = {"extensions": {"io.modelcontextprotocol/tasks": {}}} if tasks else {}
    return {"io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": caps}


class ServerClosed(Exception):
    pass


class McpClient:
    def __init__(self, args=(), workspace=None, env=None, initialize=True, state_dir=None,
                 preexec=None, user=None, log_level="warn"):
        self._tmp = tempfile.TemporaryDirectory(prefix="mcpx-test-")
        self.workspace = workspace or os.path.join(self._tmp.name, "ws")
        self.state_dir = state_dir or os.path.join(self._tmp.name, "state")
        os.makedirs(self.workspace, exist_ok=True)
        os.makedirs(self.state_dir, exist_ok=True)
        if user is not None:
            # Run the server as another (unprivileged) uid: it must own its workspace and state.
            for d in (self._tmp.name, self.workspace, self.state_dir):
                os.chown(d, user, user)
        # As another uid, from a copy of the binary and its data when that uid cannot reach
        # this checkout (as_user.py).
        cmd, user_env = as_user.command(BIN, user, ["serve", "--workspace", self.workspace,
                                                    "--state-dir", self.state_dir,
                                                    "--log-level", log_level, *args])
        full_env = dict(os.environ)
        full_env.update(user_env)
        full_env.update(env or {})
        self.stderr_path = os.path.join(self._tmp.name, "stderr.log")
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._stderr, env=full_env, preexec_fn=preexec)
        self._sel = selectors.DefaultSelector()
        self._sel.register(self.proc.stdout, selectors.EVENT_READ)
        os.set_blocking(self.proc.stdout.fileno(), False)
        self._buf = b""
        self._next_id = 0
        self.notifications = []   # every notification seen, in order
        self.messages = []        # every message seen, in order (responses and notifications)
        self._pending = {}        # id -> response not yet claimed
        self.sizes = {}           # id -> bytes of its response line on the wire (without \n)
        if initialize:
            self.initialize()

    # -- raw I/O ----------------------------------------------------------------------------
    def send_raw(self, data: bytes):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, obj):
        self.send_raw(json.dumps(obj).encode() + b"\n")

    def read_message(self, timeout=30.0):
        """Next message from the server, or raises TimeoutError / ServerClosed."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no message from the server within %.1fs" % timeout)
            if not self._sel.select(left):
                continue
            chunk = self.proc.stdout.read(1 << 20)
            if chunk is None:
                continue
            if not chunk:
                raise ServerClosed("server closed stdout (exit %s); stderr:\n%s" % (
                    self.proc.poll(), self.stderr_text()[-4000:]))
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        msg = json.loads(line)
        self.messages.append(msg)
        if "id" in msg and ("result" in msg or "error" in msg):
            self.sizes[msg["id"]] = len(line)
        if "id" not in msg or ("method" in msg and "result" not in msg and "error" not in msg):
            self.notifications.append(msg)
        return msg

    def expect_silence(self, seconds=0.5):
        """Asserts the server sends nothing for a while."""
        try:
            msg = self.read_message(timeout=seconds)
        except TimeoutError:
            return
        raise AssertionError("unexpected message: %r" % (msg,))

    # -- requests ----------------------------------------------------------------------------
    def next_id(self):
        i = self._next_id
        self._next_id += 1
        return i

    def start(self, method, params=None, id=None, meta=None):
        """Sends a request and returns its id without waiting."""
        rid = self.next_id() if id is None else id
        msg = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None or meta is not None:
            msg["params"] = dict(params or {})
            if meta is not None:
                msg["params"]["_meta"] = meta
        self.send(msg)
        return rid

    def _read_keeping_responses(self, deadline, timeout_message):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(timeout_message)
        msg = self.read_message(timeout=left)
        if "id" in msg and ("result" in msg or "error" in msg):
            self._pending[msg["id"]] = msg

    def wait(self, rid, timeout=60.0):
        """Waits for the response to rid; notifications seen meanwhile are kept."""
        deadline = time.monotonic() + timeout
        while rid not in self._pending:
            self._read_keeping_responses(
                deadline, "no response to id %r within %.1fs" % (rid, timeout))
        return self._pending.pop(rid)

    def wait_message(self, match, timeout=30.0):
        """The first message, already seen or still to come, that `match` accepts; responses
        read meanwhile stay for wait()."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for m in self.messages[seen:]:
                if match(m):
                    return m
            seen = len(self.messages)
            self._read_keeping_responses(deadline, "no matching message within %.1fs" % timeout)

    def request(self, method, params=None, timeout=60.0, meta=None):
        return self.wait(self.start(method, params, meta=meta), timeout)

    def notify(self, method, params=None):
        msg = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)

    def initialize(self, version=LATEST):
        r = self.request("initialize", {"protocolVersion": version, "capabilities": {},
                                        "clientInfo": {"name": "pytest", "version": "0"}})
        assert "result" in r, r
        self.notify("notifications/initialized")
        self.server_info = r["result"]
        return r

    def call(self, tool, arguments=None, timeout=120.0, meta=None):
        """tools/call; returns the CallToolResult (raises on a JSON-RPC error)."""
        r = self.request("tools/call", {"name": tool, "arguments": arguments or {}},
                         timeout=timeout, meta=meta)
        if "error" in r:
            raise AssertionError("tools/call %s failed: %r" % (tool, r["error"]))
        return r["result"]

    # -- lifecycle ---------------------------------------------------------------------------
    def stderr_text(self):
        self._stderr.flush()
        with open(self.stderr_path, "rb") as f:
            return f.read().decode(errors="replace")

    def close(self, timeout=10.0):
        """Closes stdin and waits for a clean exit; returns the exit code."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
                raise AssertionError("server did not exit within %.0fs of EOF" % timeout)
        self._stderr.close()
        code = self.proc.returncode
        self._tmp.cleanup()
        return code

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if self.proc.poll() is None:
            stderr = self.stderr_text()
            code = self.close()
            # A clean exit on EOF is part of the contract; under ASan a leak report makes it fail.
            if exc_type is None:
                assert code == 0, "server exited with %s on EOF; stderr:\n%s" % (code,
                                                                                  stderr[-4000:])
        else:
            self._stderr.close()
            self._tmp.cleanup()


def text_of(result):
    """All text blocks of a CallToolResult joined."""
    return "\n".join(c["text"] for c in result.get("content", []) if c.get("type") == "text")
