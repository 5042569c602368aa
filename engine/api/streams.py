"""The byte streams the Docker API sends besides plain JSON replies.

Without a TTY, attach, exec and logs multiplex stdout and stderr on one
stream (docker's stdcopy): each frame is an 8-byte header, the stream's
number in the first byte and the payload's length big-endian in the last
four, then the payload. Pull, push, load, build, events and stats send a
JSON stream: one compact object per line, as Go's json.Encoder writes them.
"""
import struct

from engine import gojson

STDIN, STDOUT, STDERR = 0, 1, 2
_HEADER = struct.Struct(">BxxxL")
HEADER_SIZE = _HEADER.size
MAX_FRAME = 32 << 10  # what docker writes per frame at most, so a reader's buffer stays small


def frame(stream: int, data: bytes) -> bytes:
    """Data for one stream as frames (several when it is long)."""
    if len(data) <= MAX_FRAME:
        return _HEADER.pack(stream, len(data)) + data
    return b"".join(_HEADER.pack(stream, len(data[i:i + MAX_FRAME])) + data[i:i + MAX_FRAME]
                    for i in range(0, len(data), MAX_FRAME))


class StreamWriter:
    """One stream (STDOUT or STDERR) of a multiplexed connection: `write(data)`
    sends it framed through `send`, the connection's write."""

    def __init__(self, send, stream: int):
        self._send, self.stream = send, stream

    def write(self, data: bytes) -> None:
        if data:
            self._send(frame(self.stream, data))


def read_frames(read):
    """Yields (stream, payload) from a multiplexed byte stream; `read(n)` is a
    blocking read that returns b"" at its end. A stream cut inside a frame
    raises ValueError."""
    while True:
        header = _read_exactly(read, HEADER_SIZE)
        if not header:
            return
        stream, size = _HEADER.unpack(header)
        if stream not in (STDIN, STDOUT, STDERR):
            raise ValueError(f"unrecognized input header: {stream}")
        payload = _read_exactly(read, size) if size else b""
        if len(payload) < size:
            raise ValueError(f"the stream ended inside a frame of {size} bytes")
        yield stream, payload


def _read_exactly(read, n: int) -> bytes:
    parts, got = [], 0
    while got < n:
        part = read(n - got)
        if not part:
            if got:
                if n == HEADER_SIZE:
                    raise ValueError("the stream ended inside a frame header")
                break
            return b""
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def json_message(obj) -> bytes:
    """One object of a JSON stream, as Go's json.Encoder writes it: compact, a newline after."""
    return gojson.encode(obj) + b"\n"
