"""Builds matplotlib's font cache into DIR, once, so kernels never build it themselves.

Usage: /usr/bin/python3 prepare_mpl_cache.py DIR

The server runs this with DIR writable (outside any kernel), then mounts DIR read-only and
passes it to kernels as MCPX_MPL_CACHE; each kernel copies it into its own writable
MPLCONFIGDIR under /tmp. Run it again after matplotlib or the fonts change. Exit status: 0 when
the cache is in DIR, 1 with a message on stderr otherwise. Prints the files written to stdout.

Kernels may start (and copy DIR) while this runs. matplotlib writes its cache in place, next to
a lock file, so the cache is built in a private folder beside DIR and each finished file is
renamed into DIR: a reader sees a complete file or none, never a half-written one or a lock.
"""

import glob
import io
import os
import shutil
import sys
import tempfile
import time


def main(argv):
    if len(argv) != 2 or argv[1].startswith("-"):
        print(f"usage: {argv[0]} DIR", file=sys.stderr)
        return 2
    target = os.path.abspath(argv[1])
    try:
        os.makedirs(target, exist_ok=True)
    except OSError as e:
        print(f"prepare_mpl_cache: cannot create {target}: {e.strerror}", file=sys.stderr)
        return 1
    if not os.access(target, os.W_OK):
        print(f"prepare_mpl_cache: {target} is not writable", file=sys.stderr)
        return 1
    remove_stale_builds(os.path.dirname(target))
    try:
        build = tempfile.mkdtemp(prefix=".building-", dir=os.path.dirname(target))
    except OSError as e:
        print(f"prepare_mpl_cache: cannot create a build folder beside {target}: {e.strerror}",
              file=sys.stderr)
        return 1
    try:
        return build_into(build, target)
    finally:
        shutil.rmtree(build, ignore_errors=True)


def remove_stale_builds(parent, max_age_s=3600):
    """A build killed mid-way (the server stops with SIGKILL) leaves its folder behind; one
    that old is not in progress."""
    for path in glob.glob(os.path.join(parent, ".building-*")):
        try:
            if time.time() - os.lstat(path).st_mtime > max_age_s:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            pass


def build_into(build, target):
    os.environ["MPLCONFIGDIR"] = build
    os.environ["MPLBACKEND"] = "Agg"
    started = time.perf_counter()
    try:
        import matplotlib
        import matplotlib.pyplot as plt
    except ImportError as e:
        print(f"prepare_mpl_cache: matplotlib is not importable: {e}", file=sys.stderr)
        return 1
    if os.path.realpath(matplotlib.get_cachedir()) != os.path.realpath(build):
        print(f"prepare_mpl_cache: matplotlib ignored MPLCONFIGDIR and uses "
              f"{matplotlib.get_cachedir()}", file=sys.stderr)
        return 1
    # Drawing text resolves the default font through the cache, as the first plot would.
    fig = plt.figure(figsize=(1, 1))
    fig.text(0.5, 0.5, "0")
    fig.savefig(io.BytesIO(), format="png")
    plt.close(fig)
    caches = sorted(glob.glob(os.path.join(build, "fontlist-*.json")))
    if not caches:
        print(f"prepare_mpl_cache: matplotlib {matplotlib.__version__} wrote no fontlist-*.json "
              f"into {build}", file=sys.stderr)
        return 1
    for path in caches:
        final = os.path.join(target, os.path.basename(path))
        os.replace(path, final)
        print(final)
    print(f"prepare_mpl_cache: matplotlib {matplotlib.__version__}, "
          f"{time.perf_counter() - started:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
