"""Workspace content written by a hostile kernel must not steer what the server runs outside the
sandbox. The one unsandboxed helper is the matplotlib font-cache builder (session/runtime.cc
StartMplCachePrep: host Python as the server's user, root for a root server), started when the
state dir has no cache yet. It inherits the server's working directory, and matplotlib reads
`./matplotlibrc` from there first; users commonly start the server inside their workspace.
"""
import os

import pytest

from probes.harness import USERS, run_ok, start_server, stop_server, wait_for


def font_cache_built(state_dir):
    cache = os.path.join(state_dir, "mpl-cache")
    return os.path.isdir(cache) and any(n.startswith("fontlist-") for n in os.listdir(cache))


@pytest.mark.parametrize("user", USERS)
def test_planted_matplotlibrc_does_not_reach_the_font_cache_helper(user):
    planter = start_server(user)
    ws = planter.workspace
    try:
        # text.usetex makes matplotlib run `latex` from PATH on the first text it draws.
        run_ok(planter, "open('/workspace/matplotlibrc', 'w').write('text.usetex: True\\n')")
        # A second server on the same workspace, started from inside it, with a fresh state dir.
        second = start_server(user, workspace=ws, preexec=lambda: os.chdir(ws))
        try:
            run_ok(second, "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.close('all')")
            # The helper runs beside the kernels; under load it may finish after the cell.
            built = wait_for(lambda: font_cache_built(second.state_dir), seconds=120)
            log = second.stderr_text()
        finally:
            stop_server(second)
    finally:
        stop_server(planter)
    # The kernels themselves may honour the workspace's matplotlibrc (they are sandboxed, and a
    # user may want that); the unsandboxed helper must not.
    assert "prepare_mpl_cache" not in log and "font cache failed" not in log, log[-3000:]
    assert built, "the font cache was not built; log:\n" + log[-3000:]
