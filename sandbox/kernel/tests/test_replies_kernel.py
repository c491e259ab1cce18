"""Replies read by a model: tracebacks keep the user's frames and the frame that raised and fold
library frames into one line; a value that only echoes a plot is not repeated as text."""

import os
import re

import pytest

from conftest import KERNEL_DIR, Kernel


def _error(kernel, code):
    reply = kernel.execute(code)
    assert reply["status"] == "error", reply
    return reply["error"]


def _frames(tb):
    return re.findall(r'^\s*File "([^"]+)", line (\d+)', tb, re.M)


def _assert_no_kernel_frame(tb):
    assert "mcpx_" not in tb and KERNEL_DIR not in tb, tb


def test_pandas_missing_column_is_short_and_names_column_and_line(shared_kernel):
    pytest.importorskip("pandas")
    err = _error(shared_kernel, "import pandas as pd\ndf = pd.DataFrame({'a': [1]})\ndf['nope']")
    tb = err["traceback"]
    assert len(tb) <= 800, tb
    assert "'nope'" in tb and err["message"] == "'nope'"
    assert err["lineno"] == 3
    assert re.search(r'File "<cell \d+>", line 3, in <module>\n    df\[\'nope\'\]', tb), tb
    # The library frames between the cell and the raise are one line naming pandas.
    assert re.search(r"^  \.\.\. \d+ frames? in pandas \.\.\.$", tb, re.M), tb
    assert "raise KeyError(key) from err" in tb  # the frame that raised
    _assert_no_kernel_frame(tb)


def test_syntax_error_is_only_the_caret_block(shared_kernel):
    err = _error(shared_kernel, "x = 1\nif x\n    pass")
    tb = err["traceback"]
    assert re.fullmatch(r'  File "<cell \d+>", line 2\n    if x\n        \^\n'
                        r"SyntaxError: expected ':'\n", tb), tb
    assert err["lineno"] == 2
    assert "ast.py" not in tb and "Traceback" not in tb


def test_user_function_keeps_both_user_frames(shared_kernel):
    err = _error(shared_kernel, "def f(n):\n    return 10 / n\n\nf(0)")
    tb = err["traceback"]
    assert [line for _, line in _frames(tb)] == ["4", "2"], tb
    assert "    f(0)\n" in tb and "    return 10 / n\n" in tb
    assert tb.endswith("ZeroDivisionError: division by zero\n")
    assert err["lineno"] == 2 and err["message"] == "division by zero"


def test_chained_library_error_keeps_both_messages(shared_kernel):
    err = _error(shared_kernel,
                 "import json\n"
                 "def load(text):\n"
                 "    try:\n"
                 "        return json.loads(text)\n"
                 "    except ValueError as e:\n"
                 "        raise ValueError('config unreadable') from e\n"
                 "load('{bad')")
    tb = err["traceback"]
    assert "json.decoder.JSONDecodeError: Expecting property name" in tb
    assert "The above exception was the direct cause" in tb
    assert tb.endswith("ValueError: config unreadable\n")
    cause, effect = tb.split("The above exception was the direct cause")
    # The cause: its user frames, one folded line for json, then the frame that raised.
    assert "    return json.loads(text)\n" in cause
    assert re.search(r"^  \.\.\. \d+ frames? in json \.\.\.$", cause, re.M), cause
    assert "json/decoder.py" in cause
    assert "json/__init__.py" not in cause
    assert [line for _, line in _frames(effect)] == ["7", "6"], effect
    assert err["message"] == "config unreadable" and err["lineno"] == 6


def test_recursion_error_stays_short(shared_kernel):
    err = _error(shared_kernel, "def r(n):\n    return r(n + 1)\nr(0)")
    assert "Previous line repeated" in err["traceback"]
    assert len(err["traceback"]) <= 1_000
    # Mutual recursion has no repeated line: the middle of the chain is folded.
    err = _error(shared_kernel, "def f(n): return g(n)\ndef g(n): return f(n)\nf(0)")
    tb = err["traceback"]
    assert re.search(r"^  \.\.\. \d+ frames in <cell \d+> \.\.\.$", tb, re.M), tb
    assert len(tb) <= 1_500, tb
    assert tb.endswith("RecursionError: maximum recursion depth exceeded\n")


def test_numpy_error(shared_kernel):
    pytest.importorskip("numpy")
    err = _error(shared_kernel, "import numpy as np\na = np.zeros(3)\na.reshape(2, 2)")
    tb = err["traceback"]
    assert tb.endswith("ValueError: cannot reshape array of size 3 into shape (2,2)\n")
    assert err["lineno"] == 3
    err = _error(shared_kernel, "np.linalg.inv(np.zeros((2, 2)))")
    tb = err["traceback"]
    assert "Singular matrix" in tb and len(tb) <= 800, tb
    assert re.search(r"^  \.\.\. \d+ frames? in numpy \.\.\.$", tb, re.M), tb
    _assert_no_kernel_frame(tb)


