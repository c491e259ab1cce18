"""Modules planted in the workspace (shared by every session, written by sandboxed code) never run
in a kernel on their own: not while it preloads, before any session owns it, and not in place of
a standard-library module or an installed package that a session imports later. A user's own
module in the workspace still imports."""

import pytest

from conftest import Kernel

# Each planted module leaves a marker file in the workspace when it runs.
PLANTED = """import os
with open(os.path.join({ws!r}, "ran-" + __name__), "a") as f:
    f.write(str(os.getpid()) + "\\n")
PLANTED = True
"""


def plant(ws, *names):
    for name in names:
        (ws / f"{name}.py").write_text(PLANTED.format(ws=str(ws)))


def ran(ws):
    return sorted(p.name for p in ws.iterdir() if p.name.startswith("ran-"))


def test_a_planted_preload_dependency_never_runs(tmp_path, kernel_factory):
    pytest.importorskip("matplotlib")
    pytest.importorskip("pandas")
    # cycler: imported by matplotlib; csv: a standard-library module pandas imports.
    plant(tmp_path, "cycler", "csv")
    kernel = kernel_factory(preload="numpy,pandas,matplotlib,matplotlib.pyplot")
    assert kernel.ready["failed_preloads"] == [], kernel.ready
    assert ran(tmp_path) == []
    reply = kernel.execute("import cycler, csv\n(cycler.__file__, csv.__file__)")
    assert reply["status"] == "ok", reply
    cycler_file, csv_file = eval(reply["result"])
    assert not cycler_file.startswith(str(tmp_path)), cycler_file
    assert not csv_file.startswith(str(tmp_path)), csv_file
    assert ran(tmp_path) == []


def test_a_planted_matplotlibrc_does_not_steer_the_preload(tmp_path, kernel_factory):
    pytest.importorskip("matplotlib")
    (tmp_path / "matplotlibrc").write_text("lines.linewidth: 42\n")
    kernel = kernel_factory(preload="matplotlib")
    reply = kernel.execute("import matplotlib\nmatplotlib.rcParams['lines.linewidth']")
    assert reply["status"] == "ok", reply
    assert reply["result"] != "42.0"


def test_a_planted_stdlib_shadow_is_not_imported_later(kernel_factory, tmp_path):
    # wave: in the standard library, imported by neither the kernel nor the data stack.
    plant(tmp_path, "wave", "json")
    kernel = kernel_factory()
    reply = kernel.execute("import sys\n'wave' in sys.modules")
    assert reply["result"] == "False", "pick a module the kernel has not imported"
    reply = kernel.execute("import wave, json\n"
                           "(hasattr(wave, 'PLANTED'), hasattr(json, 'PLANTED'), json.dumps([1]))")
    assert reply["status"] == "ok", reply
    assert reply["result"] == "(False, False, '[1]')"
    assert ran(tmp_path) == []


def test_the_workspace_is_last_on_sys_path(kernel_factory, tmp_path):
    kernel = kernel_factory()
    reply = kernel.execute("import sys\nsys.path")
    path = eval(reply["result"])
    assert path[-1] == str(tmp_path), path
    assert "" not in path and str(tmp_path) not in path[:-1], path


def test_a_users_own_module_still_imports(kernel_factory, tmp_path):
    kernel = kernel_factory()
    (tmp_path / "mymodule.py").write_text("def answer():\n    return 42\n")
    reply = kernel.execute("import mymodule\nmymodule.answer()")
    assert reply["status"] == "ok", reply
    assert reply["result"] == "42"
    # Written after the kernel started, in a subfolder package too.
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("NAME = 'mypkg'\n")
    reply = kernel.execute("import mypkg\nmypkg.NAME")
    assert reply["result"] == "'mypkg'", reply


def test_a_session_still_gets_planted_code_it_imports_by_name(kernel_factory, tmp_path):
    """What the fix does not change: a name that nothing installed provides resolves to the
    workspace, as a user's own module must."""
    plant(tmp_path, "notinstalledanywhere")
    kernel = kernel_factory()
    assert ran(tmp_path) == []
    reply = kernel.execute("import notinstalledanywhere\nnotinstalledanywhere.PLANTED")
    assert reply["result"] == "True", reply
    assert ran(tmp_path) == ["ran-notinstalledanywhere"]
