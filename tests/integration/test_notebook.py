"""The session record through the real server: each session's cells, outputs and images go to
.mcp-executor/notebooks/<session>.ipynb, rewritten after each cell and valid under nbformat's own
validator; the policy's record_notebook: false turns it off."""
import base64
import os
import time

import nbformat
import pytest

from mcp_client import McpClient
from policy_files import write_policy

NOTEBOOKS = os.path.join(".mcp-executor", "notebooks")


def nb_path(c, session):
    return os.path.join(c.workspace, NOTEBOOKS, session + ".ipynb")


def run(c, code, session="nb", **args):
    r = c.call("execute_python", {"code": code, "session": session, **args})
    assert "structuredContent" in r, r
    return r


def read_valid(path, cells):
    """The notebook once it has `cells` cells (the server writes it within 0.2 s of the reply), checked
    by nbformat's own validator."""
    deadline = time.monotonic() + 10
    while True:
        if os.path.exists(path):
            nb = nbformat.read(path, as_version=4)
            if len(nb.cells) >= cells or time.monotonic() > deadline:
                break
        assert time.monotonic() < deadline, f"{path} was not written"
        time.sleep(0.02)
    nbformat.validate(nb)  # raises on anything nbformat 4.5 does not allow
    assert len(nb.cells) == cells
    return nb


@pytest.fixture(scope="module")
def client():
    with McpClient() as c:
        yield c


def test_print_plot_and_error_are_recorded_cell_by_cell(client):
    path = nb_path(client, "nb")
    assert not os.path.exists(path)

    r = run(client, "print('hello from nb')\n6 * 7")
    assert r["structuredContent"]["status"] == "ok"
    nb = read_valid(path, 1)
    inode = os.stat(path).st_ino

    r = run(client, "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()")
    assert r["structuredContent"]["status"] == "ok"
    reply_images = [b["data"] for b in r["content"] if b["type"] == "image"]
    assert len(reply_images) == 1
    nb = read_valid(path, 2)
    assert os.stat(path).st_ino != inode  # a new file renamed over the old one: an atomic rewrite

    r = run(client, "def f():\n    return 1 / 0\n\nf()")
    assert r["structuredContent"]["status"] == "error"
    nb = read_valid(path, 3)
    print(f"3-cell notebook: {os.path.getsize(path)} bytes")

    assert nb.metadata.kernelspec.name == "python3"
    assert nb.metadata.language_info.name == "python"
    assert nb.metadata["mcp-executor"]["session"] == "nb"
    printed, plotted, failed = nb.cells
    assert [c.cell_type for c in nb.cells] == ["code"] * 3
    counts = [c.execution_count for c in nb.cells]
    assert counts == sorted(counts) and len(set(counts)) == 3
    assert len({c.id for c in nb.cells}) == 3

    assert printed.source == "print('hello from nb')\n6 * 7"
    stream, result = printed.outputs
    assert (stream.output_type, stream.name, stream.text) == ("stream", "stdout", "hello from nb\n")
    assert result.output_type == "execute_result" and result.data["text/plain"] == "42"

    (image,) = plotted.outputs
    assert image.output_type == "display_data"
    assert image.data["image/png"] == reply_images[0]  # the reply's PNG, as it was sent
    assert base64.b64decode(image.data["image/png"])[:8] == b"\x89PNG\r\n\x1a\n"

    (error,) = failed.outputs
    assert error.output_type == "error"
    assert (error.ename, error.evalue) == ("ZeroDivisionError", "division by zero")
    assert any("line 2" in line for line in error.traceback)
    assert failed.metadata["mcp-executor"]["status"] == "error"


def test_timeout_is_noted_and_reset_marks_the_lost_state(client):
    path = nb_path(client, "slow")
    r = run(client, "import time\ntime.sleep(30)", session="slow", timeout_seconds=1)
    assert r["structuredContent"]["status"] == "timeout"
    client.call("reset_session", {"session": "slow"})
    nb = read_valid(path, 2)
    cell, marker = nb.cells
    note = cell.outputs[-1]
    assert note.output_type == "stream" and note.name == "stderr"
    assert "[status] timeout" in note.text
    assert marker.cell_type == "markdown"
    assert "state lost" in marker.source and "reset_session" in marker.source


def test_two_sessions_write_two_notebooks(client):
    run(client, "a = 1", session="one")
    run(client, "b = 2", session="two")
    for name, code in (("one", "a = 1"), ("two", "b = 2")):
        nb = read_valid(nb_path(client, name), 1)
        assert nb.metadata["mcp-executor"]["session"] == name
        assert [c.source for c in nb.cells] == [code]
    for name in ("one", "two"):
        client.call("reset_session", {"session": name})


def test_a_restarted_server_appends_to_the_sessions_notebook(tmp_path):
    workspace = str(tmp_path / "ws")
    with McpClient(workspace=workspace) as first:
        run(first, "x = 1", session="again")
    with McpClient(workspace=workspace) as second:
        run(second, "x", session="again")
        nb = read_valid(nb_path(second, "again"), 3)
    assert [c.cell_type for c in nb.cells] == ["code", "markdown", "code"]
    assert "server was restarted" in nb.cells[1].source
    assert nb.cells[2].source == "x"
    assert nb.cells[2].outputs[0].ename == "NameError"


def test_record_notebook_false_writes_nothing(tmp_path):
    policy = write_policy(str(tmp_path), "no-record.json", record_notebook=False)
    with McpClient(args=["--policy", policy]) as c:
        r = run(c, "print('not recorded')")
        assert r["structuredContent"]["status"] == "ok"
        assert not os.path.exists(os.path.join(c.workspace, NOTEBOOKS))
