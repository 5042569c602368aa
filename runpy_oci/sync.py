"""The parent <-> container-init handshake: JSON lines over a pair of pipes
(pipes, not sockets: the socket module is too slow to import on the hot path).
Both ends are close-on-exec, so nothing of it survives into the container."""
import os

from runpy_oci import fastjson


class Channel:
    def __init__(self, read_fd, write_fd):
        self.read_fd = read_fd
        self.write_fd = write_fd
        self._buf = b""

    @classmethod
    def pair(cls):
        """(parent end, child end) of two fresh pipes."""
        up_r, up_w = os.pipe2(os.O_CLOEXEC)
        down_r, down_w = os.pipe2(os.O_CLOEXEC)
        return cls(up_r, down_w), cls(down_r, up_w)

    def send(self, kind, **fields):
        fields["type"] = kind
        os.write(self.write_fd, fastjson.dumps(fields).encode() + b"\n")

    def recv(self):
        """The next message as a dict, or None when the other side is gone."""
        while b"\n" not in self._buf:
            chunk = os.read(self.read_fd, 65536)
            if not chunk:
                return None
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return fastjson.loads(line.decode())

    def close(self):
        for fd in (self.read_fd, self.write_fd):
            try:
                os.close(fd)
            except OSError:
                pass
