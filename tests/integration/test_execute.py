"""execute_python, list_sessions and reset_session through the real server over stdio."""
import base64
import os
import struct
import threading
import time

import pytest

from mcp_client import McpClient, text_of


@pytest.fixture(scope="module")
def client():
    with McpClient() as c:
        yield c


@pytest.fixture(autouse=True)
def close_extra_sessions(client):
    """Each test may open named sessions; close them so the policy's session cap is not hit."""
    yield
    if client.proc.poll() is not None:
        return
    for s in client.call("list_sessions", {})["structuredContent"]["sessions"]:
        if s["session"] != "default":
            client.call("reset_session", {"session": s["session"]})


def run(c, code, session="default", **kw):
    args = {"code": code, "session": session}
    timeout = kw.pop("timeout_seconds", None)
    if timeout is not None:
        args["timeout_seconds"] = timeout
    r = c.call("execute_python", args, timeout=kw.pop("wait", 120))
    assert "structuredContent" in r, r
    return r, r["structuredContent"]


def png_size(data):
    raw = base64.b64decode(data)
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", raw[16:24])


def test_state_persists_and_last_expression(client):
    r, s = run(client, "x = 21")
    assert s["status"] == "ok" and "result" not in s
    r, s = run(client, "y = x * 2\ny")
    assert s["status"] == "ok"
    assert s["result"] == "42"
    assert "42" in text_of(r)
    assert s["execution_count"] >= 2
    assert s["session"] == "default"


def test_dataframe_result_is_readable(client):
    _, s = run(client, "import pandas as pd\npd.DataFrame({'a': [1, 2], 'b': [3, 4]})")
    assert s["status"] == "ok"
    assert "a" in s["result"] and "b" in s["result"] and "DataFrame" not in s["result"]


def test_traceback_points_at_the_right_line(client):
    code = "a = 1\nb = 2\n\ndef f():\n    return 1 / 0\n\nf()\n"
    r, s = run(client, code)
    assert s["status"] == "error"
    assert r["isError"] is True
    assert s["error"]["type"] == "ZeroDivisionError"
    tb = s["error"]["traceback"]
    assert "line 5" in tb and "line 7" in tb
    assert "mcpx_" not in tb  # no kernel frames
    # state survives the exception
    _, s = run(client, "a + b")
    assert s["result"] == "3"


def test_syntax_error_names_the_line(client):
    _, s = run(client, "x = 1\ny = (\n")
    assert s["status"] == "error"
    assert s["error"]["type"] == "SyntaxError"
    assert "line" in s["error"]["traceback"]


def test_fd_level_output_is_captured_in_order(client):
    code = ("import os, sys\nprint('from print')\nsys.stdout.flush()\n"
            "os.system('echo from-shell')\nos.write(2, b'raw stderr\\n')\n"
            "import threading\nt = threading.Thread(target=print, args=('from thread',))\n"
            "t.start(); t.join()\n")
    _, s = run(client, code)
    assert s["status"] == "ok", s
    out = s["stdout"]
    assert out.index("from print") < out.index("from-shell") < out.index("from thread")
    assert "raw stderr" in s["stderr"]


def test_plot_comes_back_as_png_with_its_size(client):
    code = ("import matplotlib.pyplot as plt\nfig = plt.figure(figsize=(4, 3), dpi=50)\n"
            "plt.plot([1, 3, 2])\n")
    r, s = run(client, code)
    assert s["status"] == "ok", s
    imgs = [c for c in r["content"] if c["type"] == "image"]
    assert len(imgs) == 1 and len(s["images"]) == 1
    assert imgs[0]["mimeType"] == "image/png"
    w, h = png_size(imgs[0]["data"])
    assert (w, h) == (s["images"][0]["width"], s["images"][0]["height"])
    # figsize x dpi bounds it (the kernel trims blank margins with bbox_inches="tight")
    assert 0 < w <= 200 and 0 < h <= 150


