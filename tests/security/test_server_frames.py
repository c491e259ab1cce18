"""Forged control frames against the server (issue 8, findings 1-6 and 8).

User code can write anything on the kernel's control channel (fd 3): frames of any type, size,
depth and number, at any time. Each case here was a way for one sandbox to abort, wedge, stall or
balloon the whole server, or to push unbounded text or images to the client. After each one the
server still answers, a bystander session keeps its state and the server stops cleanly on
SIGTERM (stop_server checks the exit status). Every case runs against a root server and an
unprivileged one (uid 65534).
"""
import base64
import json
import struct
import zlib

import pytest

from probes.harness import (FIND_ID, assert_survived, last_line, module_server, pidns_of,
                            reply_size, run, run_ok)

# Any MCP message the server sends because of what a sandbox wrote stays below this (a reply's
# own budget is larger; notifications and log records are far smaller than it).
NOTIFICATION_LIMIT = 64 << 10
# A cell killed for a bad frame, or one whose forged images were dropped, is answered with its
# status, the reason and a note: a short reply, whatever the frame held.
SHORT_REPLY_LIMIT = 2048


server, _fresh_sessions = module_server(keeper=True)


def write_raw(payload_expr):
    """A cell that writes one frame whose payload is the bytes of `payload_expr`."""
    return ("import os, struct\n_d = %s\n"
            "os.write(3, struct.pack('>I', len(_d)) + _d)\n" % payload_expr)


def peak_rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) << 10
    raise AssertionError("no VmHWM for %d" % pid)


def biggest_message_since(c, start):
    sizes = [len(json.dumps(m, separators=(",", ":"))) for m in c.messages[start:]]
    return max(sizes) if sizes else 0


@pytest.mark.parametrize("payload", [b'{"type": 5}', b"null", b'["ready"]', b'{"type": null}',
                                     b'{"type": {"a": 1}}', b"{}", b'"result"', b"12"])
def test_frame_of_the_wrong_shape(server, payload):
    """Finding 1: a frame whose `type` is not a string (or that is no object) aborted the server
    with an uncaught nlohmann type_error."""
    ns = pidns_of(server, "hostile")
    r, s = run(server, write_raw(repr(payload)) + "import time\ntime.sleep(30)",
               session="hostile", wait=120)
    assert s["status"] == "killed", s  # a protocol violation ends that kernel
    assert "control frame" in s["kill_reason"], s
    assert reply_size(r) < SHORT_REPLY_LIMIT, reply_size(r)
    assert_survived(server, dead_ns=ns)


@pytest.mark.parametrize("frame_type", ["ready", "result"])
def test_deeply_nested_frame(server, frame_type):
    """Finding 2: a 200 KB frame nested 100,000 arrays deep overflowed the server's stack."""
    ns = pidns_of(server, "hostile")
    payload = ("b'{\"type\":\"%s\",\"id\":0,\"x\":' + b'[' * 100000 + b']' * 100000 + b'}'"
               % frame_type)
    r, s = run(server, write_raw(payload) + "import time\ntime.sleep(30)", session="hostile",
               wait=120)
    assert s["status"] == "killed", s
    assert "control frame" in s["kill_reason"], s
    assert reply_size(r) < SHORT_REPLY_LIMIT, reply_size(r)
    assert_survived(server, dead_ns=ns)


def test_huge_preload_errors_do_not_wedge_logging(server):
    """Finding 3: `ready` frames carrying huge preload errors became client log notifications;
    past the output queue's limit the transport logged from inside the log sink and deadlocked
    (SIGTERM was ignored from then on). Now the record is bounded, and so is the frame."""
    start = len(server.messages)
    r, s = run(server, """
import json, os, struct
for i in range(8):
    d = json.dumps({'type': 'ready', 'failed_preloads':
                    [{'module': 'm%d' % i, 'error': 'E' * (3 << 20)}]}).encode()
    os.write(3, struct.pack('>I', len(d)) + d)
print('sent')
""", session="hostile", wait=120)
    assert s["status"] == "ok" and last_line(s) == "sent", s
    assert_survived(server)
    assert biggest_message_since(server, start) < NOTIFICATION_LIMIT


