"""An exec's stdio: FIFOs under the engine's exec-root that containerd's
shim opens by path, relayed by the engine to the client that started the
exec (or drained and dropped for a detached one), as dockerd's exec streams
are. Exec output is never logged.

The output is relayed until it ends and the exit has been recorded, or for
at most DRAIN_AFTER_EXIT seconds after the exit (a child left in the
background may hold the FIFO open), as dockerd waits for an exec's streams.
The client's end of the attach finishes earlier when it detaches (its
detach keys with a TTY, or the end of its input with a TTY, as dockerd);
the output is drained meanwhile, so the process never blocks on it.
"""
import logging
import os
import select
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from containerd_py.types import Stdio

from engine.errors import InvalidParameter

log = logging.getLogger(__name__)

DRAIN_AFTER_EXIT = 2.0  # seconds, dockerd's wait for an exec's streams after its exit
DEFAULT_DETACH_KEYS = b"\x10\x11"  # ctrl-p,ctrl-q
_CHUNK = 32768
_CONTROL_KEYS = ["ctrl-@"] + [f"ctrl-{c}" for c in "abcdefghijklmnopqrstuvwxyz"] + \
                ["ctrl-[", "ctrl-\\", "ctrl-]", "ctrl-^", "ctrl-_"]


def detach_key_bytes(keys: str) -> bytes:
    """moby/term's ToBytes: "ctrl-p,ctrl-q", single characters, "DEL"."""
    codes = bytearray()
    for key in keys.split(","):
        if len(key) == 1:
            codes += key.encode()[:1]
        elif key in _CONTROL_KEYS:
            codes.append(_CONTROL_KEYS.index(key))
        elif key == "DEL":
            codes.append(127)
        else:
            raise InvalidParameter(f"Invalid escape keys ({keys}) provided")
    return bytes(codes)


@dataclass
class Attached:
    """The client's side: ``read`` its input (b"" at its end), ``stdout`` and
    ``stderr`` take output (framed by the caller as the API wants it); any
    may be None."""
    read: Callable[[int], bytes] | None = None
    stdout: Callable[[bytes], None] | None = None
    stderr: Callable[[bytes], None] | None = None


class EscapeFilter:
    """Passes input on until the detach keys come in a row (moby's escapeProxy):
    bytes that begin the sequence are held until it is complete or broken."""

    def __init__(self, keys: bytes):
        self.keys, self.held = keys, b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """What to pass on, and whether the keys were typed."""
        out = bytearray()
        for byte in data:
            candidate = self.held + bytes([byte])
            if self.keys.startswith(candidate):
                if candidate == self.keys:
                    return bytes(out), True
                self.held = candidate
            else:
                out += candidate
                self.held = b""
        return bytes(out), False


