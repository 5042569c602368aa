"""engine-py-logger started by the engine itself, for a container whose
output cannot go through a `binary://` URI: real containerd's shim (1.6)
gives a task no stdin when its output is a logging binary, so a container
with a stdin and no TTY gets FIFOs for stdout and stderr, which this logger
reads (DESIGN.md, "Interactive containers").

The logger runs in a session of its own, so a kill -9 of the engine leaves
it reading; its pid is kept in the container's run directory, so an engine
restarted meanwhile stops it as containerd's shim stops its own: SIGTERM
once the task is deleted (it drains what the FIFOs hold), SIGKILL after
LOGGER_STOP seconds.
"""
import fcntl
import os
import select
import signal
import threading

from engine.errors import System
from engine.logs import BINARY

LOGGER_STOP = 12  # seconds, containerd's binaryIOProcTermTimeout
PID_FILE = "logger.pid"
FIFOS = ("init-stdout", "init-stderr")

_children: dict[int, bool] = {}  # loggers started by this process: reaped here, not by init
_children_lock = threading.Lock()


def start(run_dir: str, options: dict[str, str]) -> tuple[str, str]:
    """FIFOs for the task's stdout and stderr in ``run_dir``, and a logger
    reading them (engine.logs.logger_options), ready when this returns."""
    args = [word for pair in options.items() for word in pair]
    paths = [os.path.join(run_dir, name) for name in FIFOS]
    opened: list[int] = []
    try:
        for path in paths:
            if os.path.exists(path):
                os.unlink(path)
            os.mkfifo(path, 0o600)
            opened.append(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC))  # no writer yet: no wait
        ready_r, ready_w = os.pipe()
        opened += [ready_r, ready_w]
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (opened[0], opened[1], ready_w)]
        opened += high
        pid = os.posix_spawn(BINARY, [BINARY, *args], {}, setsid=True, file_actions=[
            (os.POSIX_SPAWN_DUP2, high[0], 3), (os.POSIX_SPAWN_DUP2, high[1], 4), (os.POSIX_SPAWN_DUP2, high[2], 5)])
        with _children_lock:
            _children[pid] = True
        for fd in [fd for fd in opened if fd != ready_r]:  # the logger's ends are its own now
            os.close(fd)
            opened.remove(fd)
        os.read(ready_r, 1)  # b"" once the logger has its log open (or has died)
    except OSError as err:
        raise System(f"starting the logger in {run_dir}: {err}") from None
    finally:
        for fd in opened:
            os.close(fd)
    with open(os.path.join(run_dir, PID_FILE), "w") as f:
        f.write(str(pid))
    return paths[0], paths[1]


def stop(run_dir: str) -> None:
    """The task is deleted: the logger writes what the FIFOs hold and exits
    (SIGKILL after LOGGER_STOP seconds); its FIFOs go."""
    try:
        with open(os.path.join(run_dir, PID_FILE)) as f:
            pid = int(f.read())
    except (OSError, ValueError):
        return
    with _children_lock:
        ours = _children.pop(pid, False)  # an exited child of ours is a zombie, with no cmdline to check
    if ours or _is_logger(pid):
        _terminate(pid, ours)
    for name in (PID_FILE, *FIFOS):
        try:
            os.unlink(os.path.join(run_dir, name))
        except FileNotFoundError:
            pass


def _is_logger(pid: int) -> bool:
    """Still our logger, not a pid reused since an engine restart."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")[0] == BINARY.encode()
    except OSError:
        return False


def _terminate(pid: int, ours: bool) -> None:
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        pidfd = None
    try:
        os.kill(pid, signal.SIGTERM)
        if pidfd is not None and not select.select([pidfd], [], [], LOGGER_STOP)[0]:
            os.kill(pid, signal.SIGKILL)
            select.select([pidfd], [], [], LOGGER_STOP)
    except ProcessLookupError:
        pass
    finally:
        if pidfd is not None:
            os.close(pidfd)
    if ours:
        os.waitpid(pid, 0)