def test_flood_of_small_frames_does_not_stall_the_loop(server):
    """Finding 4: a flood of tiny frames was decoded by erasing each one from the front of a
    growing buffer (quadratic), and one read loop ran until the flood stopped: a ping waited
    145 s behind 8 s of `{}` frames. Now framing is linear and reads are budgeted per wake-up."""
    # The cell floods in its own thread of control (the kernel's reply must not interleave with
    # it), and writes whole frames even when the socket takes part of a chunk.
    rid = server.start("tools/call", {"name": "execute_python", "arguments": {
        "session": "hostile", "code": """
import os, struct, time
_d = b'{"type":""}'
_chunk = memoryview((struct.pack('>I', len(_d)) + _d) * 16384)
end = time.monotonic() + 8
while time.monotonic() < end:
    rest = _chunk
    while rest:
        rest = rest[os.write(3, rest):]
print('flooded')
"""}})
    # Each ping must be answered while the flood runs (a liveness bound, not a timing figure:
    # before the fix the first one waited minutes).
    for _ in range(5):
        r = server.request("ping", timeout=20)
        assert r.get("result") == {}, r
    r = server.wait(rid, timeout=120)
    s = r["result"]["structuredContent"]
    assert s["status"] == "ok" and last_line(s) == "flooded", s
    assert_survived(server)


@pytest.mark.parametrize("size_mib", [31, 6])
def test_frame_of_many_small_values_does_not_balloon_the_server(server, size_mib):
    """Finding 5: one 32 MiB frame of `[{},{},...]` raised the server's peak RSS from 6 MiB to
    1,147 MiB (a JSON tree is ~40x its text). Frames are now capped at what a real reply needs
    and their value count is bounded before any tree is built."""
    ns = pidns_of(server, "hostile")
    before = peak_rss(server.proc.pid)
    n = (size_mib << 20) // 3
    payload = "b'{\"type\":\"result\",\"id\":0,\"x\":[' + b'{},' * %d + b'{}]}'" % n
    r, s = run(server, write_raw(payload) + "import time\ntime.sleep(30)", session="hostile",
               wait=120)
    assert s["status"] == "killed", s
    assert "control frame" in s["kill_reason"], s
    assert reply_size(r) < SHORT_REPLY_LIMIT, reply_size(r)
    grown = peak_rss(server.proc.pid) - before
    assert grown < (96 << 20), "server peak RSS grew by %d MiB" % (grown >> 20)
    assert_survived(server, dead_ns=ns)


def test_forged_log_record_is_bounded(server):
    """Finding 6: a forged `ready` frame turned into a 21 MB notifications/message."""
    server.request("logging/setLevel", {"level": "debug"})
    try:
        start = len(server.messages)
        run_ok(server, write_raw(
            "b'{\"type\":\"ready\",\"failed_preloads\":[' + b','.join("
            "b'{\"module\":\"%s\",\"error\":\"%s\"}' % (b'M' * 200000, b'E' * 200000)"
            # 4 MB: within the frame limit of the default policy's replies (images + 4 MiB).
            " for _ in range(10)) + b']}'"), session="hostile")
        assert_survived(server)
        assert biggest_message_since(server, start) < NOTIFICATION_LIMIT
    finally:
        server.request("logging/setLevel", {"level": "warning"})


def png(width, height):
    """A well-formed PNG header and IHDR, declaring width x height (no real pixels needed)."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) +
            chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("width,height,sent", [(20000, 20000, False), (1, 100000, False),
                                               (640, 480, True)])
def test_forged_png_is_checked_by_its_pixel_count(server, width, height, sent):
    """Finding 8: a 389 KB PNG declaring 20000x20000 px was forwarded: the checks counted bytes,
    not pixels. The control case (640x480) shows a valid forged image does get through."""
    data = base64.b64encode(png(width, height)).decode()
    r, s = run(server, FIND_ID + """
forge({'id': rid, 'type': 'result', 'status': 'ok', 'execution_count': 1,
       'result': None, 'error': None, 'notes': [],
       'images': [{'mime_type': 'image/png', 'width': 1, 'height': 1, 'bytes': 1,
                   'data': %r}]})
import time
time.sleep(3)
""" % data, session="hostile", wait=120)
    blocks = [b for b in r["content"] if b["type"] == "image"]
    if sent:
        assert len(blocks) == 1 and s["images"][0]["width"] == width, s
    else:
        assert blocks == [] and s["images"] == [], s
        assert any("dropped" in n for n in s["notes"]), s
        assert reply_size(r) < SHORT_REPLY_LIMIT, reply_size(r)
    assert_survived(server)