class ExecIO:
    """The FIFOs of one exec and the threads that relay them."""

    def __init__(self, directory: str, stdin: bool, tty: bool):
        """``stdin``: the client sends input (a FIFO for it is made only then, as dockerd's)."""
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self.directory, self.tty = directory, tty
        paths = {name: os.path.join(directory, name) for name in ("stdin", "stdout", "stderr")}
        self.stdio = Stdio(paths["stdin"] if stdin else "", paths["stdout"], "" if tty else paths["stderr"], tty)
        self._outputs: dict[int, str] = {}
        self._stdin = -1
        self._wake_r, self._wake_w = os.pipe()
        self._exited_at: float | None = None
        self._sinks: dict[str, Callable[[bytes], None] | None] = {"stdout": None, "stderr": None}
        self._lock = threading.Lock()
        self.detached = threading.Event()  # the client's attach is over (also set when the relay ends)
        try:
            for name in ("stdin", "stdout", "stderr"):
                if getattr(self.stdio, name):
                    os.mkfifo(paths[name], 0o600)
            # Read ends non-blocking (no writer yet is fine); stdin read-write, so no open waits for the shim.
            for name in ("stdout", "stderr"):
                if getattr(self.stdio, name):
                    self._outputs[os.open(paths[name], os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)] = name
            if stdin:
                self._stdin = os.open(paths["stdin"], os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            self.close()
            raise

    def relay(self, client: Attached | None, detach_keys: bytes, input_ended: Callable[[], None]) -> None:
        """Starts relaying (the process runs): output to ``client`` (dropped
        without one), the client's input to the process; ``input_ended`` is
        called once its input has ended."""
        if client is not None:
            self._sinks = {"stdout": client.stdout, "stderr": client.stderr}
        if self._stdin >= 0:
            # From now on only the process reads the FIFO: a write once it has gone fails instead of waiting.
            writer = os.open(self.stdio.stdin, os.O_WRONLY | os.O_CLOEXEC)
            os.close(self._stdin)
            self._stdin = -1
            threading.Thread(target=self._copy_in, args=(client.read, writer, detach_keys, input_ended),
                             name="exec-stdin", daemon=True).start()
        threading.Thread(target=self._copy_out, name="exec-output", daemon=True).start()

    def exited(self) -> None:
        """The process's exit is recorded: what is left of its output has DRAIN_AFTER_EXIT seconds."""
        with self._lock:
            self._exited_at = time.monotonic()
            if self._wake_w >= 0:
                os.write(self._wake_w, b"x")

    def close(self) -> None:
        """The FIFOs and their directory go (the relay's end, or a start that failed)."""
        with self._lock:
            for fd in [*self._outputs, self._stdin, self._wake_r, self._wake_w]:
                if fd >= 0:
                    os.close(fd)
            self._outputs.clear()
            self._stdin = self._wake_r = self._wake_w = -1
        shutil.rmtree(self.directory, ignore_errors=True)
        self.detached.set()

    def _detach(self) -> None:
        """The client's attach ends; the output is drained and dropped from now on."""
        with self._lock:
            self._sinks = {"stdout": None, "stderr": None}
        self.detached.set()

    def _copy_out(self) -> None:
        poller = select.poll()
        for fd in [*self._outputs, self._wake_r]:
            poller.register(fd, select.POLLIN)
        try:
            while True:
                with self._lock:
                    exited_at = self._exited_at
                if exited_at is not None:
                    left = exited_at + DRAIN_AFTER_EXIT - time.monotonic()
                    if not self._outputs or left <= 0:
                        return
                    timeout = left * 1000
                else:
                    timeout = None
                for fd, _events in poller.poll(timeout):
                    if fd == self._wake_r:
                        os.read(fd, 512)
                    elif not self._read_output(fd):
                        poller.unregister(fd)
                        os.close(fd)
                        del self._outputs[fd]
        finally:
            self.close()

    def _read_output(self, fd: int) -> bool:
        """One read of an output FIFO, sent on; False at its end."""
        try:
            data = os.read(fd, _CHUNK)
        except BlockingIOError:
            return True
        if not data:
            return False
        with self._lock:
            sink = self._sinks[self._outputs[fd]]
        if sink is not None:
            try:
                sink(data)
            except OSError:  # the client has gone: the output is drained all the same
                self._detach()
        return True

    def _copy_in(self, read: Callable[[int], bytes], writer: int, detach_keys: bytes,
                 input_ended: Callable[[], None]) -> None:
        """The client's input to the process. With a TTY its detach keys end
        the attach, and so does the end of its input (as dockerd); without,
        the end of its input is the process's EOF."""
        escape = EscapeFilter(detach_keys) if self.tty else None
        try:
            while data := read(_CHUNK):
                if escape is not None:
                    data, detached = escape.feed(data)
                    if detached:
                        break
                if data:
                    os.write(writer, data)
        except OSError as err:
            log.debug("exec input: %s", err)
        finally:
            os.close(writer)
        if self.tty:
            self._detach()
        else:
            input_ended()
