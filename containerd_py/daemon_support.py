"""What every daemon of the stack (containerd-py, engine-py) needs around its
server: a lock on its root, the directories a start made (removed when the
start fails), logrus' log format, and a wait for SIGTERM/SIGINT that any
thread's delivery ends."""
import fcntl
import logging
import os
import select
import shutil
import signal
import time

from .endpoint import StartupError, describe_os_error


class RootLock:
    """An exclusive flock on <root>/<daemon>.lock, held for the daemon's life:
    a second daemon on the same root is refused, naming the holder's pid."""

    def __init__(self, root: str, daemon: str, what: str = "root"):
        self.path = os.path.join(root, f"{daemon}.lock")
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise StartupError(describe_os_error(e, "open")) from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._fd, 32, 0).decode(errors="replace").strip()
            os.close(self._fd)
            raise StartupError(f"{what} {root} is in use by another {daemon} (pid {holder or 'unknown'})") from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        os.close(self._fd)


class MadeDirectories:
    """The directories a start creates, removed again when the start fails: a
    daemon that cannot start (as non-root, say) leaves nothing behind."""

    def __init__(self):
        self._made: list[str] = []

    def create(self, path: str) -> None:
        missing = []
        while not os.path.isdir(path):
            missing.append(path)
            path = os.path.dirname(path)
        for path in reversed(missing):
            try:
                os.mkdir(path, 0o711)
            except FileExistsError:
                if not os.path.isdir(path):
                    raise StartupError(f"mkdir {path}: not a directory") from None
                continue  # made meanwhile by someone else: theirs
            except OSError as e:
                raise StartupError(describe_os_error(e, "mkdir")) from None
            self._made.append(path)

    def remove(self, with_contents: bool) -> None:
        """Only empty ones unless `with_contents` (once the root lock proves the contents ours)."""
        for path in reversed(self._made):
            if with_contents:
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    os.rmdir(path)
                except OSError:
                    pass


class LogrusFormatter(logging.Formatter):
    """logrus' text format, which containerd logs in; `extra={"fields": {...}}` adds key=value pairs."""

    def format(self, record):
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        level = {"WARNING": "warning", "CRITICAL": "fatal"}.get(record.levelname, record.levelname.lower())
        msg = record.getMessage()
        if record.exc_info:
            msg += " " + self.formatException(record.exc_info)
        fields = "".join(f" {key}={_logfmt(str(value))}" for key, value in getattr(record, "fields", {}).items())
        return f'time="{ts}.{int(record.created % 1 * 1e9):09d}Z" level={level} msg={_logfmt(msg, always=True)}{fields}'


def _logfmt(value: str, always: bool = False) -> str:
    """Quoted as logrus quotes a value: when it has more than [A-Za-z0-9-._/@^+] (the message always)."""
    if not always and value and all(c.isalnum() and c.isascii() or c in "-._/@^+" for c in value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class Signals:
    """SIGTERM and SIGINT, waited for in the main thread. The kernel may deliver
    a signal to any thread, and CPython does not wake a main thread blocked on
    a lock for one that another thread took (its handler would run only once
    the main thread wakes for some other reason), so the wait is a select on
    the signal wakeup fd, which the C-level handler writes whichever thread it runs in."""

    NAMES = {signal.SIGTERM: "terminated", signal.SIGINT: "interrupt"}

    def __init__(self):
        self._wakeup, write_end = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(write_end)
        self.received: int | None = None
        for sig in self.NAMES:
            signal.signal(sig, self._caught)

    def _caught(self, signum, frame) -> None:
        self.received = signum

    def wait(self) -> str:
        """Blocks until one of them comes; its name as dockerd logs it."""
        while self.received is None:
            select.select([self._wakeup], [], [])
            try:
                os.read(self._wakeup, 512)
            except BlockingIOError:
                pass
        return self.NAMES[self.received]