def test_several_figures(client):
    code = ("import matplotlib.pyplot as plt\nfor i in range(3):\n"
            "    plt.figure(figsize=(2, 2), dpi=40); plt.plot([i, i + 1])\n")
    r, s = run(client, code)
    assert len([c for c in r["content"] if c["type"] == "image"]) == 3
    assert len(s["images"]) == 3


def test_timeout_interrupts_and_keeps_state(client):
    run(client, "keep = 'still here'", session="t")
    r, s = run(client, "while True:\n    pass\n", session="t", timeout_seconds=1)
    assert s["status"] == "timeout"
    assert r["isError"] is True
    assert "kill_reason" not in s
    _, s = run(client, "keep", session="t")
    assert s["result"] == "'still here'"


def test_uninterruptible_code_is_killed_and_reported(client):
    run(client, "lost = 1", session="k")
    code = ("import signal, time\nsignal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGINT])\n"
            "time.sleep(60)\n")
    r, s = run(client, code, session="k", timeout_seconds=1)
    assert s["status"] == "killed"
    assert "did not stop" in s["kill_reason"]
    r, s = run(client, "'lost' in globals()", session="k")
    assert s["status"] == "ok"
    assert s["result"] == "False"
    assert any("lost" in n for n in s["notes"])


def test_crash_is_reported_by_name(client):
    r, s = run(client, "import ctypes\nctypes.string_at(0)", session="crash")
    assert s["status"] == "killed"
    assert "SIGSEGV" in s["kill_reason"]
    _, s = run(client, "1 + 1", session="crash")
    assert s["result"] == "2"


def test_os_exit_is_reported(client):
    _, s = run(client, "import os\nos._exit(3)", session="exit")
    assert s["status"] == "killed"
    assert "code 3" in s["kill_reason"]


def test_output_flood_is_capped_and_saved(client):
    code = "for i in range(200000):\n    print('line', i)\n"
    r, s = run(client, code, session="flood")
    assert s["status"] == "ok"
    assert s["truncated"] is True
    assert len(s["stdout"]) < 10_000
    assert "line 0\n" in s["stdout"] and "line 199999" in s["stdout"]
    saved = [p for p in s["saved_files"] if p.endswith("-stdout.txt")]
    assert saved and saved[0].startswith("/workspace/.mcp-executor/outputs/"), saved
    full = open(client.workspace + saved[0][len("/workspace"):]).read()
    assert full.count("\n") == 200000


def test_input_raises_a_clear_error(client):
    _, s = run(client, "input('name? ')")
    assert s["status"] == "error"
    assert "input" in s["error"]["message"]


def test_cancellation_interrupts_keeps_state_and_sends_no_response(client):
    run(client, "kept = 7", session="c")
    rid = client.start("tools/call", {"name": "execute_python",
                                      "arguments": {"code": "import time\ntime.sleep(30)",
                                                    "session": "c"}})
    time.sleep(1.0)
    client.notify("notifications/cancelled", {"requestId": rid, "reason": "test"})
    # No response for the cancelled request; the session answers the next call with its state.
    _, s = run(client, "kept", session="c")
    assert s["result"] == "7"
    assert rid not in client._pending
    assert not any(m.get("id") == rid for m in client.messages)


def test_cancellation_right_after_the_call_still_interrupts(client):
    # The cancel comes before the kernel has read the cell, while it ignores SIGINT as idle: the
    # interrupt must still land once the cell starts, and the session must keep its state.
    run(client, "kept = 8\nimport time", session="early")
    for attempt in range(3):
        rid = client.start("tools/call", {"name": "execute_python",
                                          "arguments": {"code": "time.sleep(30)",
                                                        "session": "early"}})
        client.notify("notifications/cancelled", {"requestId": rid, "reason": "at once"})
        _, s = run(client, "kept", session="early")
        assert s["status"] == "ok", (attempt, s)
        assert s["result"] == "8", (attempt, s)
        assert not any("kernel" in n and "lost" in n for n in s.get("notes", [])), s


