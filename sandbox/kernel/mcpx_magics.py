"""Notebook syntax in cells: `%magic`, `%%cell magic`, `!cmd`, `x = !cmd`, `obj?`.

IPython's own input transformer (IPython.core.inputtransformer2, stdlib imports only) rewrites
that syntax into calls of a small shell object defined here. It is loaded from its file, without
running IPython/__init__.py (which imports the whole terminal shell, ~300 ms), and only when a
cell needs it: a cell that parses as Python is never transformed and never loads it.

Line numbers stay the user's: every rewrite keeps the cell's line count, and the body of a cell
magic is compiled with the cell's file name at its own lines.
"""

import ast
import os
import re
import shlex
import sys

import mcpx_magic_timing  # which imports this module back: each uses the other only at call time
import mcpx_packages

# The workspace: the kernel's working directory when it started. `%cd` stays inside it.
_WORKSPACE = os.getcwd()
_KERNEL_BIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin")

# Cheap pre-check: a line starting with % or !, `x = !cmd` / `x = %magic`, or `?` help syntax.
_MAYBE_SPECIAL = re.compile(r"^[ \t]*[%!?]|=[ \t]*[%!]|\?[ \t]*(?:#.*)?$", re.MULTILINE)
_PIP_COMMAND = re.compile(r"^\s*(?:pip3?|python3?\s+-m\s+pip)(?=\s|$)(.*)\Z", re.DOTALL)
_SHELL = "__import__('mcpx_magics').get_ipython()"

SUPPORTED_LINE = ("cd", "env", "ls", "matplotlib", "pip", "pwd", "time", "timeit", "who",
                  "whos", "config", "load_ext", "autoreload")
SUPPORTED_CELL = ("bash", "sh", "time", "timeit", "writefile")
# Total time %timeit spends measuring (after the first run that sizes the loop).


class UsageError(Exception):
    """A magic this kernel does not support, or one used wrongly. One line, no kernel frames."""


# Shown as `UsageError: ...` (as in IPython), not `mcpx_magics.UsageError: ...`.
UsageError.__module__ = "builtins"


def _supported():
    return ("supported: " + " ".join("%" + n for n in sorted(SUPPORTED_LINE)) + " " +
            " ".join("%%" + n for n in SUPPORTED_CELL) + ", !cmd, x = !cmd, obj?")


def transform_cell(source):
    """The cell as plain Python. Valid Python comes back untouched (the same object)."""
    if not _MAYBE_SPECIAL.search(source):
        return source
    try:
        ast.parse(source)
        return source
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        pass
    transformed = _transformer().transform_cell(source)
    expected = source.count("\n") + (0 if source.endswith("\n") else 1)
    if transformed.count("\n") != expected:
        # Never expected; a shifted cell would point tracebacks at the wrong lines.
        return source
    return transformed


_manager = None


