"""Cell execution: state, last expression, tracebacks, interrupts, stdin, exit, output order."""

import pytest


def test_state_persists_across_cells(shared_kernel):
    assert shared_kernel.execute("counter = 41")["status"] == "ok"
    reply = shared_kernel.execute("counter += 1\ncounter")
    assert reply["status"] == "ok"
    assert reply["result"] == "42"


def test_last_expression_value(shared_kernel):
    reply = shared_kernel.execute("a = [1, 2]\nb = {'k': a}\nb")
    assert reply["result"] == "{'k': [1, 2]}"
    assert shared_kernel.execute("x = 3")["result"] is None
    assert shared_kernel.execute("None")["result"] is None
    assert shared_kernel.execute("print('p')")["result"] is None
    assert shared_kernel.execute("'s'")["result"] == "'s'"


def test_trailing_semicolon_hides_value(shared_kernel):
    assert shared_kernel.execute("1 + 1;")["result"] is None
    assert shared_kernel.execute("1 + 1  # a comment;")["result"] == "2"


def test_runs_as_main_and_pickles_cell_definitions(shared_kernel):
    reply = shared_kernel.execute(
        "import pickle\n"
        "class Point:\n"
        "    def __init__(self, x): self.x = x\n"
        "def double(v): return 2 * v\n"
        "p = pickle.loads(pickle.dumps(Point(4)))\n"
        "(__name__, pickle.loads(pickle.dumps(double))(p.x))")
    assert reply["status"] == "ok", reply["error"]
    assert reply["result"] == "('__main__', 8)"


def test_execution_count_from_request_names_the_cell(shared_kernel):
    reply = shared_kernel.execute("1/0", execution_count=77)
    assert reply["execution_count"] == 77
    assert 'File "<cell 77>", line 1' in reply["error"]["traceback"]
    assert shared_kernel.execute("0")["execution_count"] == 78


def test_dataframe_and_series_text(shared_kernel):
    pytest.importorskip("pandas")
    reply = shared_kernel.execute(
        "import pandas as pd\n"
        "df = pd.DataFrame({'name': ['a', 'b'], 'value': [1.5, 2.5]})\n"
        "df")
    assert reply["status"] == "ok", reply["error"]
    lines = reply["result"].splitlines()
    assert lines[0].split() == ["name", "value"]
    assert lines[1].split() == ["0", "a", "1.5"]
    assert lines[2].split() == ["1", "b", "2.5"]
    big = shared_kernel.execute("pd.DataFrame({'v': range(1000)})")["result"]
    assert "[1000 rows x 1 columns]" in big
    assert len(big.splitlines()) < 80
    series = shared_kernel.execute("pd.Series(range(1000), name='s')")["result"]
    assert "Name: s, Length: 1000, dtype: int64" in series


def test_huge_repr_is_capped(shared_kernel):
    reply = shared_kernel.execute("'x' * 1_000_000")
    assert reply["status"] == "ok"
    assert len(reply["result"]) <= 10_000
    assert "characters omitted" in reply["result"]
    small = shared_kernel.execute("list(range(10000))", limits={"max_result_chars": 500})
    assert len(small["result"]) <= 500
    assert small["result"].startswith("[0, 1, 2")
    assert small["result"].endswith("9998, 9999]")


def test_repr_that_is_not_valid_unicode_still_replies(shared_kernel):
    reply = shared_kernel.execute(
        "class W:\n"
        "    def __repr__(self): return 'a\\udc80b\\x00'\n"
        "W()")
    assert reply["status"] == "ok"
    assert reply["result"] == "a\\udc80b\x00"


def test_failing_repr_is_an_error_not_a_crash(shared_kernel):
    reply = shared_kernel.execute(
        "class Bad:\n"
        "    def __repr__(self):\n"
        "        raise ValueError('no repr')\n"
        "Bad()")
    assert reply["status"] == "error"
    assert reply["error"]["type"] == "ValueError"
    assert 'File "<cell' in reply["error"]["traceback"]
    assert shared_kernel.request("ping")["type"] == "pong"


