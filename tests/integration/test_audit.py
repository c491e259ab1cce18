"""`mcp-executor exec --audit`: the syscalls the policy's profile denies, reported after the run.

Runs every case as root (when the suite runs as root) and as an unprivileged server (uid 65534
through setpriv, workspace and state dir owned by it). adjtimex and io_setup are denied by the
default profile (ENOSYS) and not by the built-in filter, so the audit sees them; unshare is
denied by both and stays silent (docs/POLICIES.md "Auditing a workload").
"""
import json
import os
import shutil
import subprocess

import pytest

import as_user  # tests/pylib, on sys.path through conftest.py

BIN = os.environ.get("MCPX_BIN")
NOBODY = 65534
SYS_ADJTIMEX, SYS_IO_SETUP, SYS_UNSHARE = 159, 206, 272

SYSCALL = """import ctypes, errno
libc = ctypes.CDLL(None, use_errno=True)
def sc(nr, *args):
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    return 'ALLOWED' if r >= 0 else errno.errorcode.get(ctypes.get_errno(), '?')
"""


def line_of(code, text):
    """The number of the first line of `code` that holds `text`."""
    return next(i for i, line in enumerate(code.splitlines(), 1) if text in line)


@pytest.fixture(scope="module", params=["root", "unprivileged"])
def runner(request):
    if not BIN:
        pytest.skip("MCPX_BIN is not set (run through ctest)")
    if os.uname().machine != "x86_64":
        pytest.skip("the cells use x86_64 syscall numbers")
    uid, skip = as_user.exec_user(request.param, NOBODY)
    if skip:
        pytest.skip(skip)
    base, ws, state = as_user.exec_dirs("mcpx-audit-", uid)

    def run(*args, timeout=180):
        cmd, env = as_user.command(BIN, uid, ["exec", "--log-level", "error", "--workspace", ws,
                                              "--state-dir", state, *args])
        env.update(PATH=os.environ.get("PATH", "/usr/bin:/bin"), HOME=base)
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        assert proc.returncode != 125, f"exec failed: {proc.stderr}"
        return proc

    run.workspace = ws
    run.base = base
    run.uid = uid
    yield run
    shutil.rmtree(base, ignore_errors=True)


def split_report(stderr):
    """(the code's stderr, the report's lines): the report is what follows the last line that
    starts with 'audit: policy '."""
    lines = stderr.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.startswith("audit: policy ")]
    assert starts, f"no audit report in stderr:\n{stderr}"
    return "".join(lines[:starts[-1]]), [line.rstrip("\n") for line in lines[starts[-1]:]]


def row(report, name):
    """The report's row for syscall `name`, split into fields."""
    rows = [line.split() for line in report[1:] if line.split()[0] == name]
    assert len(rows) == 1, report
    return rows[0]


def test_denied_syscall_is_reported_and_still_gets_the_policys_errno(runner):
    code = SYSCALL + "\n".join([
        f"print('adjtimex', sc({SYS_ADJTIMEX}, 0, 0, 0))",
        f"print('adjtimex', sc({SYS_ADJTIMEX}, 0, 0, 0))",
        f"print('adjtimex', sc({SYS_ADJTIMEX}, 0, 0, 0))",
        f"print('io_setup', sc({SYS_IO_SETUP}, 10, 0, 0))",
        f"print('unshare', sc({SYS_UNSHARE}, 0))",
    ])
    proc = runner("--audit", "-c", code)
    assert proc.returncode == 0, proc.stderr
    # The code sees production's errnos: the profile's ENOSYS, also where both filters deny.
    assert proc.stdout == "adjtimex ENOSYS\n" * 3 + "io_setup ENOSYS\nunshare ENOSYS\n"
    code_err, report = split_report(proc.stderr)
    assert code_err == ""
    assert report[0] == ("audit: policy default denied 2 syscalls (4 calls); "
                         "everything else was allowed"), report
    assert row(report, "adjtimex")[:7] == ["adjtimex", "3", "ENOSYS", "args", "0x0,", "0x0,",
                                           "0x0"]
    assert row(report, "io_setup")[:5] == ["io_setup", "1", "ENOSYS", "args", "0xa,"]
    assert not [line for line in report if "unshare" in line], "the built-in's denials are silent"
    assert runner("-c", code).stdout == proc.stdout  # the plain run: the same errnos


def test_clean_cell_reports_nothing(runner):
    proc = runner("--audit", "-c", "import os, json\nprint(json.dumps(sorted(os.listdir('/'))))")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "audit: policy default denied nothing\n"
    assert "workspace" in proc.stdout