def _load_inputtransformer2():
    """IPython.core.inputtransformer2 loaded from its file under a private name: the submodule
    only imports the stdlib, while `import IPython...` would run IPython/__init__.py."""
    import importlib.util
    module = sys.modules.get("IPython.core.inputtransformer2")
    if module is not None:
        return module
    spec = importlib.util.find_spec("IPython")
    if spec is None or not spec.submodule_search_locations:
        raise UsageError("notebook syntax (%magic, !cmd) needs IPython's input transformer; "
                         "IPython is not installed in the sandbox (Debian: python3-ipython)")
    path = os.path.join(list(spec.submodule_search_locations)[0], "core",
                        "inputtransformer2.py")
    spec = importlib.util.spec_from_file_location("_mcpx_inputtransformer2", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _transformer():
    global _manager
    if _manager is None:
        _manager = _make_manager(_load_inputtransformer2())
    return _manager


def _make_manager(it2):
    def keeping_lines(cls):
        class Kept(cls):
            def transform(self, lines):
                new = super().transform(lines)
                at = self.start_line
                line = new[at]
                if line[self.start_col:].startswith("get_ipython()"):
                    line = line[:self.start_col] + _SHELL + line[self.start_col +
                                                                 len("get_ipython()"):]
                # The rewrite joined the backslash-continued lines into one: blank lines in
                # their place keep every later line where it was.
                return new[:at] + [line] + ["\n"] * (len(lines) - len(new)) + new[at + 1:]
        Kept.__name__ = cls.__name__
        return Kept

    class Escaped(it2.EscapedCommand):
        """Only `%`, `!` and `?` escapes; IPython's autocall escapes (`/f x`, `,f x`, `;f x`)
        would turn a stray line into a call instead of a SyntaxError."""

        @classmethod
        def find(cls, tokens_by_line):
            for line in tokens_by_line:
                tokens = [t for t in line if t.type not in (it2.tokenize.INDENT,
                                                            it2.tokenize.DEDENT)]
                if tokens and tokens[0].string in ("%", "!", "?"):
                    return cls(tokens[0].start)
            return None

    manager = it2.TransformerManager()
    # IPython's cleanups drop leading blank lines (shifting every line) and strip prompts only
    # in cells that contain magics: none of them here.
    manager.cleanup_transforms = []
    manager.line_transforms = [_cell_magic]
    manager.token_transformers = [keeping_lines(c) for c in (
        it2.MagicAssign, it2.SystemAssign, Escaped, it2.HelpEnd)]
    return manager


def _cell_magic(lines):
    """`%%name args` on the first non-blank line: the rest of the cell is its body."""
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None or not lines[first].startswith("%%") or \
            re.match(r"%%\w+\?", lines[first]):
        return lines
    name, _, args = lines[first][2:].rstrip().partition(" ")
    body = "".join(lines[first + 1:])
    call = (f"{_SHELL}.run_cell_magic({name!r}, {args!r}, {body!r}, "
            f"_body_line={first + 2})\n")
    return lines[:first] + [call] + ["\n"] * (len(lines) - first - 1)


class SList(list):
    """`x = !cmd`: the output lines, with IPython's `.s` (space-joined), `.n` (newline-joined)
    and `.l` (the list)."""

    @property
    def s(self):
        return " ".join(self)

    @property
    def n(self):
        return "\n".join(self)

    @property
    def l(self):  # noqa: E743 (IPython's name)
        return list(self)


def _caller(depth=2):
    """The frame of the cell code that called the shell (globals: the user's namespace)."""
    return sys._getframe(depth)


def _expand(text, frame):
    """IPython's variable expansion in shell commands and some magics: `{expr}` and `$name`
    from the cell's namespace; `$$` is a literal `$`. A `{...}` that does not evaluate leaves the
    whole text as written (`{}` in `find -exec`, awk programs)."""
    if "{" not in text and "$" not in text:
        return text
    namespace = dict(frame.f_globals)
    if frame.f_locals is not frame.f_globals:
        namespace.update(frame.f_locals)

    def brace(m):
        return str(eval(m.group(1), namespace))

    try:
        text = re.sub(r"\{([^{}]+)\}", brace, text)
    except Exception:
        return text

    def dollar(m):
        name = m.group(1)
        if name == "$":
            return "$"
        return str(namespace[name]) if name in namespace else m.group(0)

    return re.sub(r"\$(\$|[A-Za-z_][A-Za-z0-9_]*)", dollar, text)


def _flush():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def _user_names(namespace):
    return sorted(n for n in namespace
                  if not n.startswith("_") and n not in ("In", "Out", "get_ipython", "exit",
                                                         "quit"))


class Shell:
    """What `get_ipython()` returns in transformed cells: the few IPython shell methods the
    input transformer's output calls."""

    def __init__(self):
        self._previous_dir = None

    # -- entry points called by transformed code --------------------------------------------

    def run_line_magic(self, magic_name, line, _stack_depth=1):
        frame = _caller(_stack_depth + 1)
        if magic_name.startswith("%"):
            raise UsageError(f"%{magic_name} must be the first line of the cell")
        handler = getattr(self, "_line_" + magic_name, None)
        if handler is None:
            raise UsageError(f"%{magic_name} is not supported here; {_supported()}")
        return handler(line, frame)

    def run_cell_magic(self, magic_name, line, cell, _body_line=None):
        frame = _caller()
        handler = getattr(self, "_cell_" + magic_name, None)
        if handler is None:
            raise UsageError(f"%%{magic_name} is not supported here; {_supported()}")
        return handler(line, cell, frame, _body_line or frame.f_lineno + 1)

    def system(self, cmd):
        return _system(cmd, _caller())

    def getoutput(self, cmd):
        frame = _caller()
        cmd = _expand(cmd, frame)
        import subprocess
        _flush()
        done = subprocess.run(cmd, shell=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, env=_child_env())
        frame.f_globals["_exit_code"] = done.returncode
        return SList(done.stdout.decode("utf-8", "replace").splitlines())

    def show_usage(self):
        print("Notebook syntax in this sandbox: " + _supported() + ".")

    # -- line magics ------------------------------------------------------------------------

    def _line_pip(self, line, frame):
        return mcpx_packages.line_magic(_expand(line, frame))

    _line_pip3 = _line_pip

    def _line_matplotlib(self, line, frame):
        """Accepted whatever the backend: figures always come back as images."""
        return None

    def _line_config(self, line, frame):
        """Accepted and ignored (`%config InlineBackend.figure_format = 'retina'`)."""
        return None

    def _line_load_ext(self, line, frame):
        if line.strip() != "autoreload":
            raise UsageError(f"%load_ext {line.strip()}: IPython extensions are not supported "
                             "here (only `%load_ext autoreload` is accepted)")
        return None

    def _line_autoreload(self, line, frame):
        print("note: %autoreload is accepted but modules are not reloaded automatically; use "
              "importlib.reload(module) after editing one", file=sys.stderr)
        return None

    def _line_pwd(self, line, frame):
        return os.getcwd()

    def _line_cd(self, line, frame):
        arg = _expand(line.strip(), frame)
        if arg.startswith(("'", '"')):
            words = shlex.split(arg)
            arg = words[0] if words else ""
        if arg == "-":
            if self._previous_dir is None:
                raise UsageError("%cd -: no previous directory")
            arg = self._previous_dir
        workspace = os.path.realpath(_WORKSPACE)
        target = os.path.realpath(os.path.join(os.getcwd(), arg) if arg else workspace)
        if os.path.commonpath([workspace, target]) != workspace:
            raise UsageError(f"%cd {line.strip()}: {target} is outside the workspace "
                             f"{workspace}; %cd only moves inside it")
        if not os.path.isdir(target):
            raise UsageError(f"%cd {line.strip()}: no such directory: {target}")
        self._previous_dir = os.getcwd()
        os.chdir(target)
        print(target)
        return None

    def _line_ls(self, line, frame):
        return _system("ls " + line, frame)

    def _line_pinfo(self, line, frame):
        return _pinfo(line, frame, source=False)

    def _line_pinfo2(self, line, frame):
        return _pinfo(line, frame, source=True)

    def _line_env(self, line, frame):
        line = _expand(line.strip(), frame)
        if not line:
            return dict(os.environ)
        m = re.match(r"([^\s=]+)(?:\s*=\s*|\s+)(.*)\Z", line, re.DOTALL)
        if not m:
            return os.environ.get(line)
        os.environ[m.group(1)] = m.group(2)
        print(f"env: {m.group(1)}={m.group(2)}")
        return None

    def _line_who(self, line, frame):
        namespace = frame.f_globals
        types = set(line.split())
        names = [n for n in _user_names(namespace)
                 if not types or type(namespace[n]).__name__ in types]
        if not names:
            print("Interactive namespace is empty.")
        else:
            print("\t".join(names))
        return None

    def _line_whos(self, line, frame):
        namespace = frame.f_globals
        names = _user_names(namespace)
        if not names:
            print("Interactive namespace is empty.")
            return None
        rows = [(n, type(namespace[n]).__name__, _short_repr(namespace[n])) for n in names]
        width = max(len("Variable"), *(len(r[0]) for r in rows))
        twidth = max(len("Type"), *(len(r[1]) for r in rows))
        print(f"{'Variable':<{width}}   {'Type':<{twidth}}   Data/Info")
        print("-" * (width + twidth + 18))
        for name, kind, info in rows:
            print(f"{name:<{width}}   {kind:<{twidth}}   {info}")
        return None

    def _line_time(self, line, frame):
        stmt = line.strip()
        return mcpx_magic_timing.time_code(stmt, frame, frame.f_lineno,
                                           mcpx_magic_timing.column_of(frame, stmt))

    def _line_timeit(self, line, frame):
        return mcpx_magic_timing.timeit_code(line, frame)

    # -- cell magics ------------------------------------------------------------------------

    def _cell_time(self, line, cell, frame, body_line):
        if line.strip():
            raise UsageError("%%time takes no arguments (the cell body is what it times)")
        return mcpx_magic_timing.time_code(cell, frame, body_line)

    def _cell_timeit(self, line, cell, frame, body_line):
        return mcpx_magic_timing.timeit_code(line, frame, cell)

    def _cell_writefile(self, line, cell, frame, body_line):
        words = shlex.split(line)
        append = bool(words) and words[0] in ("-a", "--append")
        if append:
            words = words[1:]
        if len(words) != 1:
            raise UsageError("usage: %%writefile [-a] FILENAME")
        path = os.path.expanduser(words[0])
        existed = os.path.exists(path)
        with open(path, "a" if append else "w", encoding="utf-8") as f:
            f.write(cell)
        verb = "Appending to" if append else "Overwriting" if existed else "Writing"
        print(f"{verb} {words[0]}")
        return None

    def _cell_bash(self, line, cell, frame, body_line):
        return _run_script("/bin/bash" if os.path.exists("/bin/bash") else "/bin/sh", line,
                           cell, frame)

    def _cell_sh(self, line, cell, frame, body_line):
        return _run_script("/bin/sh", line, cell, frame)


def _system(cmd, frame):
    """`!cmd`: /bin/sh runs it with the cell's stdout and stderr; `_exit_code` gets its status.
    pip commands go to the server's installer instead (see mcpx_packages.line_magic)."""
    cmd = _expand(cmd, frame)
    pip = _PIP_COMMAND.match(cmd)
    if pip:
        return mcpx_packages.line_magic(pip.group(1))
    import subprocess
    _flush()
    # Output goes straight to fds 1/2, which the kernel captures; fd 3 is not inherited.
    code = subprocess.run(cmd, shell=True, stdin=subprocess.DEVNULL, env=_child_env()).returncode
    frame.f_globals["_exit_code"] = code
    if code < 0:
        print(f"(the command was killed by signal {-code})", file=sys.stderr)
    return None


def _child_env():
    """The environment of shell commands: the kernel's, with the kernel's interpreter directory
    on PATH (right after the pip shim's), so `python`/`python3` in a command is the interpreter
    that sees the installed packages (in the jail, the package overlay's venv), not a bare
    /usr/bin/python3. None (inherit) when it is there already."""
    directory = os.path.dirname(sys.executable or "")
    parts = os.environ.get("PATH", "").split(os.pathsep)
    if not directory or directory in parts:
        return None
    at = parts.index(_KERNEL_BIN) + 1 if _KERNEL_BIN in parts else 0
    return dict(os.environ, PATH=os.pathsep.join(parts[:at] + [directory] + parts[at:]))


def _pinfo(target, frame, source):
    """`obj?` / `obj??`: type, signature and docstring (and source with ??)."""
    import inspect
    target = target.strip().lstrip("%")
    try:
        obj = run_in(compile(target, "<help>", "eval", dont_inherit=True), frame)
    except Exception as e:
        raise UsageError(f"{target}?: {type(e).__name__}: {e}") from None
    print(f"Type:      {type(obj).__name__}")
    try:
        print(f"Signature: {target}{inspect.signature(obj)}")
    except (TypeError, ValueError):
        if not callable(obj):
            print(f"Value:     {_short_repr(obj, 200)}")
    if source:
        try:
            print("Source:\n" + inspect.getsource(obj).rstrip())
            return None
        except (TypeError, OSError):
            pass
    doc = inspect.getdoc(obj)
    print("Docstring:\n" + (doc or "<no docstring>"))
    return None


def _run_script(shell, line, cell, frame):
    if line.strip():
        raise UsageError(f"%%{os.path.basename(shell)} takes no arguments here")
    import subprocess
    _flush()
    code = subprocess.run([shell], input=cell.encode("utf-8"), env=_child_env()).returncode
    frame.f_globals["_exit_code"] = code
    return None


def _short_repr(value, limit=60):
    try:
        text = repr(value)
    except Exception as e:
        text = f"<repr() failed: {type(e).__name__}>"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def run_in(code, frame):
    """Evaluates `code` in the calling cell's frame (its locals when it has its own)."""
    if frame.f_locals is frame.f_globals:
        return eval(code, frame.f_globals)
    return eval(code, frame.f_globals, frame.f_locals)


_shell = Shell()


def get_ipython():
    """The kernel's one Shell."""
    return _shell
