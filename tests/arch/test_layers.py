"""The layer check itself: it passes on this repository and catches what it is there to catch."""
import pathlib

import check_layers

REPO = pathlib.Path(__file__).resolve().parents[2]


def make_tree(tmp_path, files):
    for rel, text in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return tmp_path


def test_this_repository_follows_the_layer_table():
    assert check_layers.violations(REPO) == []


def test_an_upward_include_is_reported(tmp_path):
    repo = make_tree(tmp_path, {
        "src/workspace/resources.h": '#include "mcp/resources.h"\n',
        "src/mcp/resources.h": '#include "util/status.h"\n',
    })
    found = check_layers.violations(repo)
    assert len(found) == 1
    assert "src/workspace/resources.h: workspace may not include mcp/" in found[0]


def test_a_cycle_between_two_modules_is_reported(tmp_path):
    repo = make_tree(tmp_path, {
        "src/session/manager.h": '#include "tools/tool.h"\n',
        "src/tools/session_tools.h": '#include "session/manager.h"\n',
    })
    assert [v.split(":")[0] for v in check_layers.violations(repo)] == ["src/session/manager.h"]


def test_the_jail_may_use_only_util(tmp_path):
    repo = make_tree(tmp_path, {"sandbox/jail/jail.cc": '#include "session/kernel.h"\n'})
    assert "jail may not include session/" in check_layers.violations(repo)[0]


def test_an_unknown_module_and_a_long_file_are_reported(tmp_path):
    repo = make_tree(tmp_path, {
        "src/newthing/a.cc": "\n",
        "src/util/big.cc": "x\n" * (check_layers.MAX_LINES + 1),
    })
    found = check_layers.violations(repo)
    assert any("module 'newthing' is not in the layer table" in v for v in found)
    assert any("src/util/big.cc: 601 lines" in v for v in found)
