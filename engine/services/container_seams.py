"""What the container service stands on beside containerd: the runtimes
table, docker's signal names, the seam to logging (a task's stdio and the
LogConfig of a create) with the plain-file sink the tests and a bare
service use until the json-file logger (engine/logs/sink.py) plugs in, the
exec service's side of the exit watch, and the host as the spec generator
sees it with an image's files."""
import os
import shutil
import signal
import sys
from typing import Protocol

from containerd_py.types import Stdio

from engine import oci
from engine.containerd.tasks import ExecExit
from engine.errors import InvalidParameter
from engine.store import Container, ContainerStore

DEFAULT_RUNTIME = "runpy-oci"


def installed_runtimes() -> dict[str, str]:
    """The runtimes table: runpy-oci (the default), and runc and crun where installed."""
    found = {DEFAULT_RUNTIME: shutil.which(DEFAULT_RUNTIME) or os.path.join(os.path.dirname(sys.executable),
                                                                          DEFAULT_RUNTIME)}
    for name in ("runc", "crun"):
        if path := shutil.which(name, path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"):
            found[name] = path
    return found


def parse_signal(text: str | int) -> int:
    """A signal as docker takes it: a number, or a name with or without SIG
    ("KILL", "SIGKILL", "sigterm")."""
    text = str(text).strip()
    if text.isdigit():
        number = int(text)
        if number == 0 or number >= signal.NSIG:
            raise InvalidParameter(f"Invalid signal: {text}")
        return number
    name = text.upper()
    name = name if name.startswith("SIG") else "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise InvalidParameter(f"Invalid signal: {text}") from None


# -- where a task's output goes ----------------------------------------------------


class LogSink(Protocol):
    """The seam between containers and logging: ``stdio`` names where the
    shim sends a task's output (paths or URIs such as ``file://`` and
    ``binary://``, which the shim opens itself, so output never depends on
    the engine being up); ``closed`` is called once the task is gone.
    ``configure`` completes a create's HostConfig (LogConfig) or refuses it;
    ``removed`` is called once the container is gone."""

    def configure(self, host_config: dict) -> dict: ...

    def stdio(self, record: Container) -> Stdio: ...

    def closed(self, record: Container) -> None: ...

    def removed(self, record: Container) -> None: ...


class FileLogSink:
    """The default until the json-file logger plugs in: stdout and stderr
    appended raw to files in the container's directory."""

    def __init__(self, store: ContainerStore):
        self.store = store

    def configure(self, host_config: dict) -> dict:
        return host_config

    def stdio(self, record: Container) -> Stdio:
        directory = self.store.container_dir(record.id)
        tty = bool(record.config.get("Tty"))
        return Stdio("", f"file://{directory}/stdout.log", "" if tty else f"file://{directory}/stderr.log", tty)

    def closed(self, record: Container) -> None:
        pass

    def removed(self, record: Container) -> None:
        pass


class RootfsHost:
    """The machine as the spec generator sees it, with the image's files
    (/etc/passwd, /etc/group) read from the container's mounted snapshot."""

    def __init__(self, host: oci.Host, mounted: str):
        self._host, self._mounted = host, mounted

    def __getattr__(self, name):
        return getattr(self._host, name)

    def read_rootfs_file(self, rootfs: str, path: str) -> bytes | None:
        return self._host.read_rootfs_file(self._mounted, path)


class ExecExits(Protocol):
    """The exec service's side of the exit watch: the exits of exec'd
    processes, and a reconcile of its own after containerd was away."""

    def exited(self, event: ExecExit) -> None: ...

    def reconcile(self) -> None: ...
