"""Packages in a running kernel: new installs become importable, imports are reported to the
server, and `%pip` line magics (see mcpx_magics) install through the server.

The sandbox has no network and a read-only environment, so pip never runs here: `%pip install X`
sends an `install` frame on fd 3 and blocks until the server's `install_result` answer (the
server runs pip in its own jail and writes into the package overlay). See PROTOCOL.md §3.4.
"""

import importlib
import os
import re
import select
import shlex
import site
import sys
import sysconfig
import threading

import mcpx_protocol

MAX_REQUIREMENT_BYTES = 1024
MAX_IMPORTS_PER_FRAME = 2000
_MAX_MODULE_NAME_CHARS = 100
_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_KERNEL_DIR = os.path.dirname(os.path.abspath(__file__))

_HOW_TO_INSTALL = ("packages are installed by the server: use `%pip install NAME` in a cell or "
                   "the install_package tool")
_SOURCES = "the operator chooses where packages come from (index, mirror), not the cell"
_ALLOWED_OPTIONS = "-U/--upgrade and -q/--quiet"

_active = None


def line_magic(args):
    """`%pip ARGS` in a cell. Never raises for a refused or failed install (as in notebooks, a
    failed %pip does not stop the cell): messages go to stderr."""
    try:
        words = shlex.split(args, comments=True)
    except ValueError as e:
        return _refuse(f"cannot read the pip command: {e}")
    if not words:
        return _refuse("usage: %pip install [-U] NAME [NAME...] | %pip list | %pip show NAME "
                       "| %pip freeze")
    command, rest = words[0], words[1:]
    if command == "install":
        return _install_command(rest)
    if command == "list":
        return _list()
    if command == "freeze":
        return _freeze()
    if command == "show":
        return _show(rest)
    if command == "uninstall":
        return _refuse("uninstalling is not supported: the package overlay is shared by every "
                       "session and managed by the server")
    return _refuse(f"`pip {command}` is not available in the sandbox (no network, read-only "
                   f"environment); {_HOW_TO_INSTALL}; `%pip list`, `%pip show` and `%pip freeze` "
                   "read what is installed")


def _refuse(message):
    print(f"ERROR: {message}", file=sys.stderr)


def _install_command(words):
    upgrade = False
    requirements = []
    options_done = False
    for word in words:
        if options_done or not word.startswith("-") or word == "-":
            requirements.append(word)
        elif word == "--":
            options_done = True
        elif word in ("--upgrade", "--quiet") or re.fullmatch(r"-[Uq]+", word):
            # -q is accepted and changes nothing: the server's answer is one short paragraph.
            if word == "--upgrade" or (word != "--quiet" and "U" in word):
                upgrade = True
        else:
            return _refuse(f"pip option {word!r} is not supported: {_SOURCES}; only "
                           f"{_ALLOWED_OPTIONS} are accepted")
    if not requirements:
        return _refuse("%pip install needs at least one package name")
    for requirement in requirements:
        if not requirement.strip():
            # The server takes an empty requirement as a broken kernel.
            return _refuse("an empty requirement")
        size = len(requirement.encode("utf-8", "backslashreplace"))
        if size > MAX_REQUIREMENT_BYTES:
            return _refuse(f"requirement of {size} bytes is longer than the limit of "
                           f"{MAX_REQUIREMENT_BYTES}")
    if _active is None:
        return _refuse("%pip install is only available in a kernel run by the server")
    if not _active.can_wait():
        # Another reader of fd 3 (a thread, a forked child) would take the request loop's frames.
        return _refuse("%pip install runs only in the cell itself, not in a thread or a forked "
                       "process")
    for requirement in requirements:
        if not _active.install(requirement, upgrade):
            return None
    return None


def _distributions():
    """One distribution per normalized name, the first on sys.path (the one that imports)."""
    # Imported on first use: importlib.metadata pulls in email, zipfile and csv (~10 ms), a cost
    # no kernel should pay at startup for a command it rarely runs.
    from importlib import metadata
    found = {}
    for dist in metadata.distributions():
        try:
            name = dist.metadata["Name"]
        except Exception:
            continue
        if name and _normalize(name) not in found:
            found[_normalize(name)] = dist
    return found


