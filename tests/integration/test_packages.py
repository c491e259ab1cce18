"""install_package (and `%pip install`) through the real server over stdio, from a local
wheelhouse (--find-links, offline) and from a local PEP 503 index (--index-url on 127.0.0.1, so
pip goes through the server's proxy). Packages are made by tests/pylib/wheelhouse.py; nothing
leaves the machine."""
import glob
import json
import os
import re
import socket
import subprocess
import tempfile

import pytest

from mcp_client import BIN, McpClient, modern_meta, text_of
from policy_files import write_policy
import wheelhouse
from wheelhouse import SimpleIndex, build_sdist, build_wheel, make_wheelhouse, parse_probe

SYSTEM_DIST = "/usr/lib/python3/dist-packages"
HINT = "install_package takes one PEP 508 requirement"
# A dependency-rich package for the reply-size test.
MANY_DEPS = ["mcpx-dep%02d" % i for i in range(20)]

WHEELS = [
    ("mcpx-alpha", "1.0", ["mcpx-beta>=1.0"]),
    ("mcpx-beta", "1.1"),
    ("mcpx-gamma", "3.0"),
    ("mcpx-ver", "1.0"),
    ("mcpx-ver", "2.0"),
    ("mcpx-usesnp", "1.0", ["numpy"]),
    ("mcpx-conc-one", "1.0"),
    ("mcpx-conc-two", "1.0"),
    ("mcpx-magic", "1.0"),
    ("mcpx-bang", "1.0"),
    ("mcpx-after", "1.0"),
    ("mcpx-persist", "1.0"),
    ("mcpx-prog", "1.0"),
    ("mcpx-stall", "1.0"),
    ("mcpx-task", "1.0"),
    ("mcpx-many", "1.0", MANY_DEPS),
] + [(d, "0.1") for d in MANY_DEPS]


def module_of(project):
    return project.replace("-", "_")


@pytest.fixture(scope="module")
def files():
    """One folder of wheels (the --find-links wheelhouse) and the index's folder: the same
    wheels plus what only the index offers (a pure-Python "numpy" that must never shadow the
    system's, and an sdist-only project)."""
    with tempfile.TemporaryDirectory(prefix="mcpx-wheels-") as d:
        wheels = os.path.join(d, "wheels")
        index = os.path.join(d, "index")
        make_wheelhouse(wheels, WHEELS)
        make_wheelhouse(index, WHEELS)
        build_wheel(index, "numpy", "99.0")
        build_sdist(index, "mcpx-sdonly", "1.0", mode="error")
        for path in (d, wheels, index):
            os.chmod(path, 0o755)
        yield {"wheels": wheels, "index": index}


@pytest.fixture(scope="module")
def index(files):
    with SimpleIndex(files["index"], stall={"mcpx-stall"}) as idx:
        yield idx


@pytest.fixture(scope="module")
def offline(files):
    """A server whose only package source is the wheelhouse."""
    with McpClient(args=["--find-links", files["wheels"]]) as c:
        yield c


@pytest.fixture(scope="module")
def networked(index):
    """A server whose index is the local SimpleIndex (pip goes through the proxy)."""
    with McpClient(args=["--index-url", index.url]) as c:
        yield c


@pytest.fixture(autouse=True)
def close_extra_sessions(request):
    yield
    for name in ("offline", "networked"):
        if name not in request.fixturenames:
            continue
        c = request.getfixturevalue(name)
        if c.proc.poll() is not None:
            continue
        for s in c.call("list_sessions", {})["structuredContent"]["sessions"]:
            if s["session"] != "default":
                c.call("reset_session", {"session": s["session"]})


def install(c, package, timeout=300, meta=None):
    r = c.call("install_package", {"package": package}, timeout=timeout, meta=meta)
    assert "structuredContent" in r, r
    return r, r["structuredContent"]


def installed_ok(c, package):
    r, s = install(c, package)
    assert s["status"] == "installed" and not r.get("isError"), "%s\n%s" % (
        s, c.stderr_text()[-3000:])
    return s


