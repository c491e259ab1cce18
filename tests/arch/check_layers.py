#!/usr/bin/env python3
"""The module graph is the one docs/ARCHITECTURE.md draws: every `#include "mod/..."` in src/ and
sandbox/ goes to the module itself or to one the table below allows, so the graph has no cycle and
only tools and cli see MCP. Also: no product source file over 600 lines.

Run from anywhere: python3 tests/arch/check_layers.py [REPO]. Exit 1 with every violation listed.
With --graph, print the include graph as it is (module -> modules it includes) instead.
"""
import pathlib
import re
import sys

# module -> modules it may include (besides itself). Bottom to top.
ALLOWED = {
    "util": set(),
    "jail": {"util"},
    "zygote": {"util", "jail"},  # the zygote's CPython extension (sandbox/zygote)
    "workspace": {"util"},
    "session": {"util", "jail", "workspace"},
    "packages": {"util", "jail", "session"},
    "mcp": {"util"},
    "tools": {"util", "workspace", "session", "mcp"},
    "cli": {"util", "jail", "workspace", "session", "packages", "mcp", "tools"},
    "main": {"util", "cli"},
}
MAX_LINES = 600
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/', re.M)


def module_of(path, repo):
    rel = path.relative_to(repo).parts
    if rel[0] == "src" and len(rel) == 2:
        return "main"  # src/main.cc
    return rel[1]  # src/<mod>/..., sandbox/<mod>/...


def sources(repo):
    for top in ("src", "sandbox"):
        for p in sorted((repo / top).rglob("*")):
            if p.suffix in (".h", ".cc") and "tests" not in p.parts:
                yield p


def violations(repo):
    found = []
    for p in sources(repo):
        mod = module_of(p, repo)
        text = p.read_text()
        if mod not in ALLOWED:
            found.append(f"{p.relative_to(repo)}: module '{mod}' is not in the layer table")
            continue
        for dep in INCLUDE.findall(text):
            if dep != mod and dep not in ALLOWED[mod]:
                found.append(f"{p.relative_to(repo)}: {mod} may not include {dep}/ "
                             f"(allowed: {', '.join(sorted(ALLOWED[mod])) or 'nothing'})")
        lines = text.count("\n")
        if lines > MAX_LINES:
            found.append(f"{p.relative_to(repo)}: {lines} lines (a product file stays under "
                         f"{MAX_LINES}: split it along a concept)")
    return found


def graph(repo):
    edges = {}
    for p in sources(repo):
        mod = module_of(p, repo)
        deps = edges.setdefault(mod, set())
        deps.update(d for d in INCLUDE.findall(p.read_text()) if d != mod)
    return edges


def main():
    args = [a for a in sys.argv[1:] if a != "--graph"]
    repo = pathlib.Path(args[0] if args else __file__).resolve()
    if repo.is_file():
        repo = repo.parents[2]
    if "--graph" in sys.argv:
        for mod, deps in sorted(graph(repo).items()):
            print(f"{mod} -> {', '.join(sorted(deps)) or '(nothing)'}")
        return 0
    bad = violations(repo)
    for line in bad:
        print(line)
    if not bad:
        print(f"module graph ok: {sum(1 for _ in sources(repo))} files follow the layer table")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