def _normalize(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def _list():
    rows = sorted(((d.metadata["Name"], d.version or "") for d in _distributions().values()),
                  key=lambda r: r[0].lower())
    width = max([len("Package")] + [len(n) for n, _ in rows])
    vwidth = max([len("Version")] + [len(v) for _, v in rows])
    print(f"{'Package':<{width}} {'Version':<{vwidth}}".rstrip())
    print(f"{'-' * width} {'-' * vwidth}")
    for name, version in rows:
        print(f"{name:<{width}} {version}")


def _freeze():
    for dist in sorted(_distributions().values(), key=lambda d: d.metadata["Name"].lower()):
        print(f"{dist.metadata['Name']}=={dist.version}")


def _requirement_name(text):
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", text)
    return _normalize(m.group(1)) if m else ""


def _show(names):
    if not names:
        return _refuse("%pip show needs at least one package name")
    dists = _distributions()
    missing = []
    first = True
    for name in names:
        dist = dists.get(_normalize(name))
        if dist is None:
            missing.append(name)
            continue
        if not first:
            print("---")
        first = False
        meta = dist.metadata
        requires = sorted({_requirement_name(r).strip() for r in (dist.requires or [])
                           if ";" not in r or "extra" not in r.split(";", 1)[1]} - {""})
        key = _normalize(meta["Name"])
        required_by = sorted(
            other.metadata["Name"] for other in dists.values()
            if any(_requirement_name(r) == key for r in (other.requires or [])))
        location = ""
        try:
            location = str(dist.locate_file(""))
        except Exception:
            pass
        for field, value in (("Name", meta["Name"]), ("Version", dist.version),
                             ("Summary", meta.get("Summary") or ""),
                             ("Home-page", meta.get("Home-page") or ""),
                             ("Author", meta.get("Author") or ""),
                             ("License", meta.get("License") or ""),
                             ("Location", location),
                             ("Requires", ", ".join(requires)),
                             ("Required-by", ", ".join(required_by))):
            print(f"{field}: {value}")
    if missing:
        print(f"WARNING: Package(s) not found: {', '.join(missing)}", file=sys.stderr)


def _overlay_site():
    override = os.environ.get("MCPX_PACKAGES_SITE")
    return os.path.abspath(override or sysconfig.get_paths()["purelib"])


def _pth_files(directory):
    try:
        return {n for n in os.listdir(directory) if n.endswith(".pth") and not n.startswith(".")}
    except OSError:
        return set()


class Packages:
    """The kernel's side of package installs, one per kernel."""

    def __init__(self, inbox, send, interrupts):
        self.inbox = inbox
        self.send = send
        self.interrupts = interrupts
        self.request_id = None  # the execute request whose cell runs now
        self.generation = 0
        self.site = _overlay_site()
        # site.py processed the overlay's .pth files at startup when it is on sys.path.
        self._pth_done = _pth_files(self.site) if self.site in sys.path else set()
        self._unanswered = 0
        self._pid = os.getpid()
        self._modules_seen = set()
        self._modules_count = -1

    def sync(self, generation):
        """Before a cell: packages installed since the last cell (any session's) become
        importable. An unchanged generation costs one comparison."""
        if generation is None or generation == self.generation:
            return
        self.generation = generation
        self.refresh()

    def refresh(self):
        """Forgets cached directory listings and processes the overlay's new .pth files."""
        importlib.invalidate_caches()
        before = set(sys.path)
        if self.site not in before:
            if not os.path.isdir(self.site):
                return
            at = sys.path.index(_KERNEL_DIR) if _KERNEL_DIR in sys.path else len(sys.path)
            sys.path.insert(at, self.site)
            before.add(self.site)
        new = sorted(_pth_files(self.site) - self._pth_done)
        if not new:
            return
        for name in new:
            self._pth_done.add(name)
            # addpackage skips directories already on sys.path and reports a broken line on
            # stderr instead of raising.
            site.addpackage(self.site, name, None)
        # Directories named by .pth files go right after the overlay, ahead of the kernel's own
        # folder and the workspace (a planted module must not shadow a package).
        added = [p for p in sys.path if p not in before]
        if added:
            kept = [p for p in sys.path if p in before]
            at = kept.index(self.site) + 1 if self.site in kept else len(kept)
            sys.path[:] = kept[:at] + added + kept[at:]
        importlib.invalidate_caches()

    def new_imports(self):
        """Top-level module names new in sys.modules since the last call, at most
        MAX_IMPORTS_PER_FRAME (the rest come next time). Cheap when nothing was imported."""
        count = len(sys.modules)
        if count == self._modules_count:
            return []
        names = {name.partition(".")[0] for name in list(sys.modules)}
        fresh = sorted(n for n in names - self._modules_seen
                       if len(n) <= _MAX_MODULE_NAME_CHARS and _MODULE_NAME.match(n))
        if len(fresh) > MAX_IMPORTS_PER_FRAME:
            fresh = fresh[:MAX_IMPORTS_PER_FRAME]
            count = -1  # scan again next time
        self._modules_seen.update(fresh)
        self._modules_count = count
        return fresh

    def stray_answer(self):
        """An install_result reached the request loop: the answer to an install whose cell was
        interrupted while waiting. Nobody wants it any more."""
        if self._unanswered > 0:
            self._unanswered -= 1

    def can_wait(self):
        return (self.request_id is not None and os.getpid() == self._pid and
                threading.current_thread() is threading.main_thread())

    def install(self, requirement, upgrade):
        """Asks the server to install one requirement and waits for its answer, which is printed
        (stdout when it worked, stderr when not). Returns whether it worked."""
        if self._unanswered:
            # One install outstanding at most: the server answers a second one at once ("already
            # running"), ahead of the late answer, so answers would no longer match by order.
            print("Waiting for an interrupted %pip install to finish first.", file=sys.stderr)
            self._wait_answer()
        with self.interrupts.deferred():
            self.send({"type": "install", "id": self.request_id, "requirement": requirement,
                       "upgrade": bool(upgrade)})
            self._unanswered += 1
        answer = self._wait_answer()
        ok = answer.get("ok") is True
        text = answer.get("text")
        text = text if isinstance(text, str) else ""
        if ok:
            print(text or f"Installed {requirement}.")
            # The package imports at once, in this very cell.
            self.refresh()
        else:
            print(f"ERROR: {text or 'the install failed'}", file=sys.stderr)
        return ok

    def _wait_answer(self):
        """Blocks until no answer is owed any more and returns the last one; requests are kept
        for the request loop. Interruptible only while nothing of a frame has been read."""
        poller = select.poll()
        poller.register(self.inbox.fd, select.POLLIN)
        while True:
            poller.poll()
            with self.interrupts.deferred():
                try:
                    message = mcpx_protocol.read_message(self.inbox.fd)
                except mcpx_protocol.FrameError as e:
                    self.inbox.keep(e)
                    continue
                if message.get("op") != "install_result":
                    self.inbox.keep(message)
                    continue
                self._unanswered -= 1
                if self._unanswered <= 0:
                    self._unanswered = 0
                    return message


def activate(packages):
    """Makes `packages` the one line_magic() installs through."""
    global _active
    _active = packages
