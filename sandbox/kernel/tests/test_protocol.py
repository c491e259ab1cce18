"""The control channel: ready, ping, info, malformed frames and requests, shutdown, EOF."""

import json
import struct
import sys

from conftest import KERNEL_DIR

MAX_FRAME = 32 * 1024 * 1024


def test_ready_message(kernel_factory):
    kernel = kernel_factory(preload="json, no_such_module_xyz,not a name")
    ready = kernel.ready
    assert ready["type"] == "ready"
    assert ready["protocol"] == 1
    assert ready["pid"] == kernel.proc.pid
    assert ready["python"].startswith("3.")
    assert ready["preloaded"] == ["json"]
    failed = {f["module"]: f["error"] for f in ready["failed_preloads"]}
    assert failed["no_such_module_xyz"].startswith("ModuleNotFoundError: No module named")
    assert failed["not a name"] == "not a module name"
    assert ready["max_frame_bytes"] == MAX_FRAME
    assert ready["init_ms"] >= 0 and ready["preload_ms"] >= 0
    out, err = kernel.take_output()
    assert out == ""  # the kernel never writes to fd 1 itself


def test_ping_and_info(shared_kernel):
    assert shared_kernel.request("ping") == {"id": shared_kernel.next_id - 1, "type": "pong"}
    shared_kernel.execute("big = bytearray(50 * 1024 * 1024)\nimport os")
    info = shared_kernel.request("info")
    assert info["type"] == "info"
    assert info["pid"] == shared_kernel.proc.pid
    assert info["execution_count"] >= 1
    assert info["rss_bytes"] > 50 * 1024 * 1024
    assert info["peak_rss_bytes"] >= info["rss_bytes"]
    assert info["variables"] >= 1  # `big`; modules are not counted
    assert info["threads"] >= 1


def test_string_ids_are_echoed(shared_kernel):
    shared_kernel.send({"id": "abc-1", "op": "ping"})
    assert shared_kernel.recv() == {"id": "abc-1", "type": "pong"}


def test_unknown_op_and_bad_fields(shared_kernel):
    reply = shared_kernel.request("explode")
    assert reply["type"] == "error"
    assert reply["error"]["type"] == "BadRequest"
    assert "unknown op 'explode'" in reply["error"]["message"]
    cases = [
        ({"code": 5}, "`code`"),
        ({"code": "1", "execution_count": 0}, "execution_count"),
        ({"code": "1", "execution_count": True}, "execution_count"),
        ({"code": "1", "limits": []}, "`limits`"),
        ({"code": "1", "limits": {"max_images": -1}}, "limits.max_images"),
        ({"code": "1", "limits": {"image_max_bytes": "big"}}, "limits.image_max_bytes"),
        ({"code": "1", "output_dir": 3}, "output_dir"),
    ]
    for fields, needle in cases:
        reply = shared_kernel.request("execute", **fields)
        assert reply["type"] == "error", (fields, reply)
        assert needle in reply["error"]["message"], (fields, reply)
    assert shared_kernel.request("ping")["type"] == "pong"


def test_malformed_frames_get_errors_and_keep_sync(shared_kernel):
    for payload in (b"{not json", b"\xff\xfe", b"[1, 2]"):
        shared_kernel.send_raw(payload)
        reply = shared_kernel.recv()
        assert reply["id"] is None and reply["type"] == "error", reply
        assert reply["error"]["type"] == "BadRequest"
    assert shared_kernel.request("ping")["type"] == "pong"


def test_oversized_frame_is_skipped(shared_kernel):
    shared_kernel.send_raw(b" " * (MAX_FRAME + 1))
    reply = shared_kernel.recv()
    assert reply["type"] == "error"
    assert "exceeds the limit" in reply["error"]["message"]
    assert shared_kernel.request("ping")["type"] == "pong"


def test_replies_are_strict_utf8_json(shared_kernel):
    rid = shared_kernel.start("execute", code="'\\ud800 lone surrogate, \\u00e9, \\U0001F600'")
    (length,) = struct.unpack(">I", shared_kernel._read_exact(4))
    raw = shared_kernel._read_exact(length)
    text = raw.decode("utf-8")  # strict: fails on encoded surrogates
    assert "\\ud800" not in text.replace("\\\\ud800", "")  # no surrogate escape either
    reply = json.loads(text)
    assert reply["id"] == rid
    assert "\u00e9" in reply["result"] and "\U0001F600" in reply["result"]


def test_shutdown(kernel_factory):
    kernel = kernel_factory()
    kernel.execute("import threading, time\n"
                   "threading.Thread(target=time.sleep, args=(3600,)).start()")
    assert kernel.request("shutdown")["type"] == "shutdown"
    # A running non-daemon thread must not keep the kernel alive.
    assert kernel.proc.wait(timeout=30) == 0


def test_eof_on_channel_ends_kernel(kernel_factory):
    kernel = kernel_factory()
    kernel.sock.close()
    assert kernel.proc.wait(timeout=30) == 0


def test_user_code_does_not_see_kernel_dir_first(shared_kernel, tmp_path):
    reply = shared_kernel.execute("import os, sys\n(sys.path[0], sys.argv, os.getcwd())")
    first, argv, cwd = eval(reply["result"])
    # Neither the kernel's folder nor the workspace (the cwd) leads: see test_planting.py.
    assert first not in ("", KERNEL_DIR, cwd), first
    assert argv == [""]
    assert sys.executable  # the client itself is unaffected