def test_traceback_line_numbers_in_multiline_cell(shared_kernel):
    code = (
        "def outer(v):\n"           # 1
        "    return inner(v)\n"     # 2
        "\n"                        # 3
        "def inner(v):\n"           # 4
        "    return v['missing']\n"  # 5
        "\n"                        # 6
        "outer({})\n")              # 7
    reply = shared_kernel.execute(code, execution_count=200)
    err = reply["error"]
    assert reply["status"] == "error"
    assert err["type"] == "KeyError"
    assert err["message"] == "'missing'"
    assert err["lineno"] == 5
    tb = err["traceback"]
    assert tb.startswith("Traceback (most recent call last):\n")
    assert 'File "<cell 200>", line 7, in <module>\n    outer({})' in tb
    assert 'File "<cell 200>", line 2, in outer\n    return inner(v)' in tb
    assert 'File "<cell 200>", line 5, in inner\n    return v[\'missing\']' in tb
    assert tb.rstrip().endswith("KeyError: 'missing'")
    assert "mcpx_" not in tb and "kernel" not in tb


def test_traceback_shows_source_of_earlier_cells(shared_kernel):
    shared_kernel.execute("def explode():\n    x = 1\n    raise RuntimeError('boom')",
                          execution_count=300)
    reply = shared_kernel.execute("y = 0\nexplode()", execution_count=301)
    tb = reply["error"]["traceback"]
    assert 'File "<cell 301>", line 2, in <module>\n    explode()' in tb
    assert 'File "<cell 300>", line 3, in explode\n    raise RuntimeError(\'boom\')' in tb


def test_syntax_error_points_at_line(shared_kernel):
    reply = shared_kernel.execute("syn_a = 1\nb = 2\nif b\n    pass\n", execution_count=400)
    err = reply["error"]
    assert reply["status"] == "error"
    assert err["type"] == "SyntaxError"
    assert err["lineno"] == 3
    assert 'File "<cell 400>", line 3\n    if b\n        ^' in err["traceback"]
    assert "mcpx_" not in err["traceback"]
    # The cell did not run at all: a syntax error anywhere stops the whole cell.
    assert shared_kernel.execute("syn_a")["error"]["type"] == "NameError"


def test_compile_time_error_shows_source(shared_kernel):
    reply = shared_kernel.execute("x = 1\ndef f():\n    return 1\nreturn 2", execution_count=401)
    err = reply["error"]
    assert err["type"] == "SyntaxError"
    assert err["lineno"] == 4
    assert "'return' outside function" in err["message"]
    assert "    return 2" in err["traceback"]


def test_exception_keeps_state(shared_kernel):
    shared_kernel.execute("kept = 'before'")
    reply = shared_kernel.execute("partial = 1\nraise ValueError('x')\nnever = 1")
    assert reply["status"] == "error"
    assert shared_kernel.execute("(kept, partial)")["result"] == "('before', 1)"
    assert shared_kernel.execute("never")["error"]["type"] == "NameError"


def test_recursion_error_does_not_kill_kernel(shared_kernel):
    reply = shared_kernel.execute("def f(n): return f(n + 1)\nf(0)")
    assert reply["error"]["type"] == "RecursionError"
    assert "Previous line repeated" in reply["error"]["traceback"]
    assert len(reply["error"]["traceback"]) <= 20_000
    assert shared_kernel.execute("40 + 2")["result"] == "42"


def test_top_level_await(shared_kernel):
    reply = shared_kernel.execute(
        "import asyncio\nawait asyncio.sleep(0)\nawait asyncio.sleep(0, 7)")
    assert reply["status"] == "ok", reply["error"]
    assert reply["result"] == "7"


def test_print_from_thread(shared_kernel):
    reply = shared_kernel.execute(
        "import threading\n"
        "t = threading.Thread(target=lambda: print('from thread'))\n"
        "t.start(); t.join()")
    assert "from thread\n" in reply["stdout"]


def test_output_of_subprocess_and_c_code_is_in_pipes_before_reply(shared_kernel):
    # take_output() only reads what is already in the pipes once the reply has arrived.
    reply = shared_kernel.execute(
        "import ctypes, os, sys\n"
        "print('py-1')\n"
        "os.system('echo from-shell')\n"
        "ctypes.CDLL(None).printf(b'c-stdio-no-newline')\n"
        "print('err-line', file=sys.stderr)\n"
        "print('partial', end='')")
    assert reply["status"] == "ok", reply["error"]
    out = reply["stdout"]
    assert out.index("py-1\n") < out.index("from-shell\n")
    assert "c-stdio-no-newline" in out
    assert out.endswith("partial")
    assert reply["stderr"] == "err-line\n"


def test_large_output_while_server_drains(shared_kernel):
    reply = shared_kernel.execute("for i in range(20000): print('line', i)")
    assert reply["status"] == "ok"
    lines = reply["stdout"].splitlines()
    assert len(lines) == 20000 and lines[-1] == "line 19999"


