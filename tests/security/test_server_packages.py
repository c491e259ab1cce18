"""The package installer's jail, seen from inside (a probe sdist whose build code reports what
it can reach; the policy allows source builds so that it runs) and from the host, for a root
server and an unprivileged one (uid 65534). docs/SECURITY.md "The installer" is the contract:
no workspace, no network but the server's proxy, which answers 403 for any host the operator
did not name; never host root; kernels see the overlay read-only; pip's cache in the state dir.

The probe stays on loopback: it tries the host's canary listener (unreachable: the jail has its
own loopback), a DNS lookup, and CONNECTs through the proxy. It makes no connection to another
address: the jail's interfaces and routing table show that there is no way out.
"""
import os
import shutil
import tempfile
import uuid

import pytest

from probes.harness import (ATTEMPT, NOBODY, USERS, cmdline, descendants, run_ok, start_server,
                            status_fields, stop_server, wait_for)
from policy_files import write_policy
from wheelhouse import CanaryServer, SimpleIndex, build_sdist, build_wheel, parse_probe

BLOCKED = "blocked by mcp-executor policy"
PLANTED = "mcpx-planted-" + uuid.uuid4().hex[:8]

# Runs inside the installer's jail as the probe sdist's build code (wheelhouse.build_sdist):
# CANARY and INDEX are filled in; results go into P with short keys (the error text is capped).
PROBE = r'''
import errno as _e, glob as _g, socket as _s
def _name(exc):
    return _e.errorcode.get(exc.errno, type(exc).__name__) if exc.errno else type(exc).__name__
def _tcp(host, port):
    c = _s.socket()
    c.settimeout(5)
    try:
        c.connect((host, port))
        return "CONNECTED"
    except OSError as exc:
        return _name(exc)
    finally:
        c.close()
def _via_proxy(target):
    proxy = os.environ.get("HTTPS_PROXY", "")
    if not proxy:
        return "noproxy"
    host, port = proxy.split("//", 1)[-1].rstrip("/").rsplit(":", 1)
    try:
        c = _s.create_connection((host, int(port)), 10)
    except OSError as exc:
        return "P" + _name(exc)
    c.settimeout(10)
    c.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, target)).encode())
    data = b""
    try:
        while len(data) < 4096:
            chunk = c.recv(4096)
            if not chunk:
                break
            data += chunk
            head, sep, body = data.partition(b"\r\n\r\n")
            if sep and (head.split(b" ")[1:2] == [b"200"] or b"policy" in body):
                break
    except OSError:
        pass
    c.close()
    parts = data.split(b" ", 2)
    code = parts[1].decode() if len(parts) > 1 else "none"
    return code + ("B" if b"blocked by mcp-executor policy" in data else "")
P["can"] = _tcp("127.0.0.1", CANARY)
try:
    _s.getaddrinfo("pypi.org", 443)
    P["dns"] = "RESOLVED"
except OSError as exc:
    P["dns"] = type(exc).__name__
P["if"] = ",".join(sorted(n for _, n in _s.if_nameindex()))
try:
    P["rt"] = len(open("/proc/net/route").read().splitlines()) - 1
except OSError:
    P["rt"] = -1
P["px"] = _via_proxy("example.com:443")
P["pc"] = _via_proxy("127.0.0.1:%d" % CANARY)
P["pi"] = _via_proxy("127.0.0.1:%d" % INDEX)
P["wsr"] = "none"
for _p in ["/workspace/" + PLANTED] + _g.glob("/tmp/mcpx-test-*/ws/" + PLANTED):
    try:
        P["wsr"] = "READ:" + open(_p).read()[:40]
    except OSError as exc:
        P["wsr"] = _name(exc)
'''


@pytest.fixture(scope="module")
def canary():
    with CanaryServer() as c:
        yield c


@pytest.fixture(scope="module")
def index(canary):
    """Wheels, the probe sdist and a project whose index page stalls (an install that stays
    running until it is cancelled)."""
    d = tempfile.mkdtemp(prefix="mcpx-secindex-")
    os.chmod(d, 0o755)
    idx = SimpleIndex(d, stall={"mcpx-secstall"}).start()
    probe = "CANARY = %d\nINDEX = %d\nPLANTED = %r\n%s" % (canary.port, idx.port, PLANTED, PROBE)
    build_sdist(d, "mcpx-secprobe", "1.0", mode="error", probe=probe)
    build_wheel(d, "mcpx-secwheel", "1.0")
    build_wheel(d, "mcpx-secstall", "1.0")
    yield idx
    idx.stop()
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def policy():
    d = tempfile.mkdtemp(prefix="mcpx-secpolicy-")
    yield write_policy(d, "sdist.json", allow_sdist=True)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module", params=USERS)
def server(request, index, policy):
    c = start_server(request.param, args=["--index-url", index.url, "--policy", policy])
    with open(os.path.join(c.workspace, PLANTED), "w") as f:
        f.write("secret-" + PLANTED)
    os.chmod(os.path.join(c.workspace, PLANTED), 0o644)
    yield c
    stop_server(c)


def install(c, package, timeout=300):
    r = c.call("install_package", {"package": package}, timeout=timeout)
    assert "structuredContent" in r, r
    return r, r["structuredContent"]


@pytest.fixture(scope="module")
def probe_report(server):
    """What the probe sdist's build code saw in the installer's jail (one install per server)."""
    r, s = install(server, "mcpx-secprobe")
    assert s["status"] == "error", s
    report = parse_probe(s["error"])
    if report is None:
        saved = os.path.join(server.state_dir, "pip-cache", "probe-mcpx-secprobe.json")
        raise AssertionError("no probe report in the error: %r (saved report exists: %s)\n%s" % (
            s["error"], os.path.exists(saved), server.stderr_text()[-3000:]))
    return report


