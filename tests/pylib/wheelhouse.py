"""Packages for the install_package tests, made here without network: pure-Python wheels, sdists
whose setup.py is a probe, a wheelhouse folder (--find-links), a PEP 503 simple index served over
HTTP on 127.0.0.1 (--index-url), and a canary server that must never be reached.

Wheels are written by hand (the wheel format is a zip with a dist-info folder), so a test never
needs a build backend, and each one is byte-for-byte what the test asked for.
"""
import base64
import hashlib
import http.server
import io
import json
import os
import re
import socket
import tarfile
import threading
import time
import zipfile

# A probe's results come back in the installer's error text (mcpx_install.py keeps the last
# exception-like line of a failed build), as `RuntimeError: PROBE:{json}`; the report caps a line
# at 400 characters and the error at 600, so probes keep their keys short.
PROBE_MARK = "PROBE:"
PROBE_RE = re.compile(re.escape(PROBE_MARK) + r"(\{.*?\})(?=$|\s|\")")


def normalize(name):
    """PEP 503 project name normalization."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _dist_name(name):
    """The name as it appears in wheel and dist-info file names."""
    return re.sub(r"[-_.]+", "_", name)


def _record_hash(data):
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def build_wheel(directory, name, version, requires=(), modules=None, extra_files=None):
    """Writes NAME-VERSION-py3-none-any.whl into `directory` and returns its path.

    `modules`: {relative path: source} (default: NAME/__init__.py with __version__);
    `requires`: Requires-Dist lines ("numpy", "dep>=1.0"); `extra_files`: more
    {relative path: bytes or str} added as they are."""
    os.makedirs(directory, exist_ok=True)
    module = _dist_name(name).lower()
    if modules is None:
        modules = {module + "/__init__.py": "__version__ = %r\n" % version}
    info = "%s-%s.dist-info" % (_dist_name(name), version)
    files = {}
    for path, source in list(modules.items()) + list((extra_files or {}).items()):
        files[path] = source.encode() if isinstance(source, str) else source
    top_level = sorted({p.split("/", 1)[0].removesuffix(".py") for p in modules})
    metadata = ["Metadata-Version: 2.1", "Name: " + name, "Version: " + version,
                "Summary: test package " + name]
    metadata += ["Requires-Dist: " + r for r in requires]
    files[info + "/METADATA"] = ("\n".join(metadata) + "\n\n").encode()
    files[info + "/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: mcpx-tests (0)\n"
                              b"Root-Is-Purelib: true\nTag: py3-none-any\n\n")
    files[info + "/top_level.txt"] = ("\n".join(top_level) + "\n").encode()
    record = "".join("%s,%s,%d\n" % (p, _record_hash(d), len(d)) for p, d in files.items())
    record += info + "/RECORD,,\n"
    files[info + "/RECORD"] = record.encode()
    path = os.path.join(directory, "%s-%s-py3-none-any.whl" % (_dist_name(name), version))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for p, d in files.items():
            # A fixed date: the same inputs give the same bytes.
            z.writestr(zipfile.ZipInfo(p, date_time=(2020, 1, 1, 0, 0, 0)), d)
    return path


# The build backend of a probe sdist (in the sdist, named by pyproject.toml with backend-path
# "." and no build requirements, so pip neither needs setuptools nor asks the index for anything
# to build it). It runs only if pip builds the sdist: on import it collects facts about where it
# runs into P (the test's snippet adds its own), writes them to the pip cache when it can (the
# state dir's pip-cache on the host), prints them, and in mode "error" fails with them in the
# exception's message, which the installer's error text keeps. In mode "ok" it builds a wheel.
_BACKEND_BODY = '''
import base64, hashlib, json, os, sys, zipfile
P = {"uid": os.getuid()}
try:
    P["map"] = " ".join(open("/proc/self/uid_map").read().split())
except OSError as e:
    P["map"] = "E" + str(e.errno)
P["ws"] = os.path.exists("/workspace")
exec(PROBE)
LINE = MARK + json.dumps(P, separators=(",", ":"), sort_keys=True)
print(LINE, flush=True)
try:
    with open("/opt/mcpx/pip-cache/probe-" + NAME + ".json", "w") as f:
        json.dump(P, f)
except OSError:
    pass
if FAIL:
    raise RuntimeError(LINE)


def get_requires_for_build_wheel(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    dist = NAME.replace("-", "_")
    info = "%s-%s.dist-info" % (dist, VERSION)
    files = {
        MODULE + ".py": ("__version__ = %r\\n" % VERSION).encode(),
        info + "/METADATA": ("Metadata-Version: 2.1\\nName: %s\\nVersion: %s\\n\\n"
                             % (NAME, VERSION)).encode(),
        info + "/WHEEL": b"Wheel-Version: 1.0\\nGenerator: probe\\nRoot-Is-Purelib: true\\n"
                         b"Tag: py3-none-any\\n\\n",
    }
    record = ""
    for p, d in files.items():
        h = base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b"=").decode()
        record += "%s,sha256=%s,%d\\n" % (p, h, len(d))
    files[info + "/RECORD"] = (record + info + "/RECORD,,\\n").encode()
    name = "%s-%s-py3-none-any.whl" % (dist, VERSION)
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as z:
        for p, d in files.items():
            z.writestr(p, d)
    return name
'''

_PYPROJECT = b"""[build-system]
requires = []
build-backend = "mcpx_probe_backend"
backend-path = ["."]
"""


def build_sdist(directory, name, version, mode="error", probe=""):
    """Writes NAME-VERSION.tar.gz, an sdist whose build backend is a probe, and returns its path.
    When pip builds it, the backend reports {"uid", "map" (uid_map), "ws" (/workspace exists),
    ...} as PROBE_MARK + JSON; `probe` is Python source run before that, which may add keys to
    the dict `P`. mode "error": the backend then raises with the report (pip's error keeps the
    line); "ok": it builds a wheel with a module NAME (lower-case, underscores) that has
    __version__."""
    assert mode in ("error", "ok"), mode
    os.makedirs(directory, exist_ok=True)
    module = _dist_name(name).lower()
    root = "%s-%s" % (_dist_name(name), version)
    backend = "".join("%s = %r\n" % kv for kv in (
        ("NAME", name), ("VERSION", version), ("MODULE", module), ("MARK", PROBE_MARK),
        ("FAIL", mode == "error"), ("PROBE", probe))) + _BACKEND_BODY
    files = {
        "pyproject.toml": _PYPROJECT,
        "mcpx_probe_backend.py": backend.encode(),
        "PKG-INFO": ("Metadata-Version: 2.1\nName: %s\nVersion: %s\n" % (name, version)).encode(),
    }
    path = os.path.join(directory, root + ".tar.gz")
    with tarfile.open(path, "w:gz") as t:
        for p, d in files.items():
            ti = tarfile.TarInfo(root + "/" + p)
            ti.size = len(d)
            ti.mode = 0o644
            ti.mtime = 1577836800
            t.addfile(ti, io.BytesIO(d))
    return path


def parse_probe(text):
    """The probe's JSON report found in `text` (an error message or output), or None."""
    m = PROBE_RE.search(text or "")
    return json.loads(m.group(1)) if m else None


