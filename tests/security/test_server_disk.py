"""The workspace disk and inode budget (issue 8, finding 11): a session must not fill the
filesystem under the shared workspace, so the client's write_file, the other sessions and the
saved outputs keep working.

The workspace is a small tmpfs (64 MiB, 3000 inodes) mounted by the test, so this needs root; the
server runs a copy of the default policy with a small budget. The writers pace themselves (a
chunk, a short sleep) so that the server's 250 ms check, not the filesystem, is what stops them:
the budget is accounting, and a writer faster than the check overshoots by what it writes in
between (docs/POLICIES.md). Every case runs against a root server and an unprivileged one.
"""
import os
import shutil
import subprocess
import tempfile

import pytest

from probes.harness import (USERS, assert_alive, reply_size, reset_named_sessions, run, run_ok,
                            start_server, stop_server, text_of)
from policy_files import write_policy  # tests/pylib, on sys.path through the harness

TMPFS_MB = 64
TMPFS_INODES = 3000
BUDGET = {"workspace_mb": 16, "workspace_inodes": 1000, "workspace_reserve_mb": 24,
          "workspace_reserve_inodes": 1000}
MiB = 1 << 20


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def free_inodes(path):
    return os.statvfs(path).f_favail


@pytest.fixture(scope="module")
def tmpfs():
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs as the workspace needs root")
    top = tempfile.mkdtemp(prefix="mcpx-sec-disk-")
    os.chmod(top, 0o755)  # the unprivileged server must reach its workspace
    mnt = os.path.join(top, "ws")
    os.mkdir(mnt)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o",
                        "size=%dm,nr_inodes=%d,mode=0755" % (TMPFS_MB, TMPFS_INODES), "tmpfs",
                        mnt], capture_output=True, text=True)
    if r.returncode != 0:
        shutil.rmtree(top, ignore_errors=True)
        pytest.skip("cannot mount a tmpfs here: %s" % (r.stderr.strip() or r.returncode))
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", mnt]).returncode != 0:
            subprocess.run(["umount", "-l", mnt])
        shutil.rmtree(top, ignore_errors=True)


@pytest.fixture(scope="module", params=USERS)
def server(request, tmpfs):
    d = tempfile.mkdtemp(prefix="mcpx-sec-policy-")
    path = write_policy(d, "disk.json", limits=BUDGET, name="sectest-disk", preload=[],
                        description="security tests: a small workspace budget")
    clear(tmpfs)
    try:
        c = start_server(request.param, args=("--policy", path), workspace=tmpfs)
        yield c
        stop_server(c)
    finally:
        shutil.rmtree(d, ignore_errors=True)
        clear(tmpfs)


def clear(ws):
    for name in os.listdir(ws):
        p = os.path.join(ws, name)
        if os.path.isdir(p) and not os.path.islink(p):
            shutil.rmtree(p, ignore_errors=True)
        else:
            os.unlink(p)


@pytest.fixture(autouse=True)
def _fresh(server):
    yield
    reset_named_sessions(server)
    # The outputs folder belongs to the server; everything else the cells made goes.
    for name in os.listdir(server.workspace):
        if name != ".mcp-executor":
            p = os.path.join(server.workspace, name)
            shutil.rmtree(p) if os.path.isdir(p) and not os.path.islink(p) else os.unlink(p)


# Each writer paces itself and keeps going on errors, so only a kill ends it before the deadline.
PACED = """
import os, time
deadline = time.time() + 90
errors = 0
def paced(step):
    global errors
    while time.time() < deadline:
        try:
            step()
        except OSError:
            errors += 1
        time.sleep(0.02)
"""

WRITE_LOOP = PACED + """
f = open('/workspace/fill.bin', 'wb', buffering=0)
paced(lambda: f.write(b'x' * (1 << 20)))
print('NOT STOPPED', errors)
"""