def test_progress_notifications_arrive_before_the_result(client):
    code = "import time\nfor i in range(4):\n    print('step', i, flush=True)\n    time.sleep(0.4)\n"
    rid = client.start("tools/call", {"name": "execute_python",
                                      "arguments": {"code": code, "session": "p"}},
                       meta={"progressToken": "tok-1"})
    resp = client.wait(rid, timeout=60)
    assert resp["result"]["structuredContent"]["status"] == "ok"
    idx = next(i for i, m in enumerate(client.messages) if m.get("id") == rid)
    progress = [m for m in client.messages[:idx] if m.get("method") == "notifications/progress"
                and m["params"]["progressToken"] == "tok-1"]
    assert progress, "no progress notification before the result"
    values = [p["params"]["progress"] for p in progress]
    assert values == sorted(values) and len(set(values)) == len(values)
    assert any("step" in p["params"].get("message", "") for p in progress)


def test_memory_limit_is_reported_by_name(client):
    r, s = run(client, "x = bytearray(3 * 1024 ** 3)", session="oom")
    if s["status"] == "error":
        # Without a usable cgroup the memory cap is RLIMIT_AS: Python sees MemoryError.
        assert s["error"]["type"] == "MemoryError"
    else:
        assert s["status"] == "killed"
        assert "memory limit" in s["kill_reason"]


def test_fork_bomb_is_stopped_and_reported(client):
    code = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    _, s = run(client, code, session="bomb", timeout_seconds=60)
    assert s["status"] == "killed", s
    assert "process limit of 128 reached" in s["kill_reason"], s
    # The server and other sessions are fine.
    _, s = run(client, "x")
    assert s["result"] == "21"


@pytest.mark.parametrize("user", [None, 65534], ids=["server-uid", "unprivileged"])
def test_a_cell_can_start_many_threads(user):
    # Unprivileged on cgroup v1 there is no cgroup: memory is capped by RLIMIT_AS, and glibc's
    # per-thread malloc arenas (64 MiB of address space each) would stop thread starts at ~23.
    if user is not None and os.geteuid() != 0:
        pytest.skip("needs root to run the server as uid %d" % user)
    code = ("from concurrent.futures import ThreadPoolExecutor\n"
            "import threading, time\n"
            "barrier = threading.Barrier(64)\n"
            "with ThreadPoolExecutor(64) as ex:\n"
            "    done = list(ex.map(lambda _: barrier.wait(timeout=30), range(64)))\n"
            "len(done)")
    with McpClient(user=user) as c:
        _, s = run(c, code)
    assert s["status"] == "ok" and s["result"] == "64", s


def test_sessions_run_in_parallel(client):
    results = {}
    code = "import time\nt0 = time.time()\ntime.sleep(2)\n(t0, time.time())"
    for name in ("par1", "par2"):
        run(client, "1", session=name)  # kernels ready before the timed part
    ids = {name: client.start("tools/call", {"name": "execute_python",
                                             "arguments": {"code": code, "session": name}})
           for name in ("par1", "par2")}
    for name, rid in ids.items():
        results[name] = eval(client.wait(rid)["result"]["structuredContent"]["result"])
    (a0, a1), (b0, b1) = results["par1"], results["par2"]
    assert a0 < b1 and b0 < a1, "the two sessions did not overlap in time"


def test_requests_are_served_while_code_runs(client):
    # The cell runs until a file appears that only a file tool call can create: its result can
    # only come back if the server answered other requests while the cell was running.
    code = ("import os, time\n"
            "print('started', flush=True)\n"
            "while not os.path.exists('/workspace/busy-go'):\n"
            "    time.sleep(0.02)\n"
            "'done'")
    rid = client.start("tools/call", {"name": "execute_python",
                                      "arguments": {"code": code, "session": "busy"}},
                       meta={"progressToken": "busy"})
    # Wait until the cell is really running (its output arrives as progress).
    deadline = time.monotonic() + 60
    while not any(m.get("method") == "notifications/progress" and
                  "started" in m["params"].get("message", "") for m in client.notifications):
        assert time.monotonic() < deadline, "the cell never started"
        client.request("ping", {}, timeout=60)
        time.sleep(0.05)
    assert client.request("ping", {}, timeout=60)["result"] == {}
    r = client.call("write_file", {"path": "busy-go", "content": ""})
    assert not r.get("isError"), r
    assert client.wait(rid)["result"]["structuredContent"]["result"] == "'done'"


