"""Stands in for pip inside a kernel (PYTHONPATH=/opt/mcpx/kernel/pipshim puts it first).

`python3 -m pip ...` prints why pip cannot run and exits 1. `import pip` works, so code that only
checks for pip does not break, and `pip.main([...])` prints the same explanation and returns 1.
The installer runs without this PYTHONPATH and gets the real pip.
"""

import sys

EXPLANATION = (
    "pip cannot run here: the sandbox has no network and a read-only Python environment.\n"
    "Install packages with `%pip install NAME` in a cell (or the install_package tool): the "
    "server\ninstalls them and they import at once in every session. `%pip list`, `%pip show "
    "NAME` and\n`%pip freeze` in a cell show what is installed.\n")


def main(args=None):
    del args
    sys.stderr.write(EXPLANATION)
    sys.stderr.flush()
    return 1
