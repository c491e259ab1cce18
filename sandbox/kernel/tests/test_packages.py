"""Packages: packages_generation, reported imports, %pip line magics (the install exchange on
fd 3), and pip outside the magics (the bin/ scripts and the pipshim)."""

import os
import select

import pytest

from conftest import KERNEL_DIR


def _site_kernel(kernel_factory, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    return kernel_factory(env={"MCPX_PACKAGES_SITE": str(site)}), site


def _start_cell(k, code, **fields):
    return k.start("execute", code=code, **fields)


def _expect_install(k, rid):
    frame = k.recv()
    assert frame["type"] == "install", frame
    assert frame["id"] == rid
    return frame


def _answer(k, ok, text):
    k.send({"op": "install_result", "ok": ok, "text": text})


def _result(k, rid):
    reply = k.recv()
    assert reply["type"] == "result", reply
    assert reply["id"] == rid
    reply["stdout"], reply["stderr"] = k.take_output()
    return reply


def test_generation_bump_makes_new_packages_importable(kernel_factory, tmp_path):
    k, site = _site_kernel(kernel_factory, tmp_path)
    extra = tmp_path / "extra"
    extra.mkdir()
    missing = k.execute("import mcpx_fresh_pkg")
    assert missing["error"]["type"] == "ModuleNotFoundError"

    (site / "mcpx_fresh_pkg.py").write_text("VALUE = 7\n")
    (extra / "mcpx_pth_mod.py").write_text("VALUE = 8\n")
    (site / "extra.pth").write_text(
        f"{extra}\n"
        "import sys; sys.mcpx_pth_runs = getattr(sys, 'mcpx_pth_runs', 0) + 1\n")
    reply = k.execute("import mcpx_fresh_pkg, mcpx_pth_mod\n"
                      "mcpx_fresh_pkg.VALUE + mcpx_pth_mod.VALUE", packages_generation=1)
    assert reply["status"] == "ok", reply["error"]
    assert reply["result"] == "15"

    # Same generation again, then a new one: nothing is added twice, no .pth runs twice; the
    # overlay and its .pth folders come before the workspace.
    k.execute("0", packages_generation=1)
    k.execute("0", packages_generation=2)
    reply = k.execute(
        "import os, sys\n"
        f"s, e = {str(site)!r}, {str(extra)!r}\n"
        "(sys.path.count(s), sys.path.count(e), sys.mcpx_pth_runs,\n"
        " sys.path.index(s) < sys.path.index(e) < sys.path.index(os.getcwd()))")
    assert reply["result"] == "(1, 1, 1, True)", reply

    (site / "later.pth").write_text("import sys; sys.mcpx_later = True\n")
    reply = k.execute("import sys\n(sys.mcpx_pth_runs, getattr(sys, 'mcpx_later', False))",
                      packages_generation=3)
    assert reply["result"] == "(1, True)"


def test_bad_generation_is_a_bad_request(shared_kernel):
    for bad in ("1", -1, True, 1.5):
        reply = shared_kernel.request("execute", code="0", packages_generation=bad)
        assert reply["type"] == "error"
        assert reply["error"]["type"] == "BadRequest"
        assert "packages_generation" in reply["error"]["message"]


def test_imports_are_reported_once(kernel_factory):
    k = kernel_factory()
    first = k.execute("x = 1")
    # The kernel's own startup imports come with the first result.
    assert "os" in first["imports"] and "sys" in first["imports"]
    assert all(name.isidentifier() and "." not in name for name in first["imports"])
    imports = k.execute("import colorsys, xml.dom.minidom")["imports"]
    assert {"colorsys", "xml"} <= set(imports)  # and what minidom imports, top-level names only
    assert not set(imports) & set(first["imports"])
    assert "imports" not in k.execute("import colorsys")
    assert "imports" not in k.execute("y = 2")


def test_pip_install_sends_the_frame_and_prints_the_answer(kernel_factory, tmp_path):
    k, _ = _site_kernel(kernel_factory, tmp_path)
    rid = _start_cell(k, "%pip install foo\nprint('after')")
    frame = _expect_install(k, rid)
    assert frame == {"type": "install", "id": rid, "requirement": "foo", "upgrade": False}
    _answer(k, True, "Installed foo 1.0. Importable now in every session.")
    reply = _result(k, rid)
    assert reply["status"] == "ok", reply["error"]
    assert reply["stdout"] == "Installed foo 1.0. Importable now in every session.\nafter\n"


def test_installed_package_imports_in_the_same_cell(kernel_factory, tmp_path):
    k, site = _site_kernel(kernel_factory, tmp_path)
    rid = _start_cell(k, "%pip install mcpx-same-cell\nimport mcpx_same_cell\nmcpx_same_cell.V")
    _expect_install(k, rid)
    (site / "mcpx_same_cell.py").write_text("V = 'here'\n")
    _answer(k, True, "Installed mcpx-same-cell 1.0.")
    reply = _result(k, rid)
    assert reply["status"] == "ok", reply["error"]
    assert reply["result"] == "'here'"
    assert "mcpx_same_cell" in reply["imports"]


def test_bang_pip_upgrade_sends_one_frame_per_requirement(kernel_factory):
    k = kernel_factory()
    rid = _start_cell(k, "if True:\n    !pip install -U foo 'bar>=2'  # two of them\n")
    for name in ("foo", "bar>=2"):
        frame = _expect_install(k, rid)
        assert (frame["requirement"], frame["upgrade"]) == (name, True)
        _answer(k, True, f"Installed {name}.")
    reply = _result(k, rid)
    assert reply["status"] == "ok", reply["error"]
    assert reply["stdout"] == "Installed foo.\nInstalled bar>=2.\n"


@pytest.mark.parametrize("command", ["%pip3 install -q --upgrade x", "!pip3 install -Uq x",
                                     "!python -m pip install --upgrade x",
                                     "!python3 -m pip install -U x"])
def test_command_spellings(shared_kernel, command):
    rid = _start_cell(shared_kernel, command)
    frame = _expect_install(shared_kernel, rid)
    assert (frame["requirement"], frame["upgrade"]) == ("x", True)
    _answer(shared_kernel, True, "ok")
    assert _result(shared_kernel, rid)["status"] == "ok"


def test_failed_install_stops_the_line_but_not_the_cell(shared_kernel):
    rid = _start_cell(shared_kernel, "%pip install nothere other\nprint('cell goes on')")
    frame = _expect_install(shared_kernel, rid)
    assert frame["requirement"] == "nothere"
    _answer(shared_kernel, False, "pip found no version of nothere")
    reply = _result(shared_kernel, rid)  # no frame for `other`
    assert reply["status"] == "ok"
    assert "pip found no version of nothere" in reply["stderr"]
    assert reply["stdout"] == "cell goes on\n"


@pytest.mark.parametrize("code, words", [
    ("%pip install --index-url http://example.com/simple foo", ["--index-url", "operator"]),
    ("%pip install -r requirements.txt", ["'-r'", "operator"]),
    ("%pip install", ["at least one package"]),
    ("%pip install foo ''", ["an empty requirement"]),
    ("%pip uninstall foo", ["uninstalling is not supported"]),
    ("%pip download foo", ["not available", "%pip install NAME"]),
    ("%pip install 'unterminated", ["cannot read"]),
    ("%pip install " + "a" * 1100, ["longer than the limit of 1024"]),
])
def test_refused_commands_send_no_frame(shared_kernel, code, words):
    reply = shared_kernel.execute(code + "\nprint('next')")
    assert reply["status"] == "ok", reply["error"]
    assert reply["stdout"] == "next\n"
    for word in words:
        assert word in reply["stderr"]


def test_install_from_a_thread_is_refused(shared_kernel):
    reply = shared_kernel.execute(
        "import threading\n"
        "def f():\n"
        "    %pip install foo\n"
        "t = threading.Thread(target=f)\n"
        "t.start(); t.join()\n"
        "print('next')")
    assert reply["status"] == "ok", reply["error"]
    assert reply["stdout"] == "next\n"
    assert "not in a thread" in reply["stderr"]


def test_pip_lines_in_a_string_are_not_commands(shared_kernel):
    reply = shared_kernel.execute('s = """\n%pip install foo\n!pip install bar\n"""\nlen(s)')
    assert reply["result"] == "35"


def test_line_numbers_survive_the_transform(shared_kernel):
    rid = _start_cell(shared_kernel, "%pip install foo\n\n1/0")
    _expect_install(shared_kernel, rid)
    _answer(shared_kernel, True, "fine")
    reply = _result(shared_kernel, rid)
    assert reply["error"]["lineno"] == 3
    assert 'File "<cell' in reply["error"]["traceback"]


def test_interrupt_while_waiting_and_the_late_answer(kernel_factory):
    k = kernel_factory()
    rid = _start_cell(k, "%pip install slow")
    _expect_install(k, rid)
    k.interrupt()
    reply = _result(k, rid)
    assert reply["status"] == "error"
    assert reply["error"]["type"] == "KeyboardInterrupt"
    assert "%pip install slow" in reply["error"]["traceback"]

    # The late answer is skipped by the request loop: the next request is answered normally.
    _answer(k, True, "late answer for slow")
    assert k.execute("1 + 1")["result"] == "2"

    # Interrupted again, and the next cell installs before the late answer came: its frame
    # waits for that answer (the server would refuse a second install while one runs).
    rid = _start_cell(k, "%pip install slow")
    _expect_install(k, rid)
    k.interrupt()
    assert _result(k, rid)["error"]["type"] == "KeyboardInterrupt"
    rid = _start_cell(k, "%pip install quick")
    k.wait_stderr("interrupted %pip install")
    assert not select.select([k.sock], [], [], 0.2)[0]  # no frame yet
    _answer(k, True, "answer for slow")
    assert _expect_install(k, rid)["requirement"] == "quick"
    _answer(k, True, "answer for quick")
    reply = _result(k, rid)
    assert reply["stdout"] == "answer for quick\n"
    assert k.execute("'still here'")["result"] == "'still here'"


def test_a_request_during_the_wait_is_answered_after_the_cell(kernel_factory):
    k = kernel_factory()
    rid = _start_cell(k, "%pip install foo")
    _expect_install(k, rid)
    ping = k.start("ping")
    _answer(k, True, "done")
    assert _result(k, rid)["stdout"] == "done\n"
    assert k.recv() == {"id": ping, "type": "pong"}


def test_pip_list_show_freeze_read_the_installed_metadata(kernel_factory, tmp_path):
    k, site = _site_kernel(kernel_factory, tmp_path)
    info = site / "mcpx_demo-1.2.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: mcpx-demo\nVersion: 1.2\nSummary: a demo\n")
    k.execute("0", packages_generation=1)
    listing = k.execute("%pip list")["stdout"].splitlines()
    assert listing[0].split() == ["Package", "Version"]
    assert ["mcpx-demo", "1.2"] in [line.split() for line in listing]
    assert "mcpx-demo==1.2" in k.execute("%pip freeze")["stdout"].splitlines()
    shown = k.execute("%pip show mcpx_demo nothere")
    assert "Name: mcpx-demo\nVersion: 1.2\nSummary: a demo\n" in shown["stdout"]
    assert f"Location: {site}" in shown["stdout"]
    assert "Package(s) not found: nothere" in shown["stderr"]


def test_pip_in_a_subprocess_explains(kernel_factory):
    k = kernel_factory(env={
        "PATH": os.path.join(KERNEL_DIR, "bin") + ":/usr/bin:/bin",
        "PYTHONPATH": os.path.join(KERNEL_DIR, "pipshim"),
    })
    reply = k.execute(
        "import subprocess, sys\n"
        "runs = [subprocess.run(cmd, capture_output=True, text=True) for cmd in\n"
        "        (['pip', 'install', 'x'], ['pip3', 'install', 'x'],\n"
        "         [sys.executable, '-m', 'pip', 'install', 'x'])]\n"
        "[(r.returncode, r.stdout, '%pip install NAME' in r.stderr,\n"
        "  'install_package' in r.stderr) for r in runs]")
    assert reply["status"] == "ok", reply["error"]
    assert reply["result"] == "[(1, '', True, True), (1, '', True, True), (1, '', True, True)]"
    reply = k.execute("import pip\npip.main(['install', 'x'])")
    assert reply["result"] == "1"
    assert "%pip install NAME" in reply["stderr"]


def test_pip_scripts_are_executable():
    for name in ("pip", "pip3"):
        path = os.path.join(KERNEL_DIR, "bin", name)
        assert os.access(path, os.X_OK), path
