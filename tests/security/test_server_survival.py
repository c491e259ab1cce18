"""Hostile cells against the server itself: after each one the server still answers, another
session keeps its state, and no process of the hostile sandbox is left behind.

Includes what only the server path has: a kernel forging frames on its control channel (fd 3,
sandbox/kernel/PROTOCOL.md §7 "Trust"). A sandbox's leftovers are found on the host by its PID
namespace. Every case runs against a root server and an unprivileged one (uid 65534).
"""
import base64
import struct
import zlib

import pytest

from probes.harness import (CLIENT_MESSAGE_LIMIT, FIND_ID, assert_alive, assert_survived, last_line,
                            module_server, pidns_of, reply_size, run, run_ok)


server, _fresh_sessions = module_server(keeper=True)


def test_fork_bomb(server):
    ns = pidns_of(server, "hostile")
    r, s = run(server, """
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
""", session="hostile", timeout_seconds=60, wait=120)
    # Stopped at the limit (the pids cgroup or, without one, the sandbox's init counting tasks),
    # long before the timeout: an interrupt could not stop the forked copies.
    assert s["status"] == "killed", s
    assert "process limit" in s["kill_reason"], s
    assert r["isError"] is True
    assert_survived(server, dead_ns=ns)


def test_allocate_4gib(server):
    ns = pidns_of(server, "hostile")
    r, s = run(server, "b = b'x' * (4 << 30)\nprint('ALLOCATED', len(b))", session="hostile",
               wait=180)
    assert "ALLOCATED" not in s["stdout"], s
    if s["status"] == "killed":
        assert "memory" in (s["kill_reason"] or ""), s  # the cgroup OOM kill, named
        assert_survived(server, dead_ns=ns)
    else:
        assert s["status"] == "error" and s["error"]["type"] == "MemoryError", s
        assert_survived(server)


@pytest.mark.parametrize("code,what", [
    ("import ctypes\nctypes.string_at(0)", "segfault"),
    ("import os\nos._exit(3)", "os._exit"),
    ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", "SIGKILL to itself"),
    ("import os\nos.close(3)\nwhile True: pass", "closes its control channel"),
])
def test_kernel_death(server, code, what):
    run_ok(server, "doomed = 1", session="hostile")
    ns = pidns_of(server, "hostile")
    r, s = run(server, code, session="hostile", timeout_seconds=10, wait=120)
    assert s["status"] in ("killed", "error", "timeout"), (what, s)
    assert r["isError"] is True, (what, r)
    assert_survived(server, dead_ns=ns)
    # The state died with the kernel; the next call said so by starting fresh.
    s = run_ok(server, "print('doomed' in globals())", session="hostile")
    assert last_line(s) == "False", (what, s)


def test_fill_tmp(server):
    r, s = run(server, """
import errno
written = 0
chunk = b'\\0' * (1 << 20)
try:
    with open('/tmp/fill', 'wb') as f:
        for _ in range(1024):
            f.write(chunk)
            written += len(chunk)
    print('WROTE 1 GiB')
except OSError as e:
    print('stopped', errno.errorcode[e.errno], written >> 20)
""", session="hostile", wait=180)
    out = last_line(s)
    assert out.startswith("stopped ENOSPC") or out.startswith("stopped EFBIG"), s
    assert int(out.split()[2]) <= 512, out  # policy tmp_mb is 256
    assert_survived(server)


def test_flood_stdout_and_stderr(server):
    r, s = run(server, """
import os, sys
line = 'x' * 1023 + '\\n'
for _ in range(50 * 1024):
    sys.stdout.write(line)
os.write(2, b'e' * (20 << 20))
print('END-MARKER')
""", session="hostile", wait=300)
    assert s["status"] == "ok", s
    assert s["truncated"] is True
    assert s["stdout"].rstrip().endswith("END-MARKER")  # the tail is kept
    assert reply_size(r) < CLIENT_MESSAGE_LIMIT, reply_size(r)
    assert any(p.endswith("-stdout.txt") for p in s["saved_files"]), s["saved_files"]
    assert_survived(server)


def test_output_from_forgotten_background_process(server):
    # A daemonized child keeps writing after its cell ended: other sessions' replies stay clean
    # and the server keeps reading the pipe (a full pipe would block the writer, not the server).
    run_ok(server, """
import os, time
if os.fork() == 0:
    os.setsid()
    for _ in range(200):
        os.write(1, b'noise ' * 1000)
        time.sleep(0.01)
    open('/tmp/noise-done', 'w').close()
    os._exit(0)
""", session="hostile")
    for _ in range(3):
        s = run_ok(server, "print(keep)", session="keeper")
        assert last_line(s) == "keeper state" and "noise" not in s["stdout"], s
    # Its output lands in the hostile session's next cells (PROTOCOL.md §4.4, inherent); wait
    # for it to end so the check below sees a clean cell.
    run_ok(server, "import os, time\nwhile not os.path.exists('/tmp/noise-done'):\n"
           "    time.sleep(0.05)\ntime.sleep(0.2)", session="hostile", wait=60)
    assert_survived(server)