def test_list_and_reset_sessions(client):
    run(client, "v = 1", session="r")
    r = client.call("list_sessions", {})
    names = {s["session"]: s for s in r["structuredContent"]["sessions"]}
    assert "r" in names and names["r"]["execution_count"] >= 1
    r = client.call("reset_session", {"session": "r"})
    assert r["structuredContent"] == {"session": "r", "existed": True}
    _, s = run(client, "'v' in globals()", session="r")
    assert s["result"] == "False"
    r = client.call("reset_session", {"session": "nope"})
    assert r["structuredContent"]["existed"] is False


def test_bad_arguments_name_the_argument(client):
    r = client.call("execute_python", {"code": 5})
    assert r["isError"] and "code" in text_of(r)
    r = client.call("execute_python", {"code": "1", "session": "bad name!"})
    assert r["isError"] and "session" in text_of(r)
    r = client.call("execute_python", {"code": "1", "timeout_seconds": -1})
    assert r["isError"] and "timeout_seconds" in text_of(r)


def test_workspace_is_shared_with_file_tools(client):
    client.call("write_file", {"path": "data.csv", "content": "a,b\n1,2\n3,4\n"})
    _, s = run(client, "import pandas as pd\ndf = pd.read_csv('data.csv')\nint(df.b.sum())")
    assert s["result"] == "6"
    run(client, "df.to_csv('/workspace/out.csv', index=False)")
    r = client.call("read_file", {"path": "out.csv"})
    assert "a,b" in text_of(r)


def test_session_cap_gives_a_clear_error(client):
    cap = client.call("list_sessions", {})["structuredContent"]["max_sessions"]
    open_now = len(client.call("list_sessions", {})["structuredContent"]["sessions"])
    for i in range(cap - open_now):
        run(client, "1", session=f"cap{i}")
    r = client.call("execute_python", {"code": "1", "session": "one-too-many"})
    assert r["isError"] and "session limit" in text_of(r)


def test_a_real_analysis_session(client):
    """The issue's acceptance path: CSV via write_file, pandas over several calls, a plot back."""
    rows = "\n".join(f"2026-01-{d:02d},{city},{t}" for d in range(1, 29)
                     for city, t in (("Oslo", d % 7 - 3), ("Lima", 18 + d % 5)))
    client.call("write_file", {"path": "temps/daily.csv", "content": "date,city,temp\n" + rows})
    _, s = run(client, "import pandas as pd\ndf = pd.read_csv('temps/daily.csv', "
                       "parse_dates=['date'])\ndf.shape", session="analysis")
    assert s["result"] == "(56, 3)"
    _, s = run(client, "weekly = df.groupby([pd.Grouper(key='date', freq='W'), 'city'])"
                       "['temp'].mean().unstack()\nweekly.round(1)", session="analysis")
    assert s["status"] == "ok" and "Oslo" in s["result"] and "Lima" in s["result"]
    r, s = run(client, "ax = weekly.plot(title='Weekly mean temperature')\n"
                       "ax.set_ylabel('°C')\nweekly.to_csv('temps/weekly.csv')",
               session="analysis")
    assert s["status"] == "ok", s
    imgs = [c for c in r["content"] if c["type"] == "image"]
    assert len(imgs) == 1
    w, h = png_size(imgs[0]["data"])
    assert w > 100 and h > 100
    assert "Lima" in text_of(client.call("read_file", {"path": "temps/weekly.csv"}))
