"""`mcp-executor probe`: the shipped policies contain every probe; deliberately weakened policies
fail with exit 1 and name the probes that escaped. Each case runs as a root server and as an
unprivileged one (uid 65534 through setpriv): the jail takes different paths for the two.

A full corpus run costs tens of seconds, so the weakened policies run only the groups their
weakness concerns (--only), and the shipped ones run once per user and policy.
"""
import json
import os
import shutil
import subprocess
import tempfile

import pytest

import as_user  # tests/pylib, on sys.path through conftest.py
from policy_files import default_policy, write_policy

BIN = os.environ.get("MCPX_BIN")
NOBODY = 65534
USERS = ["root", "unprivileged"]
pytestmark = pytest.mark.skipif(not BIN, reason="MCPX_BIN is not set")


@pytest.fixture
def scratch():
    d = tempfile.mkdtemp(prefix="mcpx-probe-test-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def run_probe(user, scratch, *args, timeout=900):
    """(exit code, parsed JSON report, stderr) of `probe --json ARGS` as `user`."""
    state = os.path.join(scratch, "state-" + user)
    os.makedirs(state, exist_ok=True)
    uid = None if user == "root" else NOBODY
    if uid is not None:
        if os.geteuid() != 0:
            pytest.skip("the unprivileged case needs root to switch to uid 65534")
        os.chown(state, NOBODY, NOBODY)
    elif os.geteuid() != 0:
        pytest.skip("suite not running as root: the root-server case needs root")
    cmd, env = as_user.command(BIN, uid, ["probe", "--json", "--state-dir", state, *args])
    p = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, timeout=timeout,
                       cwd=scratch)
    report = json.loads(p.stdout.decode()) if p.stdout.strip() else None
    return p.returncode, report, p.stderr.decode(errors="replace")


def escaped(report):
    return sorted(p["name"] for p in report["probes"] if p["verdict"] == "ESCAPED")


def table_of(report):
    return "\n".join("%-34s %-9s %-9s %s" % (p["name"], p["observed"], p["verdict"], p["detail"])
                     for p in report["probes"])


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("policy", ["default", "strict"])
def test_shipped_policies_contain_every_probe(user, policy, scratch):
    code, report, err = run_probe(user, scratch, "--policy", policy)
    assert report is not None, err[-3000:]
    assert code == 0, "exit %d, escaped %s\n%s\n%s" % (code, escaped(report), table_of(report),
                                                        err[-2000:])
    s = report["summary"]
    assert report["complete"] and s["escaped"] == 0 and s["errors"] == 0
    assert s["tried"] >= 60, s
    # Skipped is not passed: say why for each, and keep them few on this machine.
    skipped = [p for p in report["probes"] if p["verdict"] == "skipped"]
    assert all(p["detail"] for p in skipped)
    assert len(skipped) <= 6, table_of(report)
    assert s["controls"] >= 2
    assert report["server_user"] == ("root" if user == "root" else "uid %d" % NOBODY)


def weakened(scratch, name, **fields):
    return write_policy(scratch, name + ".json", name=name, **fields)


ALLOW_ALL = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
             "syscalls": []}


@pytest.mark.parametrize("user", USERS)
def test_seccomp_allow_all_escapes(user, scratch):
    policy = weakened(scratch, "allow-all", seccomp_profile=ALLOW_ALL)
    code, report, err = run_probe(user, scratch, "--policy", policy, "--only", "seccomp.")
    assert report is not None, err[-3000:]
    names = escaped(report)
    assert code == 1, table_of(report)
    # The built-in filter still holds its list; what only the profile denied reaches the kernel.
    assert names and all(n.startswith("seccomp.") for n in names), names


@pytest.mark.parametrize("user", USERS)
def test_landlock_off_escapes(user, scratch):
    policy = weakened(scratch, "no-landlock", landlock=False)
    code, report, err = run_probe(user, scratch, "--policy", policy, "--only", "workspace.")
    assert report is not None, err[-3000:]
    assert code == 1, table_of(report)
    assert any(n.startswith("workspace.") for n in escaped(report)), table_of(report)


@pytest.mark.parametrize("user", USERS)
def test_writable_host_bind_escapes(user, scratch):
    canary = os.path.join(scratch, "canary-folder")
    os.makedirs(canary)
    os.chmod(canary, 0o777)
    bind = {"source": canary, "target": "/mnt/canary", "writable": True,
            "reason": "test: a deliberately weakened policy"}
    policy = weakened(scratch, "host-bind", extra_binds=[bind])
    code, report, err = run_probe(user, scratch, "--policy", policy, "--only", "fs.")
    assert report is not None, err[-3000:]
    assert code == 1, table_of(report)
    assert any(n.startswith("fs.") for n in escaped(report)), table_of(report)
    assert os.listdir(canary) == [], "the probe left files in the host folder"


def test_table_names_escapes_and_list_and_only(scratch):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    policy = weakened(scratch, "no-landlock", landlock=False)
    p = subprocess.run([BIN, "probe", "--policy", policy, "--only", "workspace.", "--state-dir",
                        os.path.join(scratch, "state")], capture_output=True, timeout=300)
    out = p.stdout.decode()
    assert p.returncode == 1
    assert "\nESCAPED: workspace." in out, out
    assert "policy no-landlock, root server:" in out
    listing = subprocess.run([BIN, "probe", "--list", "--json", "--state-dir",
                              os.path.join(scratch, "state")], capture_output=True, timeout=120)
    doc = json.loads(listing.stdout)
    assert listing.returncode == 0 and len(doc["probes"]) >= 60
    assert len({p["name"] for p in doc["probes"]}) == len(doc["probes"])
    none = subprocess.run([BIN, "probe", "--only", "no-such-probe", "--state-dir",
                           os.path.join(scratch, "state")], capture_output=True, timeout=120)
    assert none.returncode == 2 and b"no probe matches --only" in none.stdout


def test_a_run_that_cannot_happen_exits_2(scratch):
    bad = os.path.join(scratch, "bad.json")
    with open(bad, "w") as f:
        json.dump({**default_policy(), "landlock": "yes"}, f)
    p = subprocess.run([BIN, "probe", "--policy", bad, "--state-dir",
                        os.path.join(scratch, "state")], capture_output=True, timeout=60)
    assert p.returncode == 2 and p.stdout == b"", p
    assert b"landlock" in p.stderr
