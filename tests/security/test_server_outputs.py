"""The server removes saved outputs (the caps on `.mcp-executor/outputs/`, reset_session): a
sandbox that swaps that folder for a symlink to a host folder must not get the server to remove
or write anything there. Landlock already refuses symlinks in the workspace, so this runs with a
copy of the default policy that has it off (the server's own confinement is under test). Runs
against a root server and an unprivileged one."""
import os
import shutil
import tempfile

import pytest

from probes.harness import USERS, run_ok, server_without_landlock


@pytest.fixture(scope="module", params=USERS)
def server(request):
    with server_without_landlock(request.param) as c:
        yield c


LONG = "for i in range(20000): print(i)"  # past the 8 KiB budget: saved whole


def test_removing_saved_outputs_never_follows_a_planted_symlink(server):
    # World-writable, so that even the unprivileged server could delete in it if it followed.
    victim_dir = tempfile.mkdtemp(prefix="mcpx-victim-", dir="/tmp")
    outputs = os.path.join(server.workspace, ".mcp-executor", "outputs")
    try:
        os.chmod(victim_dir, 0o777)
        victim = os.path.join(victim_dir, "sym-1-stdout.txt")
        with open(victim, "w") as f:
            f.write("keep me")
        os.chmod(victim, 0o666)
        s = run_ok(server, LONG, session="sym")
        assert "/workspace/.mcp-executor/outputs/sym-1-stdout.txt" in s["saved_files"], s
        # The sandbox replaces the folder with a link to the host folder (a path it cannot see
        # but can write into a symlink).
        run_ok(server, "import os, shutil\n"
                       "shutil.rmtree('/workspace/.mcp-executor/outputs')\n"
                       f"os.symlink({victim_dir!r}, '/workspace/.mcp-executor/outputs')\n",
               session="planter")
        assert os.path.islink(outputs)
        server.call("reset_session", {"session": "sym"})  # removes the session's saved files
        with open(victim) as f:
            assert f.read() == "keep me"
        # A new long output cannot be saved through the link either; the reply says so.
        s = run_ok(server, LONG, session="after")
        assert not s.get("saved_files"), s
        assert "not saved" in s["stdout"], s["stdout"][-600:]
        assert sorted(os.listdir(victim_dir)) == ["sym-1-stdout.txt"]
    finally:
        if os.path.islink(outputs):
            os.unlink(outputs)
        shutil.rmtree(victim_dir, ignore_errors=True)
