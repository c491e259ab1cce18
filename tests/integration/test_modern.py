"""MCP 2026-07-28 beside the handshake revisions, raw JSON-RPC against the real binary: the
stateless era's discover, envelope and errors, and execute_python as a task in both eras."""
import json
import re
import time

import pytest

from mcp_client import MODERN, McpClient, modern_meta

VERSION = "io.modelcontextprotocol/protocolVersion"
CAPS = "io.modelcontextprotocol/clientCapabilities"
TASKS = "io.modelcontextprotocol/tasks"
SUPPORTED = [MODERN, "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"]


def error_of(r):
    assert "error" in r, r
    return r["error"]


def last_size(c):
    """Bytes on the wire of the most recent response."""
    return next(reversed(c.sizes.values()))


def wire_size(message):
    return len(json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode())


@pytest.fixture
def modern():
    """A server that never saw initialize."""
    with McpClient(initialize=False) as c:
        yield c


def test_discover_describes_the_server_without_a_handshake(modern):
    r = modern.request("server/discover", meta=modern_meta())["result"]
    assert r["supportedVersions"] == SUPPORTED
    assert r["resultType"] == "complete"
    assert r["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "mcp-executor"
    assert r["capabilities"]["extensions"] == {TASKS: {}}
    assert "tasks" not in r["capabilities"]
    assert (r["ttlMs"], r["cacheScope"]) == (3600000, "public")
    assert "/workspace" in r["instructions"]
    # Small: a model-facing client may show it whole.
    assert last_size(modern) < 1200, modern.sizes


@pytest.mark.parametrize("bad_meta, code, needle", [
    ({CAPS: {}}, -32602, VERSION + "\"] is missing"),
    ({VERSION: 20260728, CAPS: {}}, -32602, "must be a string"),
    ({VERSION: MODERN}, -32602, CAPS + "\"] is missing"),
    ({VERSION: MODERN, CAPS: []}, -32602, "must be an object"),
    ({VERSION: MODERN, CAPS: {}, "io.modelcontextprotocol/logLevel": "loud"}, -32602,
     "must be one of debug"),
    ({VERSION: "1900-01-01", CAPS: {}}, -32022, "unsupported protocol version '1900-01-01'"),
    ({VERSION: "2025-11-25", CAPS: {}}, -32022, "served after an initialize handshake"),
])
def test_envelope_errors(modern, bad_meta, code, needle):
    for method in ("server/discover", "tools/list", "tools/call"):
        e = error_of(modern.request(method, {"name": "list_files"}, meta=bad_meta))
        assert last_size(modern) < 400, (method, e)
        assert e["code"] == code, (method, e)
        assert needle in e["message"], (method, e)
        if code == -32022:
            assert e["data"] == {"supported": SUPPORTED, "requested": bad_meta[VERSION]}


def test_removed_and_unknown_methods(modern):
    for method in ("ping", "logging/setLevel", "tasks/result", "tasks/list", "prompts/list"):
        e = error_of(modern.request(method, {"level": "info", "taskId": "x"}, meta=modern_meta(True)))
        assert e["code"] == -32601, (method, e)


def test_missing_client_capability(modern):
    for method in ("tasks/get", "tasks/cancel", "tasks/update"):
        e = error_of(modern.request(method, {"taskId": "x"}, meta=modern_meta()))
        assert last_size(modern) < 400, e
        assert e["code"] == -32021, e
        assert e["data"] == {"requiredCapabilities": {"extensions": {TASKS: {}}}}


def test_lists_and_reads_carry_cache_hints_and_a_miss_is_invalid_params(modern):
    tools = modern.request("tools/list", meta=modern_meta())["result"]
    assert (tools["ttlMs"], tools["cacheScope"], tools["resultType"]) == (3600000, "public",
                                                                         "complete")
    names = [t["name"] for t in tools["tools"]]
    assert names == [t["name"] for t in modern.request("tools/list", meta=modern_meta())["result"]["tools"]]
    assert not any("execution" in t for t in tools["tools"])
    modern.call("write_file", {"path": "a.txt", "content": "hi"}, meta=modern_meta())
    res = modern.request("resources/list", meta=modern_meta())["result"]
    assert (res["ttlMs"], res["cacheScope"]) == (0, "private")
    uri = next(r["uri"] for r in res["resources"] if r["uri"].endswith("/a.txt"))
    read = modern.request("resources/read", {"uri": uri}, meta=modern_meta())["result"]
    assert read["contents"][0]["text"] == "hi" and read["ttlMs"] == 0
    tpl = modern.request("resources/templates/list", meta=modern_meta())["result"]
    assert tpl["resourceTemplates"] == [] and tpl["cacheScope"] == "public"
    e = error_of(modern.request("resources/read", {"uri": uri[:-5] + "b.txt"}, meta=modern_meta()))
    assert e["code"] == -32602 and e["data"]["uri"].endswith("/b.txt"), e


def test_a_legacy_client_on_the_same_stream_still_needs_its_handshake(modern):
    assert modern.call("execute_python", {"code": "1 + 1"}, meta=modern_meta())["structuredContent"][
        "result"] == "2"
    assert error_of(modern.request("tools/list"))["code"] == -32000
    modern.initialize()
    assert "resultType" not in modern.request("tools/list")["result"]


def poll(c, task_id, m, until, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        got = c.request("tasks/get", {"taskId": task_id}, meta=m)["result"]
        if until(got) or time.monotonic() > deadline:
            return got
        time.sleep(0.3)


def test_a_long_cell_becomes_a_task_and_a_short_one_does_not(modern):
    m = modern_meta(True)
    # Warm the session with a plain call first: a kernel's start alone may take the 1 s after
    # which a call becomes a task (under ASan it does).
    modern.call("execute_python", {"code": "import time\nx = 41"}, meta=modern_meta())
    short = modern.call("execute_python", {"code": "x - 1"}, meta=m)
    assert short["resultType"] == "complete" and short["structuredContent"]["result"] == "40"
    handle = modern.request("tools/call", {"name": "execute_python", "arguments": {
        "code": "for i in range(3):\n    print('step', i, flush=True)\n    time.sleep(1)\nx + 1"}},
        meta=m)["result"]
    assert handle["resultType"] == "task", handle
    assert last_size(modern) < 500, handle
    assert re.fullmatch(r"[0-9a-f]{32}", handle["taskId"])
    assert handle["status"] == "working" and handle["pollIntervalMs"] == 1000
    seen = poll(modern, handle["taskId"], m, lambda t: "step" in t.get("statusMessage", ""))
    assert seen["status"] == "working", seen
    assert last_size(modern) < 550, seen
    done = poll(modern, handle["taskId"], m, lambda t: t["status"] != "working")
    assert done["status"] == "completed", done
    assert last_size(modern) < 1000, done  # the task's own fields and the cell's small result
    assert done["result"]["resultType"] == "complete"
    assert done["result"]["structuredContent"]["result"] == "42"
    assert done["result"]["structuredContent"]["stdout"] == "step 0\nstep 1\nstep 2\n"
    # Without the extension, the same cell is a plain call.
    plain = modern.request("tools/call", {"name": "execute_python", "arguments": {
        "code": "time.sleep(1.5)\nx"}}, meta=modern_meta())["result"]
    assert plain["resultType"] == "complete" and plain["structuredContent"]["result"] == "41"


def test_cancel_and_timeout_of_a_modern_task(modern):
    m = modern_meta(True)
    modern.call("execute_python", {"code": "import time\nkept = 5"}, meta=modern_meta())
    handle = modern.request("tools/call", {"name": "execute_python", "arguments": {
        "code": "time.sleep(30)\nkept = 0"}}, meta=m)["result"]
    assert modern.request("tasks/cancel", {"taskId": handle["taskId"]}, meta=m)["result"] == {
        "resultType": "complete", "_meta": handle["_meta"]}
    assert last_size(modern) < 250
    assert poll(modern, handle["taskId"], m, lambda t: True)["status"] == "cancelled"
    after = modern.call("execute_python", {"code": "kept"}, meta=modern_meta(), timeout=15)
    assert after["structuredContent"]["result"] == "5", after

    handle = modern.request("tools/call", {"name": "execute_python", "arguments": {
        "code": "time.sleep(30)", "timeout_seconds": 2}}, meta=m)["result"]
    done = poll(modern, handle["taskId"], m, lambda t: t["status"] != "working")
    assert done["status"] == "completed"
    assert done["result"]["isError"] is True
    assert done["result"]["structuredContent"]["status"] == "timeout"
    assert modern.request("tasks/update", {"taskId": handle["taskId"]}, meta=m)["result"][
        "resultType"] == "complete"


def test_legacy_tasks_for_a_2025_11_25_client():
    with McpClient() as c:
        tools = c.request("tools/list")["result"]["tools"]
        assert {t["name"] for t in tools if "execution" in t} == {"execute_python",
                                                                  "install_package"}
        e = error_of(c.request("tools/call", {"name": "list_files", "arguments": {}, "task": {}}))
        assert e["code"] == -32601
        c.call("execute_python", {"code": "import time\nkept = 9"})
        r = c.request("tools/call", {"name": "execute_python", "task": {"ttl": 120000},
                                     "arguments": {"code": "time.sleep(1)\nkept * 2"}})["result"]
        task = r["task"]
        assert last_size(c) < 400, r
        assert (task["status"], task["ttl"], task["pollInterval"]) == ("working", 120000, 1000)
        result = c.request("tasks/result", {"taskId": task["taskId"]})["result"]
        assert result["structuredContent"]["result"] == "18"
        assert c.request("tasks/get", {"taskId": task["taskId"]})["result"]["status"] == "completed"

        r = c.request("tools/call", {"name": "execute_python", "task": {},
                                     "arguments": {"code": "time.sleep(30)"}})["result"]
        cancelled = c.request("tasks/cancel", {"taskId": r["task"]["taskId"]})["result"]
        assert cancelled["status"] == "cancelled"
        again = error_of(c.request("tasks/cancel", {"taskId": r["task"]["taskId"]}))
        assert again["code"] == -32602 and "already cancelled" in again["message"]
        assert c.call("execute_python", {"code": "kept"}, timeout=15)["structuredContent"][
            "result"] == "9"
        notified = [m for m in c.messages if m.get("method") == "notifications/tasks/status"]
        assert max(wire_size(m) for m in notified) < 600, notified
        statuses = [m["params"]["status"] for m in notified]
        assert statuses.count("cancelled") == 1 and statuses.count("completed") == 1, statuses
        # A modern client cannot reach a legacy task, nor the other way round.
        e = error_of(c.request("tasks/get", {"taskId": task["taskId"]}, meta=modern_meta(True)))
        assert e["code"] == -32602


def test_older_revisions_get_no_tasks():
    with McpClient(initialize=False) as c:
        init = c.initialize("2025-06-18")["result"]
        assert "tasks" not in init["capabilities"]
        r = c.request("tools/call", {"name": "execute_python", "task": {},
                                     "arguments": {"code": "1"}})["result"]
        assert r["structuredContent"]["result"] == "1"  # params.task ignored
        assert error_of(c.request("tasks/get", {"taskId": "x"}))["code"] == -32601