def make_wheelhouse(directory, specs):
    """Builds one wheel per spec into `directory` and returns the paths. A spec is
    (name, version) or (name, version, requires) or a dict of build_wheel's arguments."""
    paths = []
    for spec in specs:
        if isinstance(spec, dict):
            paths.append(build_wheel(directory, **spec))
        else:
            paths.append(build_wheel(directory, *spec))
    return paths


class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = "mcpx-test-index/1"

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self._serve(head=True)

    def do_GET(self):
        self._serve(head=False)

    def _serve(self, head):
        index = self.server.owner
        path = self.path.split("?", 1)[0]
        # A proxy sends the absolute form; the path is what counts.
        if path.startswith("http://") or path.startswith("https://"):
            path = "/" + path.split("/", 3)[3] if path.count("/") >= 3 else "/"
        index._record(path)
        if index._stalls(path):
            index.stall_event.wait(index.stall_seconds)
            self.close_connection = True
            return
        body, ctype = index._page(path)
        if body is None:
            self.send_response(404)
            body, ctype = b"not found\n", "text/plain"
        else:
            self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            try:
                self.wfile.write(body)
            except OSError:
                pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class SimpleIndex:
    """A PEP 503 simple index over the files in `directory` (wheels and sdists), served on
    127.0.0.1 by a thread: /simple/ lists the projects, /simple/<normalized>/ a project's files
    (links with #sha256=), /files/<name> the files. Every request path is recorded, in order.
    `stall=True` makes every /simple/ page hang (until stop() or `stall_seconds`), a set of
    project names only theirs: a slow index."""

    def __init__(self, directory, stall=False, stall_seconds=120.0):
        self.directory = directory
        self.requests = []
        self._lock = threading.Lock()
        self.stall_event = threading.Event()
        self.stall = stall if isinstance(stall, bool) else {normalize(n) for n in stall}
        self.stall_seconds = stall_seconds
        self._server = None
        self._thread = None

    @property
    def port(self):
        return self._server.server_address[1]

    @property
    def url(self):
        return "http://127.0.0.1:%d/simple" % self.port

    def start(self):
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    def _stalls(self, path):
        if not path.startswith("/simple/") or self.stall is False:
            return False
        if self.stall is True:
            return True
        return normalize(path[len("/simple/"):].strip("/")) in self.stall

    def stop(self):
        self.stall_event.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(10)
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _record(self, path):
        with self._lock:
            self.requests.append(path)

    def seen(self):
        with self._lock:
            return list(self.requests)

    def clear(self):
        with self._lock:
            self.requests.clear()

    def downloads(self):
        """File names fetched from /files/."""
        return [p[len("/files/"):] for p in self.seen() if p.startswith("/files/")]

    def _projects(self):
        projects = {}
        for f in sorted(os.listdir(self.directory)):
            if f.endswith(".whl"):
                project = f.split("-", 1)[0]
            elif f.endswith(".tar.gz"):
                project = f[:-len(".tar.gz")].rsplit("-", 1)[0]
            else:
                continue
            projects.setdefault(normalize(project), []).append(f)
        return projects

    def _page(self, path):
        projects = self._projects()
        if path in ("/simple", "/simple/"):
            links = "".join('<a href="/simple/%s/">%s</a>\n' % (p, p) for p in sorted(projects))
            return self._html("Simple index", links), "text/html"
        m = re.fullmatch(r"/simple/([^/]+)/?", path)
        if m:
            files = projects.get(normalize(m.group(1)))
            if files is None:
                return None, None
            links = ""
            for f in files:
                with open(os.path.join(self.directory, f), "rb") as fh:
                    digest = hashlib.sha256(fh.read()).hexdigest()
                links += '<a href="/files/%s#sha256=%s">%s</a><br/>\n' % (f, digest, f)
            return self._html("Links for " + m.group(1), links), "text/html"
        m = re.fullmatch(r"/files/([^/]+)", path)
        if m and os.path.isfile(os.path.join(self.directory, m.group(1))):
            with open(os.path.join(self.directory, m.group(1)), "rb") as fh:
                return fh.read(), "application/octet-stream"
        return None, None

    @staticmethod
    def _html(title, body):
        return ("<!DOCTYPE html>\n<html><head><meta name=\"pypi:repository-version\" "
                "content=\"1.0\"><title>%s</title></head><body>\n%s</body></html>\n"
                % (title, body)).encode()


class CanaryServer:
    """A TCP listener on 127.0.0.1 that records every connection (peer address, first bytes)
    and answers nothing: whatever reaches it got out of a jail."""

    def __init__(self):
        self.connections = []
        self._lock = threading.Lock()
        self._sock = None
        self._thread = None
        self._stop = threading.Event()

    @property
    def port(self):
        return self._sock.getsockname()[1]

    def start(self):
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.1)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            try:
                conn, peer = self._sock.accept()
            except (socket.timeout, OSError):
                continue
            conn.settimeout(0.5)
            try:
                first = conn.recv(256)
            except OSError:
                first = b""
            conn.close()
            with self._lock:
                self.connections.append((peer, first))

    def seen(self):
        with self._lock:
            return list(self.connections)

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._sock is not None:
            self._sock.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def wait_until(pred, seconds=30.0, step=0.05):
    """Polls pred until it holds or the deadline passes; returns its last value."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(step)
    return pred()