def test_input_and_stdin_raise_clear_error(shared_kernel):
    reply = shared_kernel.execute("name = input('who? ')")
    err = reply["error"]
    assert err["type"] == "StdinNotSupportedError"
    assert "input() is not supported" in err["message"]
    assert "no interactive stdin" in err["message"]
    assert shared_kernel.execute("import sys\nsys.stdin.read()")["error"]["type"] == \
        "StdinNotSupportedError"
    reply = shared_kernel.execute(
        "try:\n    input()\nexcept EOFError:\n    caught = True\ncaught")
    assert reply["result"] == "True"


def test_sys_exit_is_reported_and_kernel_survives(shared_kernel):
    shared_kernel.execute("survivor = 'yes'")
    reply = shared_kernel.execute("import sys\nsys.exit(3)")
    assert reply["status"] == "error"
    assert reply["error"]["type"] == "SystemExit"
    assert "sys.exit(3)" in reply["error"]["message"]
    assert shared_kernel.execute("exit('bye')")["error"]["type"] == "SystemExit"
    ok = shared_kernel.execute("sys.exit(0)")
    assert ok["status"] == "ok"
    assert any("sys.exit(0)" in n for n in ok["notes"])
    assert shared_kernel.execute("survivor")["result"] == "'yes'"
    assert shared_kernel.proc.poll() is None


def test_forked_child_does_not_answer(shared_kernel):
    reply = shared_kernel.execute(
        "import os, sys\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    print('in child', flush=True)\n"
        "else:\n"
        "    os.waitpid(pid, 0)\n"
        "pid2 = os.fork()\n"
        "if pid2 == 0:\n"
        "    sys.exit(0)\n"
        "os.waitpid(pid2, 0)\n"
        "'parent'")
    assert reply["result"] == "'parent'"
    # A stray reply from a child would arrive here instead, with the previous id.
    assert shared_kernel.request("ping")["type"] == "pong"
    assert shared_kernel.execute("6 * 7")["result"] == "42"


def test_control_channel_not_inherited(shared_kernel):
    # os.system keeps every inheritable fd (subprocess.run would close them anyway).
    reply = shared_kernel.execute(
        "import os\n"
        "os.system('if [ -e /proc/self/fd/3 ]; then echo fd3-open; else echo fd3-closed; fi')\n"
        "'MCPX_KERNEL_FD' in os.environ")
    assert reply["stdout"] == "fd3-closed\n"
    assert reply["result"] == "False"


def _interrupt_running(kernel, code, marker):
    rid = kernel.start("execute", code=code)
    kernel.wait_stdout(marker)
    kernel.interrupt()
    reply = kernel.recv()
    assert reply["id"] == rid
    return reply


@pytest.mark.parametrize("body", [
    "n += 1; n == 1 and print('running', flush=True)",
    "print('running', flush=True); time.sleep(60)",
])
def test_sigint_interrupts_cell_and_keeps_state(kernel_factory, body):
    kernel = kernel_factory()
    kernel.execute("before = 'kept'")
    code = f"during, n = 1, 0\nimport time\nwhile True:\n    {body}\n"
    reply = _interrupt_running(kernel, code, "running")
    assert reply["status"] == "error"
    err = reply["error"]
    assert err["type"] == "KeyboardInterrupt"
    assert err["lineno"] in (3, 4)  # inside the loop
    assert f'File "<cell 2>", line {err["lineno"]}' in err["traceback"]
    assert "mcpx_" not in err["traceback"]
    assert kernel.execute("(before, during)")["result"] == "('kept', 1)"


def test_sigint_while_idle_is_harmless(kernel_factory):
    kernel = kernel_factory()
    kernel.execute("x = 'alive'")
    for _ in range(3):
        kernel.interrupt()
        assert kernel.request("ping")["type"] == "pong"
    assert kernel.execute("x")["result"] == "'alive'"
    assert kernel.proc.poll() is None


def test_sigint_idle_after_user_reset_the_handler(kernel_factory):
    kernel = kernel_factory()
    kernel.execute("import signal\nsignal.signal(signal.SIGINT, signal.SIG_DFL)")
    kernel.interrupt()
    assert kernel.request("ping")["type"] == "pong"
    reply = _interrupt_running(kernel, "print('go', flush=True)\nwhile True: pass", "go")
    assert reply["error"]["type"] == "KeyboardInterrupt"


def test_os_exit_ends_the_process(kernel_factory):
    kernel = kernel_factory()
    kernel.start("execute", code="import os\nos._exit(5)")
    with pytest.raises(EOFError):
        kernel.recv()
    assert kernel.proc.wait(timeout=30) == 5
