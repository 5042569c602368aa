"""Processes exec'd in a container's task, for the exec service: the calls
dockerd's libcontainerd makes for ``docker exec``, through containerd_py's
client library, with containerd's errors turned into the engine's.

An exec is named by its container and its exec ID; its exit comes as a
/tasks/exit event whose ID is the exec ID (engine.containerd.tasks'
``task_events`` yields it as an ExecExit), or from ``state`` after a gap.
"""
import json
import threading

from containerd_py import errors as cerrors
from containerd_py.client import Client
from containerd_py.types import ProcessState, Stdio

from engine.containerd.tasks import engine_errors
from engine.errors import NotFound


SPECS_KEPT = 64  # containers whose spec is kept for their next exec


class ContainerdExecs:
    def __init__(self, client: Client):
        self.client = client
        self._specs: dict[str, tuple[int, bytes]] = {}  # container ID -> (its task's pid, its spec), oldest first
        self._lock = threading.Lock()

    def container_process(self, container_id: str, task_pid: int) -> dict:
        """The process object of the container's spec, which an exec starts
        from (as dockerd does). Fetched once per run of the container (its
        task's ``task_pid``): a round trip was ~1.5 ms of every exec."""
        with self._lock:
            kept = self._specs.get(container_id)
        if kept is not None and kept[0] == task_pid:
            return json.loads(kept[1])["process"]
        with engine_errors():
            spec = self.client.containers.get(container_id).spec.value
        with self._lock:
            self._specs.pop(container_id, None)
            self._specs[container_id] = (task_pid, spec)
            while len(self._specs) > SPECS_KEPT:
                del self._specs[next(iter(self._specs))]
        return json.loads(spec)["process"]

    def start(self, container_id: str, exec_id: str, process: dict, stdio: Stdio) -> int:
        """Adds the process to the container's task and runs it; its pid.
        A process that could not start is removed again."""
        with engine_errors():
            self.client.tasks.exec(container_id, exec_id, process, stdio)
        try:
            with engine_errors():
                return self.client.tasks.start(container_id, exec_id)
        except BaseException:
            self.delete(container_id, exec_id)
            raise

    def state(self, container_id: str, exec_id: str) -> ProcessState | None:
        """The process's state; None when containerd knows it no more."""
        try:
            with engine_errors():
                return self.client.tasks.get(container_id, exec_id)
        except NotFound:
            return None

    def delete(self, container_id: str, exec_id: str) -> None:
        """Removes a stopped process (what is gone already is skipped)."""
        try:
            with engine_errors():
                self.client.tasks.delete(container_id, exec_id)
        except NotFound:
            pass

    def kill(self, container_id: str, exec_id: str, signal: int) -> None:
        """Signals the exec'd process (a health check over its timeout)."""
        with engine_errors():
            self.client.tasks.kill(container_id, signal, exec_id=exec_id)

    def close_stdin(self, container_id: str, exec_id: str) -> None:
        """Tells containerd the process's input has ended (its FIFO is closed already)."""
        try:
            self.client.tasks.close_io(container_id, exec_id)
        except cerrors.Error:
            pass  # the process has gone: nothing reads its input any more

    def resize(self, container_id: str, exec_id: str, width: int, height: int) -> None:
        with engine_errors():
            self.client.tasks.resize_pty(container_id, exec_id, width, height)