# -- forged frames on the control channel ----------------------------------------------------



def test_forged_frame_over_the_size_limit(server):
    ns = pidns_of(server, "hostile")
    r, s = run(server, "import os\nos.write(3, b'\\xff\\xff\\xff\\xff' + b'{' * 100)\n"
               "import time\ntime.sleep(30)", session="hostile", wait=120)
    assert s["status"] == "killed", s  # a protocol violation ends the kernel, not the server
    assert_survived(server, dead_ns=ns)


def test_forged_garbage_frame(server):
    ns = pidns_of(server, "hostile")
    r, s = run(server, "import os, struct\nos.write(3, struct.pack('>I', 5) + b'\\xfe{[}]')\n"
               "import time\ntime.sleep(30)", session="hostile", wait=120)
    assert s["status"] == "killed", s
    assert_survived(server, dead_ns=ns)


def test_forged_reply_with_wrong_types(server):
    r, s = run(server, FIND_ID + """
forge({'id': rid, 'type': 'result', 'status': ['ok'], 'execution_count': 'x',
       'result': {'not': 'a string'}, 'error': ['x'], 'notes': [1, None, {}],
       'images': [5, {'data': 7}, {'data': 'QUJD', 'mime_type': 'text/html', 'width': -1},
                  {'data': 'iVBORw0K', 'width': 2 ** 70, 'height': 'x'}],
       'saved_images': [1, {'p': 2}], 'cpu_ms': 'lots'})
import time
time.sleep(3)
""", session="hostile", wait=120)
    assert_alive(server)
    assert s["status"] in ("ok", "error", "killed"), s
    for img in s["images"]:
        assert isinstance(img["width"], int) and img["width"] >= 0, img
        assert isinstance(img["height"], int) and img["height"] >= 0, img
        assert img["mime_type"] == "image/png", img
    assert_survived(server)


def _png_1x1():
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)  # 1x1, 8-bit grayscale
    return base64.b64encode(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) +
                            chunk(b"IDAT", zlib.compress(b"\x00\x00")) +
                            chunk(b"IEND", b"")).decode()


def test_forged_images_are_validated(server):
    # Beside the two bad images, a good one: it tells whether the forged reply was used at all.
    good = _png_1x1()
    r, s = run(server, FIND_ID + """
forge({'id': rid, 'type': 'result', 'status': 'ok', 'execution_count': 1, 'result': None,
       'error': None, 'notes': [],
       'images': [{'data': 'PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+', 'mime_type': 'image/svg+xml',
                   'width': 1, 'height': 1},
                  {'data': '!!! not base64 !!!', 'mime_type': 'image/png', 'width': 1,
                   'height': 1},
                  {'data': GOOD, 'mime_type': 'image/png', 'width': 1, 'height': 1}]})
import time
time.sleep(3)
print('real end')
""".replace("GOOD", repr(good)), session="hostile", wait=120)
    assert_survived(server)
    blocks = [b for b in r["content"] if b["type"] == "image"]
    if last_line(s) == "real end":
        # The forged reply was ignored: the real one has no images.
        assert blocks == [] and s["images"] == [], r
    else:
        # It was used: only the well-formed PNG reaches the client, as a PNG.
        assert [(b["mimeType"], b["data"]) for b in blocks] == [("image/png", good)], r
        assert [(i["mime_type"], i["width"], i["height"]) for i in s["images"]] == \
            [("image/png", 1, 1)], s


def test_forged_reply_cannot_blow_the_client_message_limit(server):
    # The kernel caps the result text and inline images; a forged reply is not capped by it.
    r, s = run(server, FIND_ID + """
forge({'id': rid, 'type': 'result', 'status': 'ok', 'execution_count': 1,
       'result': 'R' * (12 << 20), 'error': None, 'images': [], 'notes': []})
import time
time.sleep(3)
""", session="hostile", wait=120)
    size = reply_size(r)
    assert_survived(server)
    assert size < CLIENT_MESSAGE_LIMIT, \
        "a forged kernel reply produced a %d-byte MCP message (status %s)" % (size, s["status"])


def test_forged_reply_for_another_request_is_ignored(server):
    r, s = run(server, FIND_ID + """
forge({'id': rid + 1000, 'type': 'result', 'status': 'ok', 'result': "'forged'"})
forge({'id': str(rid), 'type': 'result', 'status': 'ok', 'result': "'forged'"})
forge({'type': 'ready'})
print('real end')
""", session="hostile", wait=120)
    assert s["status"] == "ok", s
    assert last_line(s) == "real end" and "result" not in s, s
    assert_survived(server)
