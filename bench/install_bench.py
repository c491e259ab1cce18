#!/usr/bin/python3
"""install_package through the real server next to plain pip, from the same local index.

One small pure-Python wheel (`benchdep-b`), and a project with two dependencies (`benchpkg`, three
wheels), are served by a PEP 503 index on 127.0.0.1. Each run uses a fresh state dir (empty
overlay, empty pip cache) and times:

1. `install_package(NAME)` over stdio, index via `--index-url` (pip in its jail, through
   the server's proxy), call to reply;
2. the same with `--find-links` on the wheelhouse (offline: no proxy);
3. `python3 -m pip install` of the same requirement into a fresh `--system-site-packages` venv on
   the host from the same index, no jail (venv creation not counted);
4. the first cell that imports the package in a session started before the install.

Usage: MCPX_BIN=build/mcp-executor bench/install_bench.py [RUNS]
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "pylib"))
from mcp_client import McpClient  # noqa: E402
from wheelhouse import SimpleIndex, make_wheelhouse  # noqa: E402

SPECS = [("benchpkg", "1.0", ["benchdep-a>=1", "benchdep-b"]), ("benchdep-a", "1.2"),
         ("benchdep-b", "0.3")]


def via_server(args, state, project):
    with McpClient(args=args, state_dir=state) as c:
        c.call("execute_python", {"code": "x = 1"})
        t0 = time.perf_counter()
        r = c.call("install_package", {"package": project}, timeout=300)
        install_ms = (time.perf_counter() - t0) * 1000
        status = r["structuredContent"]["status"]
        t0 = time.perf_counter()
        c.call("execute_python", {"code": "import " + project.replace("-", "_")})
        import_ms = (time.perf_counter() - t0) * 1000
    return install_ms, import_ms, status


def via_pip(index_url, work, project):
    venv = os.path.join(work, "venv")
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", venv], check=True)
    t0 = time.perf_counter()
    subprocess.run([venv + "/bin/python3", "-m", "pip", "install", "-q", "--no-input",
                    "--disable-pip-version-check", "--only-binary", ":all:", "--no-cache-dir",
                    "--index-url", index_url, project], check=True,
                   env={"PATH": "/usr/bin:/bin", "HOME": work, "PIP_CONFIG_FILE": "/dev/null"})
    return (time.perf_counter() - t0) * 1000


def summary(name, values):
    print("%-44s p50 %8.1f ms   min %8.1f   max %8.1f" %
          (name, statistics.median(values), min(values), max(values)))


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    with tempfile.TemporaryDirectory() as top:
        os.chmod(top, 0o755)
        house = os.path.join(top, "wheels")
        make_wheelhouse(house, SPECS)
        os.chmod(house, 0o755)
        with SimpleIndex(house) as index:
            for project, what in (("benchdep-b", "one small wheel"),
                                  ("benchpkg", "3 small wheels (a project + 2 dependencies)")):
                rows = {"install_package, --index-url (proxy)": [],
                        "install_package, --find-links": [],
                        "pip install into a fresh venv, no jail": [],
                        "first import after the install": []}
                for i in range(runs):
                    for key, args in (("install_package, --index-url (proxy)",
                                       ["--index-url", index.url]),
                                      ("install_package, --find-links", ["--find-links", house])):
                        state = tempfile.mkdtemp(dir=top)
                        install_ms, import_ms, status = via_server(args, state, project)
                        if status != "installed":
                            sys.exit("run %d (%s): status %s" % (i, key, status))
                        rows[key].append(install_ms)
                        rows["first import after the install"].append(import_ms)
                    rows["pip install into a fresh venv, no jail"].append(
                        via_pip(index.url, tempfile.mkdtemp(dir=top), project))
                print("%s (%s), %d runs each" % (project, what, runs))
                for name, values in rows.items():
                    summary("  " + name, values)


if __name__ == "__main__":
    main()
