# Runs inside a kernel: one line per open fd, tab-separated:
#   fd=N  link target  st_dev  st_ino  epoll targets (comma-separated inode numbers, decimal)
import os

for _fd in sorted(int(x) for x in os.listdir("/proc/self/fd")):
    try:
        _target = os.readlink("/proc/self/fd/%d" % _fd)
        _st = os.stat("/proc/self/fd/%d" % _fd)
    except OSError:
        continue  # the listdir fd itself, closed by now
    _tfds = []
    if _target == "anon_inode:[eventpoll]":
        with open("/proc/self/fdinfo/%d" % _fd) as _f:
            for _line in _f:
                if _line.startswith("tfd:"):
                    _fields = dict(kv.split(":", 1) for kv in _line.split() if ":" in kv)
                    _tfds.append(str(int(_fields["ino"], 16)))
    print("fd=%d\t%s\t%d\t%d\t%s" % (_fd, _target, _st.st_dev, _st.st_ino, ",".join(_tfds) or "-"))
