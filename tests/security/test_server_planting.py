"""Code one session plants in the shared workspace never runs in another session's kernel
(issue 8 finding 12).

A warm kernel imports the policy's preloads (numpy, pandas, matplotlib) before any session owns
it. With the workspace first on sys.path, a `cycler.py` planted by session A (matplotlib imports
cycler) ran in the kernel that B then received, before B sent anything; a planted
standard-library name (`csv.py`, which pandas imports; `wave.py`, which B imports later) did the
same. The planted modules here leave a line in a log in the workspace when they run. Every case
runs against a root server and an unprivileged one (uid 65534).
"""
import os

from probes.harness import module_server, run_ok

# cycler: a preload's dependency; csv: stdlib, imported by pandas while preloading; wave:
# stdlib, imported by nothing until a session does.
PLANTED = ("cycler", "csv", "wave")
LOG = "planted-ran.log"

PLANT = """
import os
code = '''import os
with open('/workspace/LOG', 'a') as f:
    f.write(__name__ + ' ' + str(os.getpid()) + chr(10))
PLANTED = True
'''.replace('LOG', LOG)
for name in PLANTED:
    with open('/workspace/%s.py' % name, 'w') as f:
        f.write(code)
with open('/workspace/mymodule.py', 'w') as f:
    f.write('def answer():\\n    return 42\\n')
print(sorted(os.listdir('/workspace')))
"""

CHECK = """
import sys
import cycler, csv, wave, mymodule
print([m.__file__.startswith('/workspace/') for m in (cycler, csv, wave)])
print([hasattr(m, 'PLANTED') for m in (cycler, csv, wave)])
print(mymodule.answer())
print(sys.path[-1])
"""


server, _fresh_sessions = module_server()


def log_lines(server):
    try:
        with open(os.path.join(server.workspace, LOG)) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def test_planted_modules_never_run_in_other_sessions_kernels(server):
    s = run_ok(server, "PLANTED = %r\nLOG = %r\n" % (PLANTED, LOG) + PLANT, session="planter")
    for name in PLANTED + ("mymodule",):
        assert os.path.isfile(os.path.join(server.workspace, name + ".py")), s["stdout"]
    # "b" may get a kernel that was warming up while the planter ran; the kernel "c" gets is
    # started after "b" took its own, so it certainly preloaded with the modules in place.
    for session in ("b", "c"):
        s = run_ok(server, "x = 1", session=session)
        assert log_lines(server) == [], "planted code ran in %r's kernel: %s" % (
            session, log_lines(server))
        s = run_ok(server, CHECK, session=session)
        lines = s["stdout"].splitlines()
        assert lines[0] == "[False, False, False]", (session, lines)  # the real modules
        assert lines[1] == "[False, False, False]", (session, lines)
        assert lines[2] == "42", (session, lines)  # a user's own module still imports
        assert lines[3] == "/workspace", (session, lines)  # the workspace comes last
    assert log_lines(server) == []
