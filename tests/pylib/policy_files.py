"""Policies for tests: the shipped default, and variants of it written where any server can read
them (the unprivileged server runs as uid 65534)."""
import json
import os

SOURCE_DIR = os.environ.get("MCPX_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))


def default_policy():
    """policies/default.json of this checkout, as a dict."""
    with open(os.path.join(SOURCE_DIR, "policies", "default.json"), encoding="utf-8") as f:
        return json.load(f)


def write_policy(directory, filename, limits=None, **fields):
    """The default policy with `limits` merged into its limits and `fields` replacing top-level
    fields, written to directory/filename (the folder 0755, the file 0644); returns its path."""
    policy = default_policy()
    policy["limits"].update(limits or {})
    policy.update(fields)
    os.chmod(directory, 0o755)
    path = os.path.join(directory, filename)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(policy, f)
    os.chmod(path, 0o644)
    return path