def test_the_installer_cannot_reach_a_host_service(probe_report, canary):
    assert probe_report["can"] in ("ECONNREFUSED", "ENETUNREACH", "EHOSTUNREACH"), probe_report
    assert canary.seen() == [], canary.seen()


def test_the_installer_has_no_network_of_its_own(probe_report):
    assert probe_report["if"] == "lo", probe_report
    assert probe_report["rt"] == 0, probe_report      # no route anywhere but loopback
    assert probe_report["dns"] != "RESOLVED", probe_report


def test_the_proxy_refuses_hosts_the_operator_did_not_name(probe_report, canary):
    # a name not on the list, and the index's host on another port (host AND port must match)
    assert probe_report["px"] == "403B", probe_report
    assert probe_report["pc"] == "403B", probe_report
    assert canary.seen() == [], canary.seen()
    # the index itself is reachable through the proxy: the refusals are the policy's
    assert probe_report["pi"] == "200", probe_report


def test_the_proxy_logs_its_refusals(server, probe_report):
    # at the default log level (warn) the refusal is in the server's log
    assert wait_for(lambda: "example.com" in server.stderr_text() or
                    "refused" in server.stderr_text(), 10), server.stderr_text()[-3000:]


def test_the_installer_has_no_workspace(probe_report):
    assert probe_report["ws"] is False, probe_report
    assert not probe_report["wsr"].startswith("READ"), probe_report
    assert PLANTED not in str(probe_report.get("wsr", "")).replace("READ:", "")


def test_the_installer_is_not_host_root(server, probe_report):
    inside, outside, count = (int(x) for x in probe_report["map"].split()[:3])
    assert inside == probe_report["uid"] and count == 1, probe_report
    assert outside != 0, probe_report
    if server.user == "unprivileged":
        assert outside == NOBODY, probe_report


def installer_pids(c):
    return [p for p in descendants(c.proc.pid)
            if any(a.endswith(b"mcpx_install.py") for a in cmdline(p))]


def test_a_running_installer_has_no_host_root_and_no_capabilities(server, index):
    index.clear()
    rid = server.start("tools/call", {"name": "install_package",
                                      "arguments": {"package": "mcpx-secstall"}})
    try:
        assert wait_for(lambda: "/simple/mcpx-secstall/" in index.seen(), 120), index.seen()
        pids = installer_pids(server)
        assert pids, descendants(server.proc.pid)
        for pid in pids:
            st = status_fields(pid)
            if st is None:
                continue
            uids = [int(x) for x in st["Uid"].split()]
            gids = [int(x) for x in st["Gid"].split()]
            assert 0 not in uids and 0 not in gids, (pid, st["Uid"], st["Gid"])
            assert st["CapEff"] == "0000000000000000" and st["NoNewPrivs"] == "1", st
            assert st["Seccomp"] == "2", st
            if server.user == "unprivileged":
                assert uids == [NOBODY] * 4, uids
    finally:
        server.notify("notifications/cancelled", {"requestId": rid, "reason": "test over"})
    assert wait_for(lambda: not installer_pids(server), 30), installer_pids(server)


def test_kernels_see_the_overlay_read_only(server):
    r, s = install(server, "mcpx-secwheel")
    assert s["status"] in ("installed", "already_satisfied"), s
    code = ATTEMPT + r'''
import glob, mcpx_secwheel
site = glob.glob('/opt/mcpx/packages/lib/python3.*/site-packages')[0]
attempt('write', lambda: open(site + '/evil_planted.py', 'w').write('x = 1'))
attempt('append', lambda: open(mcpx_secwheel.__file__, 'a').write('x = 1'))
attempt('mkdir', lambda: os.mkdir(site + '/evil_dir'))
attempt('unlink', lambda: os.unlink(mcpx_secwheel.__file__))
attempt('rename', lambda: os.rename(os.path.dirname(mcpx_secwheel.__file__), site + '/moved'))
attempt('cfg', lambda: open('/opt/mcpx/packages/pyvenv.cfg', 'a').write('x'))
'''
    out = run_ok(server, code, session="ro")["stdout"]
    results = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    assert set(results) == {"write", "append", "mkdir", "unlink", "rename", "cfg"}, out
    for name, result in results.items():
        assert result in ("EROFS", "EACCES", "EPERM"), (name, result)
    site = [os.path.join(dp, "site-packages") for dp, dn, _ in
            os.walk(os.path.join(server.state_dir, "packages", "lib")) if "site-packages" in dn]
    assert site and not os.path.exists(os.path.join(site[0], "evil_planted.py"))
    assert os.path.isdir(os.path.join(site[0], "mcpx_secwheel"))


def test_the_pip_cache_is_in_the_state_dir_owned_like_the_overlay(server):
    r, s = install(server, "mcpx-secwheel")
    assert s["status"] in ("installed", "already_satisfied"), s
    cache = os.path.join(server.state_dir, "pip-cache")
    overlay = os.path.join(server.state_dir, "packages")
    owner = os.stat(overlay).st_uid
    if os.geteuid() == 0:
        assert owner != 0, owner
    if server.user == "unprivileged":
        assert owner == NOBODY
    entries = []
    for dp, dn, fn in os.walk(cache):
        entries += [os.path.join(dp, n) for n in dn + fn]
    assert entries, "pip wrote nothing to %s" % cache
    assert os.stat(cache).st_uid == owner
    wrong = [(p, os.lstat(p).st_uid) for p in entries if os.lstat(p).st_uid != owner]
    assert not wrong, wrong[:5]
    # nothing of pip's lands in the server's HOME or in the workspace
    assert not os.path.exists(os.path.join(server.workspace, ".cache")), \
        os.listdir(server.workspace)
