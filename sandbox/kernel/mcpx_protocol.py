"""Framing of the control channel (fd 3): 4-byte big-endian length + UTF-8 JSON object.

See PROTOCOL.md. Plain os.read/os.write keep this usable on any stream fd; EINTR is retried by
Python itself (PEP 475) because the kernel's SIGINT handler only raises while user code runs.
"""

import collections
import json
import os
import struct

PROTOCOL_VERSION = 1
# Both directions. The server keeps replies far smaller (image caps); this is the hard bound a
# peer may rely on when sizing buffers.
MAX_FRAME_BYTES = 32 * 1024 * 1024
_HEADER = struct.Struct(">I")
_DISCARD_CHUNK = 1 << 20


class ChannelClosed(Exception):
    """The server closed its end (EOF or EPIPE): the kernel should exit."""


class FrameError(Exception):
    """A frame was read completely but its payload is unusable; the stream stays in sync."""


def _read_exact(fd, n):
    chunks = []
    while n > 0:
        try:
            chunk = os.read(fd, min(n, _DISCARD_CHUNK))
        except OSError as e:  # EBADF too: user code may have closed fd 3
            raise ChannelClosed(str(e)) from e
        if not chunk:
            raise ChannelClosed("end of file on the control channel")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_message(fd):
    """Returns the next request as a dict. Raises ChannelClosed or FrameError."""
    (length,) = _HEADER.unpack(_read_exact(fd, _HEADER.size))
    if length > MAX_FRAME_BYTES:
        # Skip the payload so the next header is read at the right place.
        left = length
        while left > 0:
            left -= len(_read_exact(fd, min(left, _DISCARD_CHUNK)))
        raise FrameError(f"frame of {length} bytes exceeds the limit of {MAX_FRAME_BYTES} bytes")
    payload = _read_exact(fd, length)
    try:
        message = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise FrameError(f"frame is not UTF-8 JSON: {e}") from None
    if not isinstance(message, dict):
        raise FrameError(f"frame must hold a JSON object, got {type(message).__name__}")
    return message


def _clean(value):
    """Makes every string valid UTF-8 (lone surrogates from user reprs would make strict JSON
    parsers reject the whole reply) and drops values JSON cannot carry."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_clean(str(k)): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    return _clean(repr(value))


# One encoder for the kernel's life: json.dumps with options builds a new one every call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def encode_message(message):
    try:
        payload = _ENCODER.encode(message).encode("utf-8")
    except (TypeError, ValueError):
        # A lone surrogate (UnicodeEncodeError), NaN or a value JSON cannot carry: rare, so the
        # walk over the whole message that fixes them runs only then.
        payload = _ENCODER.encode(_clean(message)).encode("utf-8")
    return _HEADER.pack(len(payload)) + payload


def write_frame(fd, frame):
    view = memoryview(frame)
    try:
        while view:
            n = os.write(fd, view)
            view = view[n:]
    except OSError as e:
        raise ChannelClosed(str(e)) from e


class Inbox:
    """The request side of the channel. A cell that waits for an answer mid-cell (`%pip
    install`) reads the channel itself; requests it meets there are kept here, in order, for the
    request loop."""

    def __init__(self, fd):
        self.fd = fd
        self._kept = collections.deque()

    def read(self):
        """The next request: a kept one first. Raises ChannelClosed or FrameError."""
        if self._kept:
            item = self._kept.popleft()
            if isinstance(item, FrameError):
                raise item
            return item
        return read_message(self.fd)

    def keep(self, item):
        """A request (or the FrameError of an unusable frame) read out of turn."""
        self._kept.append(item)
