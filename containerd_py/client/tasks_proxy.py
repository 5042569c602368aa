"""The tasks service: the running side of containers, and the processes exec'd in them."""
from __future__ import annotations

import json
from dataclasses import dataclass

from google.protobuf import any_pb2

from ..api.containerd.services import tasks_pb2
from ..convert import any_to_proto, mount_to_proto, nanoseconds, process_from_proto
from ..types import AnyValue, Mount, ProcessState, Stdio
from .connection import Connection, mapped

PROCESS_TYPE = "types.containerd.io/opencontainers/runtime-spec/1/Process"
RESOURCES_TYPE = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources"


@dataclass
class Exit:
    status: int
    exited_at: int  # nanoseconds since the epoch


class TasksProxy:
    """Calls name the container; exec_id "" is its task's init process."""

    def __init__(self, conn: Connection):
        self._conn = conn
        self._stub = conn.stub(tasks_pb2, "Tasks")

    @mapped
    def create(self, ns: str, container_id: str, rootfs: list[Mount], stdio: Stdio,
               options: AnyValue | None = None) -> int:
        """The task's pid: created, not yet started."""
        request = tasks_pb2.CreateTaskRequest(
            container_id=container_id, rootfs=[mount_to_proto(m) for m in rootfs], stdin=stdio.stdin,
            stdout=stdio.stdout, stderr=stdio.stderr, terminal=stdio.terminal,
            options=any_to_proto(options) if options is not None else None)
        return self._stub.Create(request, metadata=self._conn.md(ns)).pid

    @mapped
    def start(self, ns: str, container_id: str, exec_id: str = "") -> int:
        request = tasks_pb2.StartRequest(container_id=container_id, exec_id=exec_id)
        return self._stub.Start(request, metadata=self._conn.md(ns)).pid

    @mapped
    def exec(self, ns: str, container_id: str, exec_id: str, process: dict, stdio: Stdio) -> None:
        """Adds a process (a runtime-spec process object) to the task; start() runs it."""
        request = tasks_pb2.ExecProcessRequest(
            container_id=container_id, exec_id=exec_id, stdin=stdio.stdin, stdout=stdio.stdout,
            stderr=stdio.stderr, terminal=stdio.terminal,
            spec=any_pb2.Any(type_url=PROCESS_TYPE, value=json.dumps(process).encode()))
        self._stub.Exec(request, metadata=self._conn.md(ns))

    @mapped
    def wait(self, ns: str, container_id: str, exec_id: str = "") -> Exit:
        response = self._stub.Wait(tasks_pb2.WaitRequest(container_id=container_id, exec_id=exec_id),
                                   metadata=self._conn.md(ns))
        return Exit(response.exit_status, nanoseconds(response.exited_at))

    @mapped
    def kill(self, ns: str, container_id: str, signal: int, all_: bool = False, exec_id: str = "") -> None:
        request = tasks_pb2.KillRequest(container_id=container_id, exec_id=exec_id, signal=signal, all=all_)
        self._stub.Kill(request, metadata=self._conn.md(ns))

    @mapped
    def delete(self, ns: str, container_id: str, exec_id: str = "") -> Exit:
        """Removes a stopped task (exec_id "") or one of its stopped exec'd processes."""
        if exec_id:
            response = self._stub.DeleteProcess(tasks_pb2.DeleteProcessRequest(
                container_id=container_id, exec_id=exec_id), metadata=self._conn.md(ns))
        else:
            response = self._stub.Delete(tasks_pb2.DeleteTaskRequest(container_id=container_id),
                                         metadata=self._conn.md(ns))
        return Exit(response.exit_status, nanoseconds(response.exited_at))

    @mapped
    def get(self, ns: str, container_id: str, exec_id: str = "") -> ProcessState:
        response = self._stub.Get(tasks_pb2.GetRequest(container_id=container_id, exec_id=exec_id),
                                  metadata=self._conn.md(ns))
        return process_from_proto(response.process)

    @mapped
    def list(self, ns: str) -> list[ProcessState]:
        return [process_from_proto(p) for p in self._stub.List(tasks_pb2.ListTasksRequest(),
                                                               metadata=self._conn.md(ns)).tasks]

    @mapped
    def resize_pty(self, ns: str, container_id: str, exec_id: str, width: int, height: int) -> None:
        request = tasks_pb2.ResizePtyRequest(container_id=container_id, exec_id=exec_id, width=width,
                                             height=height)
        self._stub.ResizePty(request, metadata=self._conn.md(ns))

    @mapped
    def close_io(self, ns: str, container_id: str, exec_id: str = "") -> None:
        """Tells the process its stdin has ended."""
        request = tasks_pb2.CloseIORequest(container_id=container_id, exec_id=exec_id, stdin=True)
        self._stub.CloseIO(request, metadata=self._conn.md(ns))

    @mapped
    def pause(self, ns: str, container_id: str) -> None:
        self._stub.Pause(tasks_pb2.PauseTaskRequest(container_id=container_id), metadata=self._conn.md(ns))

    @mapped
    def resume(self, ns: str, container_id: str) -> None:
        self._stub.Resume(tasks_pb2.ResumeTaskRequest(container_id=container_id), metadata=self._conn.md(ns))

    @mapped
    def update(self, ns: str, container_id: str, resources: dict) -> None:
        """New cgroup limits (a runtime-spec linux.resources object) for a running task."""
        request = tasks_pb2.UpdateTaskRequest(
            container_id=container_id,
            resources=any_pb2.Any(type_url=RESOURCES_TYPE, value=json.dumps(resources).encode()))
        self._stub.Update(request, metadata=self._conn.md(ns))
