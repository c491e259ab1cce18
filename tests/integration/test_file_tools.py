"""read_file / write_file / list_files and workspace resources through the real server over stdio.

The workspace is treated as hostile: the tests plant symlinks and FIFOs in it the way sandboxed
code could, and check that nothing outside leaks and that nothing blocks.
"""
import base64
import os
import struct
import zlib

import pytest

from mcp_client import McpClient, text_of


def tiny_png():
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00\xff\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture
def client():
    c = McpClient()
    yield c
    assert c.close() == 0, c.stderr_text()


def ok(result):
    assert not result.get("isError"), result
    return result


def err(result):
    assert result.get("isError") is True, result
    return text_of(result)


def test_tools_are_listed_with_schemas(client):
    tools = {t["name"]: t for t in client.request("tools/list")["result"]["tools"]}
    for name in ("read_file", "write_file", "list_files"):
        t = tools[name]
        assert t["inputSchema"]["type"] == "object"
        assert t["inputSchema"]["additionalProperties"] is False
        assert "outputSchema" in t
        assert t["annotations"]["openWorldHint"] is False
    assert tools["read_file"]["annotations"]["readOnlyHint"] is True
    assert tools["write_file"]["annotations"]["destructiveHint"] is True


def test_write_read_round_trip_utf8_base64_append(client):
    r = ok(client.call("write_file", {"path": "dir/sub/notes.txt", "content": "héllo ✓\n"}))
    assert r["structuredContent"]["bytes_written"] == len("héllo ✓\n".encode())
    assert r["structuredContent"]["created"] is True
    with open(os.path.join(client.workspace, "dir/sub/notes.txt"), encoding="utf-8") as f:
        assert f.read() == "héllo ✓\n"
    r = ok(client.call("read_file", {"path": "/workspace/dir/sub/notes.txt"}))
    assert r["content"][0] == {"type": "text", "text": "héllo ✓\n"}

    ok(client.call("write_file", {"path": "dir/sub/notes.txt", "content": "more\n", "append": True}))
    assert text_of(ok(client.call("read_file", {"path": "dir/sub/notes.txt"}))) == "héllo ✓\nmore\n"

    blob = bytes(range(256))
    ok(client.call("write_file", {"path": "data.bin", "content": base64.b64encode(blob).decode(),
                                  "encoding": "base64"}))
    with open(os.path.join(client.workspace, "data.bin"), "rb") as f:
        assert f.read() == blob
    r = ok(client.call("read_file", {"path": "data.bin"}))
    res = [c for c in r["content"] if c["type"] == "resource"][0]["resource"]
    assert res["uri"] == "file:///workspace/data.bin"
    assert base64.b64decode(res["blob"]) == blob
    assert r["structuredContent"]["kind"] == "binary"


def test_append_to_a_sandbox_made_sparse_file_costs_only_the_new_bytes(client):
    # Issue 8 finding 7: the append copied (and fsynced) the whole 512 MiB in the event loop.
    r = client.call("execute_python", {"code": "with open('/workspace/sparse.bin', 'wb') as f:\n"
                                                "    f.write(b'S')\n"
                                                "    f.truncate(512 << 20)\n"}, timeout=180)
    assert r["structuredContent"]["status"] == "ok", r
    host = os.path.join(client.workspace, "sparse.bin")
    before = os.stat(host)
    r = ok(client.call("write_file", {"path": "sparse.bin", "content": "!", "append": True}))
    assert r["structuredContent"]["size"] == (512 << 20) + 1, r
    assert r["structuredContent"]["appended"] is True
    after = os.stat(host)
    assert after.st_size == (512 << 20) + 1
    assert after.st_ino == before.st_ino, "appended through a copy"
    assert after.st_blocks * 512 < (1 << 20), "the holes became %d real blocks" % after.st_blocks
    with open(host, "rb") as f:
        assert f.read(1) == b"S"
        f.seek(512 << 20)
        assert f.read() == b"!"
    # The sandbox sees the same bytes, and the server still answers.
    r = client.call("execute_python", {"code": "import os\nf = open('/workspace/sparse.bin', "
                                                "'rb')\nf.seek(-2, os.SEEK_END)\nf.read()"})
    assert r["structuredContent"]["result"] == "b'\\x00!'", r
    assert client.request("ping")["result"] == {}


def test_bad_base64_is_reported_precisely(client):
    msg = err(client.call("write_file", {"path": "x", "content": "QUJD*EF", "encoding": "base64"}))
    assert "'*' at position 4" in msg
    assert not os.path.exists(os.path.join(client.workspace, "x"))


def test_png_is_an_image_block(client):
    png = tiny_png()
    with open(os.path.join(client.workspace, "plot.png"), "wb") as f:
        f.write(png)
    r = ok(client.call("read_file", {"path": "plot.png"}))
    images = [c for c in r["content"] if c["type"] == "image"]
    assert len(images) == 1
    assert images[0]["mimeType"] == "image/png"
    assert base64.b64decode(images[0]["data"]) == png


