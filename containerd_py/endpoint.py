"""The daemon's main endpoint: a unix socket it claims only when nobody serves
it, and removes only while it is still its own.

containerd unlinks whatever is at its address before listening, so a second
daemon silently takes the socket over and, when it exits, leaves the first
one unreachable. Here a socket somebody answers on is refused, naming who;
one nobody listens on (left by a daemon that died) is replaced. Claim and
removal happen under an flock on the socket's directory, so two daemons
starting at once cannot both take a stale socket for theirs.
"""
import fcntl
import os
import socket
import stat
import struct
from contextlib import contextmanager
from typing import Callable

_LISTENER = "failed to get listener for main endpoint"


class StartupError(Exception):
    """The daemon cannot start; the message is its one line for the user."""


def describe_os_error(e: OSError, op: str = "", path: str | None = None) -> str:
    """Go's wording (`mkdir /x: permission denied`), which containerd's messages use."""
    reason = (e.strerror or str(e)).lower()
    subject = " ".join(p for p in (op, path or e.filename) if p)
    return f"{subject}: {reason}" if subject else reason


def _peer(sock: socket.socket) -> str:
    """Who listens at the other end: `pid 123, containerd` (the pid may be unknown across pid namespaces)."""
    pid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))[0]
    if pid <= 0:
        return "pid unknown"
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f"pid {pid}, {f.read().strip()}"
    except OSError:
        return f"pid {pid}"


@contextmanager
def _directory_locked(directory: str):
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class Endpoint:
    def __init__(self, path: str):
        self.path = path
        self._identity: tuple[int, int] | None = None  # (st_dev, st_ino) of the socket file we made

    def refuse_if_served(self) -> bool:
        """Raises StartupError when another daemon answers at the address (or
        something not a socket is there); True when a stale socket is there."""
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return False
        except OSError as e:
            raise StartupError(f"{_LISTENER}: {describe_os_error(e, 'lstat')}") from None
        if not stat.S_ISSOCK(st.st_mode):
            raise StartupError(f"{_LISTENER}: {self.path} exists and is not a socket")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC) as probe:
            try:
                probe.connect(self.path)
            except ConnectionRefusedError:
                return True
            except BlockingIOError:  # a full backlog: somebody listens
                raise StartupError(f"{_LISTENER}: address {self.path} is in use by another daemon") from None
            except OSError as e:
                raise StartupError(f"{_LISTENER}: {describe_os_error(e, 'dial unix', self.path)}") from None
            raise StartupError(f"{_LISTENER}: address {self.path} is in use by another daemon ({_peer(probe)})")

    def claim(self, listen: Callable[[str], None], uid: int, gid: int) -> None:
        """Replaces a stale socket, then `listen(path)` binds a new one, owned by uid:gid, mode 0660."""
        step = "lock the directory of"
        try:
            with _directory_locked(os.path.dirname(self.path)):
                if self.refuse_if_served():
                    step = "remove stale"
                    os.unlink(self.path)
                step = "listen unix"
                listen(self.path)
                st = os.lstat(self.path)
                self._identity = (st.st_dev, st.st_ino)
            step = "chmod"
            os.chmod(self.path, 0o660)
            step = "chown"
            os.chown(self.path, uid, gid)
        except OSError as e:
            self.release()
            raise StartupError(f"{_LISTENER}: {describe_os_error(e, step, self.path)}") from None

    def release(self) -> None:
        """Removes the socket if it is still the one `claim` made (another daemon may have replaced it)."""
        if self._identity is None:
            return
        try:
            with _directory_locked(os.path.dirname(self.path)):
                st = os.lstat(self.path)
                if (st.st_dev, st.st_ino) == self._identity:
                    os.unlink(self.path)
        except FileNotFoundError:
            pass  # removed by someone else, with its directory perhaps
        self._identity = None