def run(c, code, session="default"):
    r = c.call("execute_python", {"code": code, "session": session}, timeout=180)
    return r, r["structuredContent"]


def run_ok(c, code, session="default"):
    r, s = run(c, code, session)
    assert s["status"] == "ok", s
    return s


def version_in(c, project, session="default"):
    mod = module_of(project)
    s = run_ok(c, "import %s\nprint(%s.__version__)" % (mod, mod), session)
    return s["stdout"].strip().splitlines()[-1]


def versions(s):
    return {d["name"].lower(): d["version"] for d in s["installed"]}


def overlay_site(c):
    sites = glob.glob(os.path.join(c.state_dir, "packages", "lib", "python3.*", "site-packages"))
    assert len(sites) == 1, sites
    return sites[0]


# -- the test library itself ---------------------------------------------------------------

def test_wheelhouse_selfcheck(tmp_path):
    """A wheel from wheelhouse.py installs with the system's pip from SimpleIndex, offline, with
    its dependency, and imports with the version it was built with; a probe sdist builds without
    asking the index for build requirements and reports where it ran."""
    os.chmod(tmp_path, 0o755)
    d = str(tmp_path / "files")
    make_wheelhouse(d, [("selfcheck-a", "1.5", ["selfcheck-b"]), ("selfcheck-b", "0.2")])
    build_sdist(d, "selfcheck-probe", "1.0", probe="P['k'] = 'v'")
    venv = str(tmp_path / "venv")
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", "--without-pip",
                    venv], check=True)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PIP_CONFIG_FILE": "/dev/null",
           "PIP_NO_INPUT": "1"}

    def pip_install(url, *args):
        return subprocess.run(["/usr/bin/python3", "-m", "pip", "--python", venv + "/bin/python",
                               "install", "--no-cache-dir", "--disable-pip-version-check",
                               "--index-url", url, *args],
                              env=env, capture_output=True, text=True, timeout=120)

    with SimpleIndex(d) as idx:
        r = pip_install(idx.url, "--only-binary", ":all:", "selfcheck-a")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "/simple/selfcheck-a/" in idx.seen() and "/simple/selfcheck-b/" in idx.seen()
        assert sorted(idx.downloads()) == ["selfcheck_a-1.5-py3-none-any.whl",
                                           "selfcheck_b-0.2-py3-none-any.whl"]
        idx.clear()
        probe = pip_install(idx.url, "selfcheck-probe")
        assert idx.seen() == ["/simple/selfcheck-probe/", "/files/selfcheck_probe-1.0.tar.gz"]
    r = subprocess.run([venv + "/bin/python", "-c",
                        "import selfcheck_a, selfcheck_b; print(selfcheck_a.__version__, "
                        "selfcheck_b.__version__, selfcheck_a.__file__)"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    a, b, path = r.stdout.split()
    assert (a, b) == ("1.5", "0.2") and path.startswith(venv), r.stdout
    assert probe.returncode != 0
    report = parse_probe(probe.stdout + probe.stderr)
    assert report is not None, probe.stdout + probe.stderr
    assert report["k"] == "v" and report["uid"] == os.getuid(), report


# -- installing ------------------------------------------------------------------------------

def test_install_from_wheelhouse_imports_in_a_session_started_before(offline):
    run_ok(offline, "before = 1", session="pre")
    run_ok(offline, "import json", session="pre2")
    r, s = install(offline, "mcpx-alpha")
    assert s["status"] == "installed" and not r.get("isError"), s
    assert s["requirement"] == "mcpx-alpha"
    assert versions(s) == {"mcpx-alpha": "1.0", "mcpx-beta": "1.1"}, s
    assert s["reset_needed"] == []
    assert isinstance(s["duration_ms"], int)
    assert "mcpx-alpha" in text_of(r)
    # no restart: the session that was running before imports it, state kept
    assert version_in(offline, "mcpx-alpha", session="pre") == "1.0"
    assert version_in(offline, "mcpx-beta", session="pre") == "1.1"
    assert run_ok(offline, "print(before)", session="pre")["stdout"].strip() == "1"
    assert version_in(offline, "mcpx-alpha", session="pre2") == "1.0"
    # and a session started after
    assert version_in(offline, "mcpx-alpha", session="later") == "1.0"


def test_install_from_an_http_index_goes_through_the_proxy(networked, index):
    index.clear()
    s = installed_ok(networked, "mcpx-gamma==3.0")
    assert versions(s) == {"mcpx-gamma": "3.0"}
    assert "/simple/mcpx-gamma/" in index.seen(), index.seen()
    assert index.downloads() == ["mcpx_gamma-3.0-py3-none-any.whl"]
    assert version_in(networked, "mcpx-gamma") == "3.0"


def test_system_packages_are_reused_not_downloaded(networked, index):
    index.clear()
    s = installed_ok(networked, "mcpx-usesnp")
    assert versions(s) == {"mcpx-usesnp": "1.0"}, s
    # the index offers a "numpy 99.0": it was never fetched, the system's numpy is used
    assert not any(f.startswith("numpy") for f in index.downloads()), index.seen()
    assert not glob.glob(os.path.join(overlay_site(networked), "numpy*")), \
        os.listdir(overlay_site(networked))
    out = run_ok(networked, "import mcpx_usesnp, numpy\nprint(numpy.__file__)\n"
                 "print(numpy.__version__)")["stdout"].split()
    assert out[0].startswith(SYSTEM_DIST + "/numpy/"), out
    assert out[1] != "99.0"
    r, s = install(networked, "numpy")
    assert s["status"] == "already_satisfied" and not r.get("isError"), s
    assert s["installed"] == []
    assert any(x.lower().startswith("numpy ") and out[1] in x for x in s.get("satisfied", [])), s
    assert not any(f.startswith("numpy") for f in index.downloads()), index.seen()


def test_upgrade_leaves_one_version_and_names_sessions_that_imported_it(offline):
    installed_ok(offline, "mcpx-ver==1.0")
    assert version_in(offline, "mcpx-ver", session="old") == "1.0"
    s = installed_ok(offline, "mcpx-ver==2.0")
    assert s["installed"] == [{"name": "mcpx-ver", "version": "2.0", "replaced": "1.0"}] or \
        [(d["name"].lower(), d["version"], d.get("replaced")) for d in s["installed"]] == \
        [("mcpx-ver", "2.0", "1.0")], s
    assert "old" in s["reset_needed"], s
    assert "default" not in s["reset_needed"], s
    infos = [n for n in os.listdir(overlay_site(offline)) if n.lower().startswith("mcpx_ver-")]
    assert infos == ["mcpx_ver-2.0.dist-info"], infos
    # the session that had imported 1.0 keeps it until reset; others see 2.0
    assert version_in(offline, "mcpx-ver", session="old") == "1.0"
    assert version_in(offline, "mcpx-ver", session="fresh") == "2.0"
    offline.call("reset_session", {"session": "old"})
    assert version_in(offline, "mcpx-ver", session="old") == "2.0"


# The messages of src/packages/requirement.cc (each also ends with the hint).
REFUSALS = [
    ("-r x", r"options are not accepted"),
    ("-e .", r"options are not accepted"),
    ("--index-url=http://127.0.0.1:1/simple", r"options are not accepted"),
    ("https://files.example.org/x-1.0-py3-none-any.whl", r"is a URL"),
    ("name @ https://files.example.org/name-1.0.tar.gz", r"is a direct reference"),
    ("./x", r"is a path"),
    ("/tmp/x", r"is a path"),
    ("x.whl", r"archive file name \(\.whl\)"),
    ("git+https://github.com/a/b", r"version-control link \(git\+\)"),
    ("numpy pandas", r"one requirement per call"),
    ("x; rm -rf /", r"shell metacharacter ';'"),
    ("x && y", r"shell metacharacter '&'"),
    ("x$(id)", r"shell metacharacter '\$'"),
    ("", r"the requirement is empty"),
    ("   ", r"the requirement is empty"),
]


@pytest.mark.parametrize("package,why", REFUSALS, ids=[r[0] or "<empty>" for r in REFUSALS])
def test_refused_before_pip_runs(networked, index, package, why):
    index.clear()
    r, s = install(networked, package, timeout=30)
    assert r.get("isError") is True, r
    assert s["status"] == "refused", s
    assert s["requirement"] == package
    assert "installed" not in s
    err = s["error"]
    assert "refused" in err and HINT in err, err
    assert re.search(why, err), (why, err)
    assert len(err) < 600, err
    # pip never ran: the index saw nothing (the proxy forwards every request pip makes)
    assert index.seen() == [], index.seen()


def test_wrong_argument_types_are_errors(networked):
    for args in ({}, {"package": 3}, {"package": ["x"]}, {"package": "x", "extra": 1}):
        r = networked.call("install_package", args, timeout=30)
        assert r.get("isError") is True, (args, r)


def test_unknown_package_is_a_short_error_naming_it(networked, index):
    r, s = install(networked, "mcpx-no-such-project")
    assert r.get("isError") is True and s["status"] == "error", s
    assert "mcpx-no-such-project" in s["error"], s
    assert len(s["error"]) <= 600, len(s["error"])
    assert "installed" not in s
    assert len(text_of(r)) < 2000


def test_unsatisfiable_version_is_a_short_error(networked, index):
    r, s = install(networked, "mcpx-gamma==9.9")
    assert r.get("isError") is True and s["status"] == "error", s
    assert "mcpx-gamma==9.9" in s["error"], s
    # pip's own words for it, not a resolver wall
    assert "from versions: 3.0" in s["error"] or "No matching distribution" in s["error"], s
    assert len(s["error"]) <= 600, len(s["error"])


def test_progress_carries_pips_lines(offline):
    r, s = install(offline, "mcpx-prog", meta={"progressToken": "pip-lines"})
    assert s["status"] == "installed", s
    lines = [m["params"].get("message", "") for m in offline.notifications
             if m.get("method") == "notifications/progress"
             and m["params"].get("progressToken") == "pip-lines"]
    assert any(line.startswith("Processing") or line.startswith("Looking in") or
               line.startswith("Successfully installed") for line in lines), lines


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_an_unreachable_index_is_named_as_the_cause(scheme):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = "%s://127.0.0.1:%d/simple" % (scheme, port)
    with McpClient(args=["--index-url", url]) as c:
        r, s = install(c, "mcpx-anything")
    assert r.get("isError") is True and s["status"] == "error", s
    # not only pip's "from versions: none", which reads as if the project did not exist
    assert "the package index could not be reached (cannot connect to 127.0.0.1:%d: " \
        "ECONNREFUSED)" % port in s["error"], s


def test_sdist_is_not_built_by_default(networked, index):
    index.clear()
    r, s = install(networked, "mcpx-sdonly")
    assert r.get("isError") is True and s["status"] == "error", s
    assert "mcpx-sdonly" in s["error"]
    # no build code ran: no probe report, not even a download of the sdist
    assert parse_probe(s["error"]) is None, s["error"]
    assert parse_probe(networked.stderr_text()) is None
    assert not any(f.endswith(".tar.gz") for f in index.downloads()), index.seen()
    assert not glob.glob(os.path.join(networked.state_dir, "pip-cache", "probe-*"))


def test_sdist_builds_inside_the_jail_when_the_policy_allows(tmp_path):
    os.chmod(tmp_path, 0o755)
    d = str(tmp_path / "index")
    probe = ("import socket\n"
             "P['if'] = ','.join(sorted(n for _, n in socket.if_nameindex()))\n")
    build_sdist(d, "mcpx-sdprobe", "1.0", mode="error", probe=probe)
    build_sdist(d, "mcpx-sdok", "2.0", mode="ok")
    os.chmod(d, 0o755)
    policy = write_policy(str(tmp_path), "sdist.json", allow_sdist=True)
    with SimpleIndex(d) as idx, McpClient(args=["--index-url", idx.url, "--policy",
                                                 policy]) as c:
        r, s = install(c, "mcpx-sdprobe")
        assert r.get("isError") is True and s["status"] == "error", s
        p = parse_probe(s["error"])
        assert p is not None, s["error"]
        assert p["ws"] is False, p           # no workspace in the installer's jail
        assert p["if"] == "lo", p            # loopback only: no network of its own
        inside, outside, _count = (int(x) for x in p["map"].split()[:3])
        assert inside == p["uid"], p
        if os.geteuid() == 0:
            assert outside != 0, p           # never host root
        else:
            assert outside == os.geteuid(), p
        assert "mcpx_probe" not in os.environ.get("PATH", "")
        # a source build that succeeds installs like a wheel
        s = installed_ok(c, "mcpx-sdok")
        assert versions(s) == {"mcpx-sdok": "2.0"}
        assert version_in(c, "mcpx-sdok") == "2.0"


def test_install_timeout(tmp_path, files):
    os.chmod(tmp_path, 0o755)
    policy = write_policy(str(tmp_path), "slow.json", limits={"install_timeout_s": 5})
    with SimpleIndex(files["index"], stall=True) as idx, \
            McpClient(args=["--index-url", idx.url, "--policy", policy]) as c:
        r, s = install(c, "mcpx-gamma", timeout=120)
        assert r.get("isError") is True, r
        assert s["status"] == "timeout", s
        assert "install_timeout_s" in s["error"], s
        assert "/simple/mcpx-gamma/" in idx.seen()
        assert c.request("ping", timeout=30).get("result") == {}


def test_concurrent_installs_both_succeed_the_second_waits(offline):
    first = offline.start("tools/call", {"name": "install_package",
                                         "arguments": {"package": "mcpx-conc-one"}})
    second = offline.start("tools/call", {"name": "install_package",
                                          "arguments": {"package": "mcpx-conc-two"}},
                           meta={"progressToken": "conc-2"})
    r1 = offline.wait(first, timeout=300)["result"]
    r2 = offline.wait(second, timeout=300)["result"]
    assert r1["structuredContent"]["status"] == "installed", r1
    assert r2["structuredContent"]["status"] == "installed", r2
    progress = [m["params"] for m in offline.notifications
                if m.get("method") == "notifications/progress"
                and m["params"].get("progressToken") == "conc-2"]
    assert any(p.get("message", "").startswith("waiting") for p in progress), progress
    assert version_in(offline, "mcpx-conc-one") == "1.0"
    assert version_in(offline, "mcpx-conc-two") == "1.0"


def installer_pids(c):
    """Host pids under the server whose command line runs mcpx_install.py."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % name, "rb") as f:
                if b"mcpx_install.py" in f.read():
                    out.append(int(name))
        except OSError:
            pass
    return out


def test_cancel_a_running_install(networked, index):
    index.clear()
    rid = networked.start("tools/call", {"name": "install_package",
                                         "arguments": {"package": "mcpx-stall"}})
    # running: pip asked the index (which holds the answer back)
    assert wheelhouse.wait_until(lambda: "/simple/mcpx-stall/" in index.seen(), 120), \
        index.seen()
    networked.notify("notifications/cancelled", {"requestId": rid, "reason": "test"})
    # the installer is free again: the next install runs now, not after the stalled one
    s = installed_ok(networked, "mcpx-after")
    assert versions(s) == {"mcpx-after": "1.0"}
    assert not any(m.get("id") == rid for m in networked.messages), "response to a cancelled call"
    assert wheelhouse.wait_until(lambda: not installer_pids(networked), 30), installer_pids(networked)
    assert networked.request("ping", timeout=30).get("result") == {}
    assert not any(n.lower().startswith("mcpx_stall") for n in os.listdir(overlay_site(networked)))


def test_a_silent_install_still_sends_keepalive_progress(networked, index):
    # pip waits on an index that says nothing: only the server's keepalive tells the client the
    # call is alive (SDK clients reset their request timeout on progress).
    index.clear()
    rid = networked.start("tools/call", {"name": "install_package",
                                         "arguments": {"package": "mcpx-stall"}},
                          meta={"progressToken": "keep"})
    m = networked.wait_message(lambda m: m.get("method") == "notifications/progress"
                               and m["params"]["progressToken"] == "keep"
                               and "still working" in m["params"].get("message", ""), 30)
    assert re.fullmatch(r"still working \(\d+ s\)", m["params"]["message"]), m
    networked.notify("notifications/cancelled", {"requestId": rid, "reason": "test"})
    assert wheelhouse.wait_until(lambda: not installer_pids(networked), 30)


def test_install_runs_as_a_task_in_both_eras(networked, index):
    index.clear()
    # 2025-11-25 (the fixture's handshake): the client asks for a task; tasks/result collects.
    r = networked.request("tools/call", {"name": "install_package",
                                         "arguments": {"package": "mcpx-task"}, "task": {}})
    task = r["result"]["task"]
    assert task["status"] == "working" and re.fullmatch(r"[0-9a-f]{32}", task["taskId"]), r
    done = networked.request("tasks/result", {"taskId": task["taskId"]}, timeout=300)["result"]
    assert done["structuredContent"]["status"] == "installed", done
    assert done["_meta"]["io.modelcontextprotocol/related-task"] == {"taskId": task["taskId"]}
    status = [m["params"]["status"] for m in networked.messages
              if m.get("method") == "notifications/tasks/status"
              and m["params"]["taskId"] == task["taskId"]]
    assert status[-1] == "completed", status

    # 2026-07-28 on the same stream: the server makes a slow install a task, cancel frees pip.
    meta = modern_meta(tasks=True)
    handle = networked.request("tools/call", {"name": "install_package",
                                              "arguments": {"package": "mcpx-stall"}},
                               meta=meta, timeout=60)["result"]
    assert handle["resultType"] == "task", handle
    got = networked.request("tasks/get", {"taskId": handle["taskId"]}, meta=meta)["result"]
    assert got["status"] == "working" and got["resultType"] == "complete", got
    ack = networked.request("tasks/cancel", {"taskId": handle["taskId"]}, meta=meta)["result"]
    assert ack["resultType"] == "complete", ack
    got = networked.request("tasks/get", {"taskId": handle["taskId"]}, meta=meta)["result"]
    assert got["status"] == "cancelled", got
    assert wheelhouse.wait_until(lambda: not installer_pids(networked), 30)
    assert not any(n.lower().startswith("mcpx_stall") for n in os.listdir(overlay_site(networked)))


def test_server_and_sessions_survive_a_pip_killed_mid_install(networked, index):
    run_ok(networked, "kept = 42", session="survivor")
    index.clear()
    rid = networked.start("tools/call", {"name": "install_package",
                                         "arguments": {"package": "mcpx-stall"}})
    assert wheelhouse.wait_until(lambda: "/simple/mcpx-stall/" in index.seen(), 120), \
        index.seen()
    pids = installer_pids(networked)
    assert pids, "no installer process"
    for pid in pids:
        os.kill(pid, 9)
    r = networked.wait(rid, timeout=120)["result"]
    s = r["structuredContent"]
    assert r.get("isError") is True and s["status"] == "error", s
    assert "mcpx-stall" in s["error"] and len(s["error"]) <= 600, s
    assert run_ok(networked, "print(kept)", session="survivor")["stdout"].strip() == "42"
    # the installer takes the next one (mcpx-after may be there from an earlier test)
    r, s = install(networked, "mcpx-after")
    assert s["status"] in ("installed", "already_satisfied"), s


def test_pip_magic_and_bang_in_a_cell(offline):
    r, s = run(offline, "%pip install mcpx-magic")
    assert s["status"] == "ok", s
    assert "mcpx-magic" in s["stdout"] and "1.0" in s["stdout"], s
    assert version_in(offline, "mcpx-magic", session="default") == "1.0"
    r, s = run(offline, "!pip install mcpx-bang", session="bang")
    assert s["status"] == "ok", s
    assert "mcpx-bang" in s["stdout"], s
    assert version_in(offline, "mcpx-bang", session="bang") == "1.0"


def test_pip_magic_refusal_is_reported_in_the_cell(offline):
    r, s = run(offline, "%pip install --index-url=http://127.0.0.1:1/simple x")
    out = s["stdout"] + s["stderr"] + json.dumps(s.get("error"))
    assert "refused" in out or "option" in out, s


def test_pip_in_a_subprocess_points_at_install_package(offline):
    code = ("import subprocess, sys\n"
            "for cmd in (['pip', 'install', 'mcpx-gamma'], ['pip3', 'install', 'mcpx-gamma'],\n"
            "            [sys.executable, '-m', 'pip', 'install', 'mcpx-gamma']):\n"
            "    r = subprocess.run(cmd, capture_output=True, text=True)\n"
            "    print('RC', r.returncode)\n"
            "    print(r.stdout + r.stderr)\n")
    s = run_ok(offline, code)
    out = s["stdout"]
    assert out.count("RC ") == 3, out
    assert out.count("install_package") >= 3, out
    assert "externally-managed-environment" not in out, out
    assert "RC 0" not in out, out
    assert not any(n.lower().startswith("mcpx_gamma") for n in os.listdir(overlay_site(offline)))


def test_the_overlay_survives_a_restart(files, tmp_path):
    state = str(tmp_path / "state")
    os.makedirs(state)
    os.chmod(tmp_path, 0o755)
    with McpClient(args=["--find-links", files["wheels"]], state_dir=state) as c:
        installed_ok(c, "mcpx-persist")
    with McpClient(args=["--find-links", files["wheels"]], state_dir=state) as c:
        assert version_in(c, "mcpx-persist") == "1.0"
        r, s = install(c, "mcpx-persist")
        assert s["status"] == "already_satisfied", s
        assert s["installed"] == []


def test_reply_is_small_and_matches_the_output_schema(offline):
    tools = offline.request("tools/list", {})["result"]["tools"]
    tool = next(t for t in tools if t["name"] == "install_package")
    props = tool["outputSchema"]["properties"]
    for key in ("status", "requirement", "installed", "satisfied", "reset_needed",
                "duration_ms", "error"):
        assert key in props, key
    assert tool["inputSchema"]["required"] == ["package"]

    r, s = install(offline, "mcpx-many")
    assert s["status"] == "installed", s
    assert set(versions(s)) == {"mcpx-many"} | set(MANY_DEPS), s
    assert len(json.dumps(r, separators=(",", ":"))) < 4096, len(json.dumps(r))
    assert set(s) <= set(props), set(s) - set(props)
    for key in ("status", "requirement", "installed", "reset_needed", "duration_ms"):
        assert key in s, key
    assert s["status"] in props["status"]["enum"]
    for d in s["installed"]:
        assert set(d) <= {"name", "version", "replaced"}, d
        assert isinstance(d["name"], str) and isinstance(d["version"], str)


def doctor(*args):
    r = subprocess.run([BIN, "doctor", "--json", *args], capture_output=True, text=True,
                       timeout=120)
    try:
        return json.loads(r.stdout)
    except ValueError:
        raise AssertionError("doctor --json printed no JSON (exit %d):\n%s\n%s" % (
            r.returncode, r.stdout[-2000:], r.stderr[-2000:]))


def test_doctor_reports_sources_and_overlay(offline, networked, files, index):
    installed_ok(offline, "mcpx-gamma")
    p = doctor("--state-dir", offline.state_dir, "--find-links", files["wheels"])["packages"]
    assert p["overlay"] == os.path.join(offline.state_dir, "packages")
    assert p["ready"] is True
    assert any(x.lower().replace("-", "_") == "mcpx_gamma 3.0" for x in p["installed"]), p
    assert files["wheels"] in p["sources"], p
    assert p["index"]["network"] is False and p["index"]["find_links"] == [files["wheels"]], p
    assert p["proxy_hosts"] == [] and p["config_error"] is None, p

    p = doctor("--state-dir", networked.state_dir, "--index-url", index.url)["packages"]
    assert index.url in p["sources"], p
    assert p["index"]["index_url"] == index.url and p["index"]["network"] is True, p
    hosts = [h for h in p["proxy_hosts"] if h["host"].startswith("127.0.0.1")]
    assert hosts and hosts[0]["reachable"] is True, p

    p = doctor("--state-dir", offline.state_dir, "--index-url", "ftp://x/simple")["packages"]
    assert p["config_error"], p
