"""The package installer's entry point, run by the server in the installer's jail (never in a
kernel): pip installs one requirement into the overlay venv whose interpreter runs this script,
then this reports what changed on fd 3 as one JSON object.

    /opt/mcpx/packages/bin/python3 -s /opt/mcpx/kernel/mcpx_install.py REQUIREMENT [PIP_OPTION...]

pip's own output goes to stdout (the server shows its lines as progress). The report:
{"exit_code": N, "installed": [{"name", "version", "replaced", "modules"}],
 "satisfied": ["numpy 1.24.2"], "errors": ["ERROR: ..."]}
"""
import collections
import json
import os
import re
import subprocess
import sys
import sysconfig
from importlib import metadata

REPORT_FD = 3
REPORT_PATH = "/tmp/mcpx-pip-report.json"
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# The last line of a traceback pip shows from a failed build ("Exception: ...").
EXCEPTION_LINE = re.compile(r"^\s*(?:[A-Za-z_][\w.]*)?(?:Error|Exception|Exit)\b.*:\s.+")


def normalize(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def overlay_versions(site):
    versions = {}
    for dist in metadata.distributions(path=[site]):
        name = dist.metadata.get("Name")
        if name:
            versions[normalize(name)] = dist.version
    return versions


def top_level_modules(dist):
    text = dist.read_text("top_level.txt")
    names = set(text.split()) if text else set()
    for f in dist.files or ():
        parts = f.parts
        if not parts or parts[0] in ("..", "__pycache__") or parts[0].endswith((".dist-info", ".data")):
            continue
        first = parts[0]
        if len(parts) == 1:
            if first.endswith(".py"):
                first = first[:-3]
            elif ".so" in first or first.endswith(".pyd"):
                first = first.split(".")[0]
            else:
                continue
        names.add(first)
    return sorted(n for n in names if IDENTIFIER.match(n))[:50]


def requested_name(requirement):
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return match.group(1) if match else requirement


def error_lines(tail):
    errors = [line for line in tail if line.startswith("ERROR:")]
    # A build failure's cause sits in the subprocess output pip echoes, not in its ERROR lines.
    causes = [line.strip() for line in tail if EXCEPTION_LINE.match(line)]
    if causes:
        errors.insert(0, causes[-1])
    return [line[:400] for line in errors[:6]]


def main():
    requirement, pip_options = sys.argv[1], sys.argv[2:]
    site = sysconfig.get_paths()["purelib"]
    before = overlay_versions(site)
    cmd = [sys.executable, "-m", "pip", "install", *pip_options, "--report", REPORT_PATH,
           "--", requirement]
    tail = collections.deque(maxlen=200)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace")
    for line in proc.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        tail.append(line.rstrip("\n"))
    result = {"exit_code": proc.wait(), "installed": [], "satisfied": [], "errors": []}
    if result["exit_code"] != 0:
        result["errors"] = error_lines(tail)
    else:
        with open(REPORT_PATH, encoding="utf-8") as f:
            report = json.load(f)
        for item in report.get("install", []):
            name, version = item["metadata"]["name"], item["metadata"]["version"]
            try:
                modules = top_level_modules(metadata.distribution(name))
            except metadata.PackageNotFoundError:
                modules = []
            replaced = before.get(normalize(name), "")
            result["installed"].append({"name": name, "version": version,
                                        "replaced": "" if replaced == version else replaced,
                                        "modules": modules})
        if not result["installed"]:
            name = requested_name(requirement)
            try:
                result["satisfied"].append(f"{name} {metadata.version(name)}")
            except metadata.PackageNotFoundError:
                pass
    os.write(REPORT_FD, json.dumps(result).encode())


if __name__ == "__main__":
    main()
