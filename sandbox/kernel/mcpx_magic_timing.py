"""`%time`, `%%time`, `%timeit` and `%%timeit` for mcpx_magics: the timed code is compiled like
a cell at its own place in the calling cell (tracebacks point at the user's line), run in that
cell's namespace, and reported in IPython's format."""

import ast

import mcpx_magics

TIMEIT_BUDGET_S = 2.0


def _compile(source, frame, first_line, first_col=0):
    """The statements and the last expression (or None) of `source`, transformed like a cell
    and placed at `first_line`, `first_col` (UTF-8 bytes) of the calling cell's file."""
    filename = frame.f_code.co_filename
    try:
        tree = compile(mcpx_magics.transform_cell(source), filename, "exec", ast.PyCF_ONLY_AST,
                       dont_inherit=True)
    except SyntaxError as e:
        if e.lineno is not None:
            e.lineno += first_line - 1
        if e.end_lineno is not None:
            e.end_lineno += first_line - 1
        raise
    if first_col:
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) == 1:
                node.col_offset += first_col
                if node.end_lineno == 1:
                    node.end_col_offset += first_col
    ast.increment_lineno(tree, first_line - 1)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    return (compile(tree, filename, "exec", dont_inherit=True),
            compile(last, filename, "eval", dont_inherit=True) if last is not None else None)


def column_of(frame, text):
    """Where `text` starts on the calling line of the cell (UTF-8 bytes), 0 when not found."""
    import linecache
    line = linecache.getline(frame.f_code.co_filename, frame.f_lineno)
    at = line.find(text) if text else -1
    return len(line[:at].encode("utf-8")) if at > 0 else 0


def time_code(source, frame, first_line, first_col=0):
    """%time / %%time: runs the code once, prints CPU and wall times, returns the value of a
    last expression."""
    import resource
    import time
    body, last = _compile(source, frame, first_line, first_col)
    # getrusage, not os.times(): clock ticks (10 ms) would show most cells as 0 ns.
    cpu0, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    try:
        mcpx_magics.run_in(body, frame)
        value = mcpx_magics.run_in(last, frame) if last is not None else None
    finally:
        cpu1, wall1 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        user, system = cpu1.ru_utime - cpu0.ru_utime, cpu1.ru_stime - cpu0.ru_stime
        print(f"CPU times: user {format_time(user)}, sys: {format_time(system)}, "
              f"total: {format_time(user + system)}")
        print(f"Wall time: {format_time(wall1 - wall0)}")
    return value


def _timeit_options(line):
    """(number, repeat, quiet, return_result, rest of the line)."""
    number = repeat = None
    quiet = return_result = False
    words = line.split(" ")
    i = 0
    while i < len(words):
        word = words[i]
        if word == "":
            i += 1
            continue
        if word in ("-n", "-r") and i + 1 < len(words):
            try:
                value = int(words[i + 1])
            except ValueError:
                raise mcpx_magics.UsageError(f"%timeit {word} needs a positive integer") from None
            if value < 1:
                raise mcpx_magics.UsageError(f"%timeit {word} needs a positive integer")
            if word == "-n":
                number = value
            else:
                repeat = value
            i += 2
        elif word == "-q":
            quiet, i = True, i + 1
        elif word == "-o":
            return_result, i = True, i + 1
        elif word.startswith("-") and len(word) > 1 and word[1:].isalpha():
            raise mcpx_magics.UsageError(f"%timeit option {word} is not supported here; -n N, -r R, -q and "
                             "-o are")
        else:
            break
    return number, repeat, quiet, return_result, " ".join(words[i:])


class TimeitResult:
    """What `%timeit -o` returns: per-loop timings of each run, in seconds."""

    def __init__(self, loops, all_runs):
        self.loops = loops
        self.repeat = len(all_runs)
        self.all_runs = all_runs
        self.timings = [t / loops for t in all_runs]
        self.best = min(self.timings)
        self.worst = max(self.timings)

    @property
    def average(self):
        return sum(self.timings) / len(self.timings)

    @property
    def stdev(self):
        mean = self.average
        return (sum((t - mean) ** 2 for t in self.timings) / len(self.timings)) ** 0.5

    def __str__(self):
        runs, loops = self.repeat, self.loops
        return (f"{format_time(self.average)} ± {format_time(self.stdev)} per loop (mean ± std. "
                f"dev. of {runs} run{'s' if runs != 1 else ''}, {loops:,} "
                f"loop{'s' if loops != 1 else ''} each)")

    def __repr__(self):
        return f"<TimeitResult : {self}>"


def timeit_code(line, frame, cell=None):
    """%timeit STMT / %%timeit [SETUP] + body: the loop count is sized by timeit's autorange
    (about 0.2 s per run), then up to 7 runs within TIMEIT_BUDGET_S in all."""
    import time
    import timeit
    number, repeat, quiet, return_result, rest = _timeit_options(line)
    stmt, setup = (cell, rest or "pass") if cell is not None else (rest, "pass")
    if not stmt.strip():
        raise mcpx_magics.UsageError("%timeit needs a statement to time" if cell is None else
                         "%%timeit needs a cell body to time")
    namespace = dict(frame.f_globals)
    if frame.f_locals is not frame.f_globals:
        namespace.update(frame.f_locals)
    timer = timeit.Timer(mcpx_magics.transform_cell(stmt), mcpx_magics.transform_cell(setup), globals=namespace)
    started = time.perf_counter()
    runs = []
    if number is None:
        number, first = timer.autorange()
        runs.append(first)
    wanted = repeat or 7
    while len(runs) < wanted:
        spent = time.perf_counter() - started
        per_run = runs[-1] if runs else 0.0
        if repeat is None and runs and spent + per_run > TIMEIT_BUDGET_S:
            break
        runs.append(timer.timeit(number))
    result = TimeitResult(number, runs)
    if not quiet:
        if result.worst > 4 * result.best and result.best > 0 and result.worst > 1e-6:
            print(f"The slowest run took {result.worst / result.best:0.2f} times longer than "
                  "the fastest. This could mean that an intermediate result is being cached.")
        print(result)
    return result if return_result else None


def format_time(seconds, precision=3):
    """IPython's format: 3 significant digits in s, ms, µs or ns."""
    if seconds >= 60.0:
        parts = []
        left = seconds
        for suffix, length in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
            value = int(left / length)
            if value > 0:
                left = left % length
                parts.append(f"{value}{suffix}")
            if left < 1:
                break
        return " ".join(parts)
    units = ("s", "ms", "µs", "ns")
    if seconds > 0.0:
        import math
        order = min(-int(math.floor(math.log10(seconds)) // 3), 3)
    else:
        order = 3
    return "%.*g %s" % (precision, seconds * (1, 1e3, 1e6, 1e9)[order], units[order])