def test_workspace_module_frame_is_kept(kernel_factory, tmp_path):
    (tmp_path / "helpers.py").write_text("import json\n\ndef ratio(a, b):\n    return a / b\n\n"
                                         "def parse(text):\n    return json.loads(text)\n")
    kernel = kernel_factory(workdir=tmp_path)
    err = _error(kernel, "import helpers\nhelpers.ratio(1, 0)")
    frames = _frames(err["traceback"])
    assert frames[-1] == (os.path.join(str(tmp_path), "helpers.py"), "4"), err["traceback"]
    assert err["lineno"] == 2
    # A workspace module's frame stays even between library frames and the cell.
    tb = _error(kernel, "helpers.parse('{')")["traceback"]
    names = [name for name, _ in _frames(tb)]
    assert names[0].startswith("<cell ") and names[1].endswith("helpers.py"), tb
    assert names[-1].endswith("json/decoder.py"), tb


def test_library_frames_around_a_user_callback_fold_on_each_side(shared_kernel):
    pytest.importorskip("pandas")
    err = _error(shared_kernel,
                 "import pandas as pd\n"
                 "def pick(row):\n"
                 "    return 1 / 0\n"
                 "pd.DataFrame({'a': [1]}).apply(pick, axis=1)")
    tb = err["traceback"]
    assert "    return 1 / 0\n" in tb and "apply(pick, axis=1)" in tb
    assert re.search(r"^  \.\.\. \d+ frames? in pandas \.\.\.$", tb, re.M), tb
    assert err["lineno"] == 3
    assert len(tb) <= 800, tb


# Values that only echo a plot -------------------------------------------------------------

@pytest.fixture(scope="module")
def plot_kernel(tmp_path_factory):
    pytest.importorskip("matplotlib")
    k = Kernel(tmp_path_factory.mktemp("ws"), preload="matplotlib")
    k.execute("import matplotlib.pyplot as plt")
    yield k
    k.close()


@pytest.mark.parametrize("code", [
    "plt.plot([1, 2])",
    "plt.plot([1, 2]); ",
    "plt.plot([1, 2])\nplt.title('x')",
    "fig, ax = plt.subplots()\nax",
    "plt.subplots(2, 2)",
    "plt.bar([1, 2], [3, 4])",
    "plt.plot([1, 2])\nplt.legend(['a'])",
    "plt.imshow([[1, 2], [3, 4]])\nplt.colorbar()",
    "line, = plt.plot([1, 2])\nplt.show()\nline",  # shown, then closed
])
def test_plot_echo_is_not_a_result(plot_kernel, code):
    reply = plot_kernel.execute(code)
    assert reply["status"] == "ok", reply["error"]
    assert reply["result"] is None, reply["result"]
    assert len(reply["images"]) == 1
    assert reply["stdout"] == ""


def test_dataframe_plot_gives_one_image_and_no_result(plot_kernel):
    pytest.importorskip("pandas")
    reply = plot_kernel.execute("import pandas as pd\npd.DataFrame({'v': [1, 3, 2]}).plot()")
    assert reply["status"] == "ok", reply["error"]
    assert reply["result"] is None
    assert len(reply["images"]) == 1
    assert reply["stdout"] == ""


def test_artist_without_a_plot_is_still_shown(plot_kernel):
    reply = plot_kernel.execute("from matplotlib.text import Text\nText(0, 0, 'alone')")
    assert reply["result"] == "Text(0, 0, 'alone')"
    assert reply["images"] == []
    # Other values after a plot are shown as before.
    reply = plot_kernel.execute("plt.plot([1, 2])\nlen([1, 2])")
    assert reply["result"] == "2" and len(reply["images"]) == 1
    reply = plot_kernel.execute("plt.plot([1, 2])\n[]")
    assert reply["result"] == "[]"


def test_display_figure_prints_nothing(plot_kernel):
    reply = plot_kernel.execute("fig, ax = plt.subplots()\nax.plot([1, 2])\ndisplay(fig)\n"
                                "print('after')")
    assert reply["status"] == "ok", reply["error"]
    assert len(reply["images"]) == 1
    assert reply["stdout"] == "after\n"
    assert reply["result"] is None


def test_check_does_not_import_matplotlib(shared_kernel):
    assert shared_kernel.execute("(1, [2])")["result"] == "(1, [2])"
    reply = shared_kernel.execute("import sys\n"
                                  "[m for m in sys.modules if m.startswith('matplotlib')]")
    assert reply["result"] == "[]"
