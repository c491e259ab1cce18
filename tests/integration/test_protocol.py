"""The MCP stdio core, end to end: the real binary, raw bytes in, JSON lines out."""
import json
import os
import signal
import subprocess
import tempfile
import time

import pytest

from mcp_client import BIN, LATEST, McpClient

MAX_MESSAGE = 16 << 20


def error_code(msg):
    assert "error" in msg, msg
    return msg["error"]["code"]


def test_initialize_result():
    with McpClient(initialize=False) as c:
        r = c.initialize("2025-06-18")["result"]
        assert r["protocolVersion"] == "2025-06-18"
        assert r["serverInfo"]["name"] == "mcp-executor"
        assert set(r["capabilities"]) >= {"tools", "logging", "resources"}
        assert "/workspace" in r["instructions"]
        assert c.close() == 0


def test_unsupported_version_gets_latest():
    with McpClient(initialize=False) as c:
        assert c.initialize("1999-01-01")["result"]["protocolVersion"] == LATEST


def test_without_handshake_or_per_request_meta_requests_are_refused():
    with McpClient(initialize=False) as c:
        # A legacy client's stray discover: invalid params, which its fallback treats as legacy.
        r = c.request("server/discover", {})
        assert error_code(r) == -32602
        assert "io.modelcontextprotocol/protocolVersion" in r["error"]["message"]
        r = c.request("tools/list")
        assert error_code(r) == -32000
        assert "initialize" in r["error"]["message"]
        assert c.request("ping")["result"] == {}
        c.initialize()
        assert "tools" in c.request("tools/list")["result"]


def test_malformed_lines_get_errors_and_the_server_stays_up():
    with McpClient() as c:
        for raw, code in [(b"{bad json\n", -32700), (b"[]\n", -32600),
                          (b'[{"jsonrpc":"2.0","id":5,"method":"ping"}]\n', -32600),
                          (b'{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}\n', -32600),
                          (b'"\xff\xfe"\n', -32700), (b"42\n", -32600)]:
            c.send_raw(raw)
            msg = c.read_message(timeout=10)
            assert error_code(msg) == code, (raw, msg)
            assert msg["id"] is None
        c.send_raw(b'{"jsonrpc":"2.0","id":1,"method":"tools/list","params":[1]}\n')
        msg = c.read_message(timeout=10)
        assert error_code(msg) == -32602 and msg["id"] == 1
        assert c.request("ping")["result"] == {}
        assert c.close() == 0


def test_ids_crlf_and_blank_lines():
    with McpClient() as c:
        c.send_raw(b'\n\r\n{"jsonrpc":"2.0","id":0,"method":"ping"}\r\n'
                   b'{"jsonrpc":"2.0","id":"zero","method":"ping"}\n'
                   b'{"jsonrpc":"2.0","id":-3,"method":"ping"}\n')
        ids = [c.read_message(timeout=10)["id"] for _ in range(3)]
        assert ids == [0, "zero", -3]


def test_notifications_are_never_answered():
    with McpClient() as c:
        c.notify("notifications/unknown", {"x": 1})
        c.notify("notifications/cancelled", {"requestId": 12345})
        c.notify("tools/list")
        c.expect_silence(0.5)
        assert c.request("ping")["result"] == {}


def test_oversized_line_then_ping_still_answered():
    with McpClient() as c:
        c.send_raw(b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"' +
                   b"x" * (MAX_MESSAGE + 10) + b'"}}\n')
        msg = c.read_message(timeout=30)
        assert error_code(msg) == -32600
        assert msg["id"] is None
        assert "message exceeds %d bytes" % MAX_MESSAGE in msg["error"]["message"]
        r = c.request("ping", timeout=30)
        assert r["result"] == {}
        assert c.close() == 0


