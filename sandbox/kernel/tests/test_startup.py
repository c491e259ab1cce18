"""Startup: preload, default fd, and the time to `ready` (reported, never asserted)."""

import json
import os
import statistics
import subprocess

import pytest

from conftest import KERNEL_DIR, PYTHON, Kernel


def test_preload_data_stack(kernel_factory):
    for module in ("numpy", "pandas", "matplotlib"):
        pytest.importorskip(module)
    kernel = kernel_factory(preload="numpy,pandas,matplotlib")
    assert kernel.ready["preloaded"] == ["numpy", "pandas", "matplotlib"]
    assert kernel.ready["failed_preloads"] == []
    reply = kernel.execute("import sys\n"
                           "sorted(m for m in ('numpy', 'pandas', 'matplotlib.pyplot') "
                           "if m in sys.modules)")
    assert reply["result"] == "['matplotlib.pyplot', 'numpy', 'pandas']"
    # Preloading does not bind names in the user's namespace.
    assert kernel.execute("np")["error"]["type"] == "NameError"
    assert kernel.take_output() == ("", "")


def test_default_fd_is_3(kernel_factory):
    kernel = kernel_factory(env={"MCPX_KERNEL_FD": None})
    assert kernel.ready["type"] == "ready"


def test_bad_channel_fd_is_a_clear_error(tmp_path):
    run = subprocess.run([PYTHON, os.path.join(KERNEL_DIR, "mcpx_kernel.py")],
                         env={"MCPX_KERNEL_FD": "97", "PYTHONDONTWRITEBYTECODE": "1"},
                         cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 2
    assert run.stdout == ""
    assert "no control channel at MCPX_KERNEL_FD='97'" in run.stderr


def test_startup_time_report(tmp_path, capsys):
    for module in ("numpy", "pandas", "matplotlib"):
        pytest.importorskip(module)
    cache = tmp_path / "mpl-cache"
    subprocess.run([PYTHON, os.path.join(KERNEL_DIR, "prepare_mpl_cache.py"), str(cache)],
                   check=True, capture_output=True, timeout=300)
    results = {}
    for label, preload in (("bare", ""), ("numpy,pandas,matplotlib", "numpy,pandas,matplotlib")):
        times = []
        first_plot = []
        for i in range(3):
            ws = tmp_path / f"{label.replace(',', '_')}-{i}"
            ws.mkdir()
            kernel = Kernel(ws, preload=preload, env={"MCPX_MPL_CACHE": str(cache)})
            try:
                times.append(kernel.ready_after_s * 1000.0)
                if preload:
                    reply = kernel.execute("import matplotlib.pyplot as plt\nplt.plot([1, 2])")
                    assert len(reply["images"]) == 1
                    first_plot.append(reply["duration_ms"])
            finally:
                kernel.close()
        results[label] = (statistics.median(times), first_plot)
    with capsys.disabled():
        for label, (ready_ms, plots) in results.items():
            line = (f"\n[kernel startup] preload={label!r}: spawn to ready {ready_ms:.0f} ms "
                    "(median of 3)")
            if plots:
                line += f", first plot {statistics.median(plots):.0f} ms"
            print(line)


def test_cache_build_never_exposes_a_lock_or_a_partial_file(tmp_path):
    """Kernels copy the cache folder while the helper may still be building it; they must only
    ever see finished files there (a copied lock file made matplotlib wait 5 s and fail)."""
    pytest.importorskip("matplotlib")
    cache = tmp_path / "mpl-cache"
    cache.mkdir()
    seen = set()
    helper = subprocess.Popen([PYTHON, os.path.join(KERNEL_DIR, "prepare_mpl_cache.py"),
                               str(cache)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    while helper.poll() is None:
        seen.update(os.listdir(cache))
    out, err = helper.communicate()
    assert helper.returncode == 0, err
    seen.update(os.listdir(cache))
    assert seen and all(n.startswith("fontlist-") and n.endswith(".json") for n in seen), seen
    for name in seen:
        json.loads((cache / name).read_text())
    assert os.listdir(tmp_path) == ["mpl-cache"], "the build folder was left behind"


def test_a_leftover_lock_in_the_cache_is_not_copied(tmp_path):
    pytest.importorskip("matplotlib")
    cache = tmp_path / "mpl-cache"
    subprocess.run([PYTHON, os.path.join(KERNEL_DIR, "prepare_mpl_cache.py"), str(cache)],
                   check=True, capture_output=True, timeout=300)
    (fontlist,) = [n for n in os.listdir(cache) if n.startswith("fontlist-")]
    (cache / (fontlist + ".matplotlib-lock")).write_text("")
    ws = tmp_path / "ws"
    ws.mkdir()
    kernel = Kernel(ws, preload="matplotlib", env={"MCPX_MPL_CACHE": str(cache)})
    try:
        assert kernel.ready["failed_preloads"] == []
        reply = kernel.execute("import os\nsorted(os.listdir(os.environ['MPLCONFIGDIR']))")
        assert reply["result"] == repr([fontlist])
    finally:
        kernel.close()