CELLS = {
    "normal": ("import sys, os\nprint('out', 1)\nprint('err', 2, file=sys.stderr)\n"
               "os.write(1, b'raw\\n')\nprint(__name__, sys.argv, repr(sys.path[0]), "
               "__file__ if '__file__' in dir() else None, sorted(globals()))"),
    "exception": "def f():\n    return {}['missing']\nprint('before')\nf()",
    "exit3": "import sys\nprint('bye')\nsys.exit(3)",
    "exit-message": "raise SystemExit('stopped here')",
    "chained": ("try:\n    1/0\nexcept ZeroDivisionError as e:\n"
                "    raise ValueError('wrapped') from e"),
    "keyboard-interrupt": "raise KeyboardInterrupt",
    "syntax-error": "print('never'\nx = ",
}


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_audit_run_matches_the_plain_run(runner, cell):
    plain = runner("-c", CELLS[cell])
    audited = runner("--audit", "-c", CELLS[cell])
    code_err, report = split_report(audited.stderr)
    assert (audited.stdout, code_err, audited.returncode) == (
        plain.stdout, plain.stderr, plain.returncode)
    assert report == ["audit: policy default denied nothing"]


def test_json_is_one_object_on_stdout(runner):
    code = SYSCALL + f"print('hi')\nimport sys\nprint('warn', file=sys.stderr)\nsc({SYS_ADJTIMEX}, 7, 0, 0)\nsys.exit(4)"
    proc = runner("--audit", "--json", "-c", code)
    assert proc.returncode == 4
    assert proc.stdout.endswith("\n") and proc.stdout.count("\n") == 1
    doc = json.loads(proc.stdout)
    assert set(doc) >= {"exit_code", "stdout", "stderr", "policy", "denied"}
    assert (doc["exit_code"], doc["stdout"], doc["stderr"], doc["policy"]) == (
        4, "hi\n", "warn\n", "default")
    where = f"<string>:{line_of(code, 'r = libc.syscall')}"  # the innermost line of the user's
    assert doc["denied"] == [{"syscall": "adjtimex", "nr": SYS_ADJTIMEX, "count": 1,
                              "errno": "ENOSYS", "args": ["0x7", "0x0", "0x0"],
                              "where": [where]}]
    assert "audit:" not in proc.stderr


def test_json_needs_audit(runner):
    cmd, env = as_user.command(BIN, runner.uid, ["exec", "--json", "-c", "pass"])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 125 and "--audit" in proc.stderr


def test_the_python_line_that_made_the_call(runner):
    # A module of the workspace is not the user's code: its calls are the calling line's.
    with open(os.path.join(runner.workspace, "audit_helper.py"), "w") as f:
        f.write(SYSCALL + f"def deep():\n    return sc({SYS_IO_SETUP}, 1, 0)\n")
    if runner.uid is not None:
        os.chown(os.path.join(runner.workspace, "audit_helper.py"), runner.uid, runner.uid)
    code = "\n".join([
        "import audit_helper, ctypes, threading",
        "libc = ctypes.CDLL(None)",
        "def f():",
        f"    return libc.syscall({SYS_ADJTIMEX}, 0)",
        "f()",
        "audit_helper.deep()  # main",
        "t = threading.Thread(target=audit_helper.deep)",
        "t.start(); t.join()",
        "def in_thread():",
        "    audit_helper.deep()  # thread",
        "t = threading.Thread(target=in_thread); t.start(); t.join()",
    ])
    proc = runner("--audit", "-c", code)
    assert proc.returncode == 0, proc.stderr
    _, report = split_report(proc.stderr)
    assert row(report, "adjtimex")[-1] == f"<string>:{line_of(code, 'return libc.syscall')}"
    io_setup = " ".join(row(report, "io_setup"))
    # A thread that runs no line of the user's has no line; one that does has its own.
    expected = (f"<string>:{line_of(code, '# main')}, <string>:{line_of(code, '# thread')}")
    assert row(report, "io_setup")[1] == "3", report
    assert io_setup.endswith(expected), report


def test_a_file_is_named_in_the_report(runner):
    script = os.path.join(runner.base, "job.py")  # outside the workspace: exec reads it
    with open(script, "w") as f:
        f.write(SYSCALL + f"sc({SYS_ADJTIMEX}, 0)\n")
    os.chmod(script, 0o644)
    proc = runner("--audit", script)
    assert proc.returncode == 0, proc.stderr
    _, report = split_report(proc.stderr)
    assert row(report, "adjtimex")[-1] == f"{script}:{line_of(SYSCALL, 'r = libc.syscall')}"


def test_no_listener_inside_the_sandbox(runner):
    # Every fd of the code's process and of a child it starts: none is the seccomp listener (or
    # the line page, which the wrapper closes once mapped).
    code = ("import os, subprocess\n"
            "def fds():\n"
            "    names = os.listdir('/proc/self/fd')  # its own fd is closed on return\n"
            "    return sorted((n, os.readlink('/proc/self/fd/' + n).split('[')[0]) for n in names "
            "if os.path.exists('/proc/self/fd/' + n))\n"
            "print(fds())\n"
            "print(subprocess.run(['ls', '-l', '/proc/self/fd/'], capture_output=True, "
            "text=True).stdout.count('seccomp'))")
    audited = runner("--audit", "-c", code)
    assert audited.returncode == 0, audited.stderr
    assert "seccomp" not in audited.stdout.splitlines()[0]
    assert "memfd" not in audited.stdout
    assert audited.stdout.splitlines()[1] == "0"
    assert audited.stdout == runner("-c", code).stdout