def test_tools_list_pagination_with_the_page_size_flag():
    with McpClient() as c:
        everything = [t["name"] for t in c.request("tools/list")["result"]["tools"]]
    with McpClient(args=["--tools-page-size", "1"]) as c:
        names, params, pages = [], {}, 0
        while True:
            r = c.request("tools/list", params)["result"]
            pages += 1
            assert len(r["tools"]) <= 1
            names += [t["name"] for t in r["tools"]]
            if "nextCursor" not in r:
                break
            params = {"cursor": r["nextCursor"]}
            assert pages <= len(everything)
        assert names == everything
        assert pages == max(1, len(everything))
        assert error_code(c.request("tools/list", {"cursor": "not-a-cursor"})) == -32602


def test_unknown_tool_and_logging_level():
    with McpClient() as c:
        r = c.request("tools/call", {"name": "no_such_tool", "arguments": {}})
        assert error_code(r) == -32602
        assert "unknown tool 'no_such_tool'" in r["error"]["message"]
        assert error_code(c.request("logging/setLevel", {"level": "loud"})) == -32602
        assert c.request("logging/setLevel", {"level": "debug"})["result"] == {}


def test_eof_exits_zero():
    with McpClient() as c:
        assert c.close() == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_exits_zero(sig):
    with McpClient(log_level="info") as c:
        assert c.request("ping")["result"] == {}
        os.kill(c.proc.pid, sig)
        assert c.proc.wait(timeout=10) == 0
        assert "shutting down" in c.stderr_text()


def test_client_closing_stdout_is_not_fatal():
    with McpClient() as c:
        c.proc.stdout.close()
        for i in range(3):  # a write to the closed pipe: EPIPE, not SIGPIPE
            try:
                c.send({"jsonrpc": "2.0", "id": i, "method": "ping"})
            except BrokenPipeError:
                break
        assert c.proc.wait(timeout=10) == 0


def test_stdin_from_a_regular_file():
    with tempfile.TemporaryDirectory() as d, tempfile.TemporaryFile() as f:
        f.write(b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":'
                b'{"protocolVersion":"2025-11-25","capabilities":{}}}\n'
                b'{"jsonrpc":"2.0","id":2,"method":"ping"}')
        f.seek(0)
        p = subprocess.run([BIN, "serve", "--workspace", os.path.join(d, "ws"),
                            "--state-dir", os.path.join(d, "st"), "--log-level", "warn"],
                           stdin=f, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.decode().splitlines()
    assert [json.loads(line)["id"] for line in lines] == [1, 2]


def test_stdout_carries_only_json_lines():
    # Debug logging on, plenty of errors and notifications: stdout must still be pure JSON lines.
    with McpClient(log_level="debug") as c:
        c.request("logging/setLevel", {"level": "debug"})
        c.send_raw(b"junk\n[]\n{}\n\n")
        c.notify("notifications/whatever")
        c.request("tools/list")
        c.request("resources/list")
        c.request("tools/call", {"name": "nope"})
        c.proc.stdin.close()
        assert c.proc.wait(timeout=10) == 0
        rest = c._buf + c.proc.stdout.read()
        lines = rest.split(b"\n")
        assert lines[-1] == b""
        for line in lines[:-1]:
            msg = json.loads(line)
            assert msg["jsonrpc"] == "2.0"
        assert "debug" in c.stderr_text()
        for msg in c.messages:
            assert msg["jsonrpc"] == "2.0"


def test_server_logs_reach_the_client_at_its_level():
    with McpClient(log_level="debug") as c:
        c.notify("notifications/unknown-one")  # logged at debug: below the default level
        c.expect_silence(0.5)
        assert c.request("logging/setLevel", {"level": "debug"})["result"] == {}
        c.notify("notifications/unknown-two")
        # Other lines may come first: the server's background work (the font cache, the first
        # warm kernel taking over the workspace) logs at info, which debug now lets through.
        deadline = time.monotonic() + 10
        while True:
            msg = c.read_message(timeout=max(0.1, deadline - time.monotonic()))
            assert msg["method"] == "notifications/message", msg
            if "unknown-two" in msg["params"]["data"]:
                break
        assert msg["params"]["level"] == "debug"
