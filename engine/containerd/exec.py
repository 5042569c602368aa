"""Processes exec'd in a container's task, for the exec service: the calls
dockerd's libcontainerd makes for ``docker exec``, through containerd_py's
client library, with containerd's errors turned into the engine's.

An exec is named by its container and its exec ID; its exit comes as a
/tasks/exit event whose ID is the exec ID (engine.containerd.tasks'
``task_events`` yields it as an ExecExit), or from ``state`` after a gap.
"""
import json

from containerd_py import errors as cerrors
from containerd_py.client import Client
from containerd_py.types import ProcessState, Stdio

from engine.containerd.tasks import engine_errors
from engine.errors import NotFound


class ContainerdExecs:
    def __init__(self, client: Client):
        self.client = client

    def container_process(self, container_id: str) -> dict:
        """The process object of the container's spec, which an exec starts from (as dockerd does)."""
        with engine_errors():
            spec = self.client.containers.get(container_id).spec
        return json.loads(spec.value)["process"]

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

    def close_stdin(self, container_id: str, exec_id: str) -> None:
        """Tells containerd the process's input has ended (its FIFO is closed already)."""
        try:
            self.client.tasks.close_io(container_id, exec_id)
        except cerrors.Error:
            pass  # the process has gone: nothing reads its input any more

    def resize(self, container_id: str, exec_id: str, width: int, height: int) -> None:
        with engine_errors():
            self.client.tasks.resize_pty(container_id, exec_id, width, height)
