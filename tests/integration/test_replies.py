"""Replies sized for a model (docs/REPLIES.md), through the real server: byte budgets on the
JSON-RPC messages as they are on the wire, the marker of long output, carriage returns, the
saved-outputs caps and the output schemas."""
import os
import re
import time

import pytest

from mcp_client import McpClient, text_of
from policy_files import write_policy

BRIEF = 2048
BUDGET = 8 * 1024


@pytest.fixture(scope="module")
def client():
    with McpClient() as c:
        yield c


def call(c, code, session="replies", meta=None):
    rid = c.start("tools/call", {"name": "execute_python",
                                 "arguments": {"code": code, "session": session}}, meta=meta)
    r = c.wait(rid, timeout=180)
    assert "result" in r, r
    return r["result"], c.sizes[rid]


def marker(text):
    m = re.search(r"^\[\.\.\. .*\]$", text, re.M)
    assert m, text[:3000]
    return m.group(0)


def test_no_schema_has_a_null_type_union(client):
    """Some clients' schema subsets cannot express `"type": [..., "null"]` (the inspector's
    --strict flags it): optional fields are left out instead."""
    tools = client.request("tools/list")["result"]["tools"]

    def walk(schema, where):
        # "type" is one string; "properties" maps names (one may be "type") to schemas.
        assert not isinstance(schema.get("type"), list), where
        for name, sub in schema.get("properties", {}).items():
            walk(sub, f"{where}.{name}")
        if "items" in schema:
            walk(schema["items"], where + "[]")
        for key in ("anyOf", "oneOf", "allOf"):
            for i, sub in enumerate(schema.get(key, [])):
                walk(sub, f"{where}.{key}[{i}]")

    for t in tools:
        walk(t.get("inputSchema", {}), t["name"] + ".inputSchema")
        walk(t.get("outputSchema", {}), t["name"] + ".outputSchema")


def test_a_million_lines_cost_a_few_kilobytes(client):
    r, wire = call(client, "for i in range(10**6): print(i)")
    assert wire < 24 * 1024, wire
    s = r["structuredContent"]
    assert r["isError"] is False and s["truncated"] is True
    # Success: structuredContent carries the budget, the text block a short view.
    assert BUDGET - 100 < len(s["stdout"].encode()) < BUDGET + 400, len(s["stdout"])
    text = text_of(r)
    assert len(text.encode()) < BRIEF + 600, len(text)
    assert s["stdout"].startswith("0\n1\n2\n") and s["stdout"].endswith("999998\n999999\n")
    m = marker(s["stdout"])
    # It names what was left out exactly, and where all of it is.
    shown = s["stdout"].replace(m + "\n", "")
    lines_shown = shown.count("\n")
    assert f"[... {1_000_000 - lines_shown:,} lines (" in m, m
    saved = "/workspace/.mcp-executor/outputs/replies-1-stdout.txt"
    assert f"all 1,000,000 lines: {saved}" in m, m
    assert saved in s["saved_files"]
    with open(client.workspace + saved[len("/workspace"):]) as f:
        assert f.read() == "".join(f"{i}\n" for i in range(10**6))
    # The offset it gives continues right after the head.
    offset = int(re.search(r"read_file offset=(\d+) limit=(\d+)", m).group(1))
    head = s["stdout"][:s["stdout"].index(m)]
    assert offset == len(head.encode())
    page = client.call("read_file", {"path": saved, "offset": offset, "limit": 20})
    first = text_of(page).splitlines()[0]
    assert int(first) == int(head.splitlines()[-1]) + 1
    # The short view points at the long one.
    assert "structuredContent.stdout has 8.0 KiB of head and tail" in marker(text), text


def test_a_failed_call_carries_its_output_in_the_text_block(client):
    r, wire = call(client, "for i in range(3000): print('row', i)\nraise ValueError('late')")
    assert r["isError"] is True
    text = text_of(r)
    s = r["structuredContent"]
    assert "row 0\n" in text and "row 2999\n" in text and "ValueError: late" in text
    assert len(text.encode()) > BUDGET - 200
    assert len(s["stdout"].encode()) < BRIEF + 400
    assert "the text content has" in marker(s["stdout"])
    assert wire < 16 * 1024, wire


def test_small_output_is_whole_in_both_halves(client):
    r, _ = call(client, "print('hello')\n21 * 2")
    assert r["structuredContent"]["stdout"] == "hello\n"
    assert re.fullmatch(r"hello\nOut\[\d+\]: 42", text_of(r)), text_of(r)


def test_a_table_starts_on_its_own_line(client):
    r, _ = call(client, "import pandas as pd\npd.DataFrame({'a': [1, 2], 'b': [3, 4]})")
    text = text_of(r)
    assert re.search(r"^Out\[\d+\]:\n   a  b\n0  1  3\n1  2  4$", text, re.M), text


def test_carriage_returns_keep_each_lines_final_state(client):
    r, _ = call(client, "import sys\nfor i in range(1001):\n"
                        "    sys.stdout.write(f'\\rprogress {i / 10:5.1f}%')\n"
                        "print()\nprint('a\\rb')")
    assert r["structuredContent"]["stdout"] == "progress 100.0%\nb\n"


def test_progress_notifications_collapse_carriage_returns(client):
    code = ("import sys, time\nfor i in range(30):\n    sys.stdout.write(f'\\rstep {i}')\n"
            "    sys.stdout.flush()\n    time.sleep(0.05)\nprint()")
    r, _ = call(client, code, meta={"progressToken": "cr"})
    msgs = [n["params"].get("message", "") for n in client.notifications
            if n.get("method") == "notifications/progress" and
            n["params"].get("progressToken") == "cr"]
    assert msgs, "no progress notifications"
    assert all("\r" not in m for m in msgs), msgs
    assert any(m.startswith("step ") for m in msgs), msgs
    assert r["structuredContent"]["stdout"] == "step 29\n"


def test_saved_outputs_are_capped_and_go_with_reset(tmp_path):
    policy = write_policy(str(tmp_path), "small-saves.json",
                          {"saved_outputs_session_mb": 1, "saved_outputs_mb": 2})
    big = "for i in range(6000): print('y' * 99)"  # 600 KB: saved whole
    with McpClient(["--policy", policy]) as c:
        def saved(r):
            return [p for p in r["structuredContent"]["saved_files"] if p.endswith("stdout.txt")]

        def ws(p):
            return c.workspace + p[len("/workspace"):]

        first, _ = call(c, big, session="s1")
        assert "notes" not in first["structuredContent"]
        second, _ = call(c, big, session="s1")  # 1.2 MB: past the session's 1 MiB
        notes = second["structuredContent"]["notes"]
        assert any("removed 1 older saved output" in n and saved(first)[0] in n
                   for n in notes), notes
        assert "[note] removed 1 older saved output" in text_of(second)
        assert not os.path.exists(ws(saved(first)[0]))
        assert os.path.exists(ws(saved(second)[0]))
        # reset_session takes the session's own files, not another's.
        other, _ = call(c, big, session="s2")
        assert "notes" not in other["structuredContent"]
        c.call("reset_session", {"session": "s1"})
        assert not os.path.exists(ws(saved(second)[0]))
        assert os.path.exists(ws(saved(other)[0]))
