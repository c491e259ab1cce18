"""Tracebacks written for a model's context: the user's frames (cells and modules in the
workspace) and the frame that raised, with the library frames in between folded into one line
that names their packages, so a pandas KeyError reads in a few lines instead of a screenful."""

import os
import sysconfig
import traceback

_KERNEL_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_STDLIB_DIRS = tuple(sorted({os.path.join(os.path.abspath(sysconfig.get_paths()[key]), "")
                             for key in ("stdlib", "platstdlib")}))
_PACKAGE_DIRS = ("site-packages", "dist-packages")
# A stack with more than _MAX_RUNS runs of frames (a run: one frame, or one frame repeated) after
# folding, from mutual recursion or a deep chain of user calls, keeps the outermost and the
# innermost _KEEP_ENDS runs and folds the middle.
_MAX_RUNS = 12
_KEEP_ENDS = 4


class _Folded:
    """Stands in a stack for frames that are not shown; carries the attributes that
    StackSummary.format() compares when it folds repeated lines."""

    def __init__(self, count, names):
        self.count = count
        self.names = names
        self.filename = self.name = f"<folded {id(self)}>"
        self.lineno = 0

    def text(self):
        frames = "frame" if self.count == 1 else "frames"
        return f"  ... {self.count} {frames} in {', '.join(self.names)} ...\n"


class _Stack(traceback.StackSummary):
    def format_frame_summary(self, frame_summary):
        if isinstance(frame_summary, _Folded):
            return frame_summary.text()
        return super().format_frame_summary(frame_summary)


class Trimmer:
    """Rewrites the stacks of a TracebackException (and of every exception chained to it or
    grouped in it) in place."""

    def __init__(self, workspace, cell_filename):
        workspace = os.path.abspath(workspace)
        # A workspace at / would make every file the user's.
        self.workspace = None if workspace == os.sep else os.path.join(workspace, "")
        self.cell_filename = cell_filename

    def trim(self, te):
        seen = set()
        pending = [te]
        while pending:
            te = pending.pop()
            if id(te) in seen:
                continue
            seen.add(id(te))
            te.stack = _Stack(self._frames(te))
            pending.extend(t for t in (te.__cause__, te.__context__) if t is not None)
            pending.extend(getattr(te, "exceptions", None) or ())

    def _frames(self, te):
        stack = [f for f in te.stack if not f.filename.startswith(_KERNEL_DIR)]
        cells = [i for i, f in enumerate(stack) if _is_cell(f.filename)]
        # Only a SyntaxError has a filename here. When it is the cell's and no cell frame ran,
        # the cell itself did not compile: the caret block says everything, the frames are the
        # kernel's compile call (ast.py).
        if not cells and getattr(te, "filename", None) == self.cell_filename:
            return []
        if cells:
            stack = stack[cells[0]:]  # what ran before the cell: the kernel, asyncio
        kept = []
        folded = []
        for i, frame in enumerate(stack):
            if self._is_user(frame.filename) or i == len(stack) - 1:
                if folded:
                    kept.append(self._fold(folded))
                    folded = []
                kept.append(frame)
            else:
                folded.append(frame)
        return self._cap(kept)

    def _cap(self, entries):
        """Folds the middle of a long chain of user frames; runs of one repeated frame count
        once, since StackSummary.format() already prints them as one."""
        runs = []
        for entry in entries:
            if runs and not isinstance(entry, _Folded) and not isinstance(runs[-1][0], _Folded) \
                    and _same_line(runs[-1][0], entry):
                runs[-1].append(entry)
            else:
                runs.append([entry])
        if len(runs) <= _MAX_RUNS:
            return entries
        middle = [f for run in runs[_KEEP_ENDS:-_KEEP_ENDS] for f in run]
        count = sum(e.count if isinstance(e, _Folded) else 1 for e in middle)
        head = [f for run in runs[:_KEEP_ENDS] for f in run]
        tail = [f for run in runs[-_KEEP_ENDS:] for f in run]
        return head + [_Folded(count, self._names(middle))] + tail

    def _fold(self, frames):
        return _Folded(len(frames), self._names(frames))

    def _names(self, entries):
        """Where the entries come from, each name once, in order. Pseudo-files such as numpy's
        `<__array_function__ internals>` are named only when nothing else is."""
        names = []
        for entry in entries:
            for name in entry.names if isinstance(entry, _Folded) else [self._where(entry)]:
                if name not in names:
                    names.append(name)
        real = [n for n in names if _is_cell(n) or not n.startswith("<")]
        return real or names

    def _is_user(self, filename):
        if _is_cell(filename):
            return True
        if self.workspace is None or not filename.startswith(self.workspace):
            return False
        return not any(part in _PACKAGE_DIRS for part in filename.split(os.sep))

    def _where(self, frame):
        """The cell, workspace file or top-level package a frame belongs to."""
        filename = frame.filename
        if _is_cell(filename):
            return filename
        if self._is_user(filename):
            return filename[len(self.workspace):]
        return _package(filename)


def _is_cell(filename):
    return filename.startswith("<cell ")


def _same_line(a, b):
    return (a.filename, a.lineno, a.name) == (b.filename, b.lineno, b.name)


def _package(filename):
    """`pandas` for .../site-packages/pandas/core/frame.py and for Cython's
    pandas/_libs/index.pyx, `json` for the standard library's json/decoder.py, `importlib` for
    <frozen importlib._bootstrap>."""
    if filename.startswith("<"):
        inner = filename.strip("<>")
        return inner[len("frozen "):].split(".")[0] if inner.startswith("frozen ") else filename
    parts = filename.split(os.sep)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] in _PACKAGE_DIRS:
            return parts[i + 1].split(".")[0]
    for stdlib in _STDLIB_DIRS:
        if filename.startswith(stdlib):
            rel = filename[len(stdlib):].split(os.sep)
            if rel[0] == "lib-dynload" and len(rel) > 1:
                rel = rel[1:]
            return rel[0].split(".")[0]
    if not os.path.isabs(filename):
        return parts[0].split(".")[0]
    return os.path.dirname(filename) or filename