FALLOCATE_LOOP = PACED + """
fd = os.open('/workspace/reserved.bin', os.O_RDWR | os.O_CREAT, 0o644)
try:
    os.posix_fallocate(fd, 0, 192 << 20)  # the finding's single call: more than the tmpfs holds
    print('192 MiB reserved')
except OSError as e:
    print('192 MiB refused', e.errno)
off = [0]
def step():
    os.posix_fallocate(fd, off[0], 1 << 20)  # no byte written, blocks reserved
    off[0] += 1 << 20
paced(step)
print('NOT STOPPED', errors)
"""

MANY_FILES = PACED + """
os.mkdir('/workspace/many')
n = [0]
def step():
    for _ in range(20):
        open('/workspace/many/%d' % n[0], 'w').close()
        n[0] += 1
paced(step)
print('NOT STOPPED', errors)
"""


def check_killed_and_client_still_writes(c, code, session):
    r, s = run(c, code, session=session, timeout_seconds=120)
    assert s["status"] == "killed", (s["status"], s["stdout"][-500:], s["stderr"][-2000:])
    reason = s["kill_reason"] or ""
    assert "workspace" in reason and "delete files to go on" in reason, reason
    assert reason in text_of(r)
    assert reply_size(r) < 4096, reply_size(r)  # the reason is a sentence, not a listing
    print("KILL", session, reason, free_bytes(c.workspace) // MiB, free_inodes(c.workspace))
    # Stopped before the filesystem was full: the reserve is (at least partly) still there.
    assert free_bytes(c.workspace) > 4 * MiB, free_bytes(c.workspace)
    assert free_inodes(c.workspace) > 100, free_inodes(c.workspace)
    # The client's own write still succeeds (it may use the reserve).
    w = c.call("write_file", {"path": "client/notes.txt", "content": "y" * (2 * MiB)})
    assert not w.get("isError"), text_of(w)
    with open(os.path.join(c.workspace, "client", "notes.txt")) as f:
        assert len(f.read()) == 2 * MiB
    # Another session still runs (a cell that writes nothing is not blamed for the full tree).
    assert run_ok(c, "print(6 * 7)", session="bystander")["stdout"].strip() == "42"
    assert_alive(c)
    return reason


def test_write_loop_is_killed_by_name(server):
    reason = check_killed_and_client_still_writes(server, WRITE_LOOP, "writer")
    assert "MiB" in reason


def test_fallocate_loop_is_killed_by_name(server):
    reason = check_killed_and_client_still_writes(server, FALLOCATE_LOOP, "fallocator")
    assert "MiB" in reason


def test_many_empty_files_are_killed_by_name(server):
    reason = check_killed_and_client_still_writes(server, MANY_FILES, "inodes")
    assert "files and folders" in reason or "inodes" in reason, reason


def test_a_cell_that_writes_within_the_budget_is_not_killed(server):
    s = run_ok(server, "open('/workspace/small.bin', 'wb').write(b'z' * (4 << 20)); print('ok')",
               session="modest")
    assert s["stdout"].strip() == "ok"
    assert "kill_reason" not in s


def test_saved_outputs_keep_out_of_the_reserve(server):
    # The test (root, not the sandbox) leaves less free space than the reserve; a cell whose long
    # output would be saved to the workspace gets its head and tail inline and no saved file.
    ws = server.workspace
    filler = os.path.join(ws, "host-filler.bin")
    with open(filler, "wb") as f:
        f.write(b"h" * (free_bytes(ws) - 20 * MiB))
    try:
        r, s = run(server, "print('o' * 400000)", session="talker")
        assert s["status"] in ("ok", "killed"), s
        assert s["truncated"] is True
        assert s.get("saved_files", []) == [], s.get("saved_files")
        outputs = os.path.join(ws, ".mcp-executor", "outputs")
        saved = [n for n in os.listdir(outputs) if n.startswith("talker-")] \
            if os.path.isdir(outputs) else []
        assert saved == [], saved
        assert free_bytes(ws) >= 19 * MiB
    finally:
        os.unlink(filler)
