"""A process's stdio as FIFOs in a private directory, copied from and to the
caller's streams by threads: what ctr does with containerd's cio package
(NewFIFOSetInDir, WithStreams). The daemon (or its shim) opens the FIFOs'
other ends by the paths in `stdio`."""
import os
import shutil
import tempfile
import threading
from typing import BinaryIO

from ..types import Stdio

_CHUNK = 32768


class FIFOs:
    def __init__(self, terminal: bool, stdin: BinaryIO | None, stdout: BinaryIO, stderr: BinaryIO):
        """With a terminal, stderr is joined to stdout (one pty) and gets no FIFO."""
        self.dir = tempfile.mkdtemp(prefix="containerd-py-ctl-")
        paths = {name: os.path.join(self.dir, name) for name in ("stdin", "stdout", "stderr")}
        self.stdio = Stdio(paths["stdin"] if stdin else "", paths["stdout"], "" if terminal else paths["stderr"],
                           terminal)
        for path in (self.stdio.stdin, self.stdio.stdout, self.stdio.stderr):
            if path:
                os.mkfifo(path, 0o600)
        # Read ends opened non-blocking (no writer yet), stdin read-write: no open ever waits.
        self._out = [(self._open_read(self.stdio.stdout), stdout)]
        if self.stdio.stderr:
            self._out.append((self._open_read(self.stdio.stderr), stderr))
        self._source = stdin
        self._in = os.open(self.stdio.stdin, os.O_RDWR) if stdin else -1
        self._threads: list[threading.Thread] = []

    @staticmethod
    def _open_read(path: str) -> int:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        os.set_blocking(fd, True)
        return fd

    def start(self) -> None:
        """Starts copying: only once the process runs, as a FIFO read before its writer opened it is EOF."""
        for fd, dest in self._out:
            t = threading.Thread(target=self._copy_out, args=(fd, dest), daemon=True)
            t.start()
            self._threads.append(t)
        if self._source is not None:
            threading.Thread(target=self._copy_in, daemon=True).start()

    @staticmethod
    def _copy_out(fd: int, dest: BinaryIO) -> None:
        try:
            while data := os.read(fd, _CHUNK):
                dest.write(data)
                dest.flush()
        except (OSError, ValueError):
            pass
        finally:
            os.close(fd)

    def _copy_in(self) -> None:
        """Reads the file descriptor itself: a daemon thread blocked in a buffered
        reader would hold its lock when the interpreter exits."""
        try:
            while data := os.read(self._source.fileno(), _CHUNK):
                os.write(self._in, data)
        except (OSError, ValueError):
            pass
        finally:
            self.close_stdin()

    def close_stdin(self) -> None:
        fd, self._in = self._in, -1
        if fd >= 0:
            os.close(fd)

    def wait(self, timeout: float = 10) -> None:
        """Until the process's output ends (every writer of the FIFOs closed)."""
        for t in self._threads:
            t.join(timeout)

    def close(self) -> None:
        self.close_stdin()
        shutil.rmtree(self.dir, ignore_errors=True)