def test_offset_limit_paging(client):
    data = "".join("line %05d\n" % i for i in range(50000))  # 550000 bytes
    with open(os.path.join(client.workspace, "big.log"), "w") as f:
        f.write(data)
    r = ok(client.call("read_file", {"path": "big.log"}))
    s = r["structuredContent"]
    assert s["truncated"] is True and s["bytes"] == 256 * 1024
    assert "offset=%d" % s["next_offset"] in text_of(r)
    got, offset = "", 0
    while offset is not None:
        r = ok(client.call("read_file", {"path": "big.log", "offset": offset, "limit": 200000}))
        got += r["content"][0]["text"]
        offset = r["structuredContent"].get("next_offset")
    assert got == data


def test_escape_attempts_are_refused(client, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    ws = client.workspace
    # What sandboxed code could plant in the workspace.
    os.symlink("/etc/passwd", os.path.join(ws, "passwd"))
    os.symlink(str(secret), os.path.join(ws, "abs"))
    os.symlink("..", os.path.join(ws, "up"))
    os.symlink(str(tmp_path), os.path.join(ws, "dirout"))
    for path in ("../etc/passwd", "/etc/passwd", "/workspace/../etc/passwd", "a/../../etc/passwd",
                 "passwd", "abs", "up/" + os.path.basename(ws) + "/../secret.txt",
                 "dirout/secret.txt", "a\x00b"):
        msg = err(client.call("read_file", {"path": path}))
        assert "root:" not in msg and "TOP SECRET" not in msg
        assert "escapes the workspace" in msg or "outside the workspace" in msg or \
            "NUL" in msg or "symlink" in msg, (path, msg)
    for path in ("passwd", "dirout/new.txt", "../x", "up/x"):
        err(client.call("write_file", {"path": path, "content": "pwned"}))
    assert secret.read_text() == "TOP SECRET"
    assert not (tmp_path / "new.txt").exists()
    assert not os.path.exists(os.path.join(os.path.dirname(ws), "x"))
    err(client.call("list_files", {"path": "dirout"}))
    # Listing shows the links as links and does not follow them.
    entries = ok(client.call("list_files", {"recursive": True}))["structuredContent"]["entries"]
    assert {e["path"]: e["type"] for e in entries} == {
        "passwd": "symlink", "abs": "symlink", "up": "symlink", "dirout": "symlink"}


def test_fifo_is_refused_without_hanging(client):
    os.mkfifo(os.path.join(client.workspace, "pipe"))
    msg = err(client.call("read_file", {"path": "pipe"}, timeout=20))
    assert "'pipe' is a FIFO, not a regular file" in msg
    err(client.call("write_file", {"path": "pipe", "content": "x", "append": True}, timeout=20))
    assert "result" in client.request("ping", timeout=20)
    entries = ok(client.call("list_files", {}))["structuredContent"]["entries"]
    assert entries == [dict(entries[0], path="pipe", type="fifo")]


def test_list_files(client):
    ok(client.call("write_file", {"path": "b/c.txt", "content": "12345"}))
    ok(client.call("write_file", {"path": "a.txt", "content": ""}))
    s = ok(client.call("list_files", {"path": ".", "recursive": True}))["structuredContent"]
    assert [(e["path"], e["type"], e["size"]) for e in s["entries"]] == [
        ("a.txt", "file", 0), ("b", "directory", s["entries"][1]["size"]), ("b/c.txt", "file", 5)]
    assert s["entries"][0]["mtime"].endswith("Z")
    assert s["truncated"] is False
    msg = err(client.call("list_files", {"path": "a.txt"}))
    assert "not a folder" in msg


def test_resources_list_and_read(client):
    ok(client.call("write_file", {"path": "r/one file.csv", "content": "a,b\n1,2\n"}))
    os.symlink("/etc/passwd", os.path.join(client.workspace, "pw"))
    r = client.request("resources/list")["result"]
    uris = [x["uri"] for x in r["resources"]]
    assert uris == ["file:///workspace/r/one%20file.csv"]
    r = client.request("resources/read", {"uri": uris[0]})["result"]
    assert r["contents"][0]["text"] == "a,b\n1,2\n"
    assert r["contents"][0]["mimeType"] == "text/csv"
    assert client.request("resources/read", {"uri": "file:///workspace/nope"})["error"]["code"] \
        == -32002
    for uri in ("file:///etc/passwd", "file:///workspace/../etc/passwd",
                "file:///workspace/%2e%2e/etc/passwd", "file:///workspace/pw"):
        e = client.request("resources/read", {"uri": uri})
        assert "error" in e, (uri, e)
        assert "root:" not in str(e)


def test_resources_paginate(client):
    for i in range(230):
        open(os.path.join(client.workspace, "f%03d.txt" % i), "w").close()
    seen, cursor, pages = [], None, 0
    while True:
        params = {"cursor": cursor} if cursor else {}
        r = client.request("resources/list", params)["result"]
        seen += [x["name"] for x in r["resources"]]
        pages += 1
        cursor = r.get("nextCursor")
        if not cursor:
            break
    assert pages == 3
    assert seen == ["f%03d.txt" % i for i in range(230)]
    assert "error" in client.request("resources/list", {"cursor": "not-a-cursor"})
