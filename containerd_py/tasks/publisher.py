"""The /tasks/* events, containerd's envelopes for what happens to tasks, built
here so the task manager states what happened and not how it is encoded."""
from ..api.containerd.events import task_pb2 as events
from ..events.exchange import Exchange
from ..convert import mount_to_proto, timestamp
from ..types import Mount
from .task import Process, Task


class TaskEvents:
    def __init__(self, exchange: Exchange):
        self._exchange = exchange

    def created(self, task: Task, rootfs: list[Mount]) -> None:
        io = task.init.io
        self._exchange.publish(task.ns, "/tasks/create", events.TaskCreate(
            container_id=task.id, bundle=task.bundle.path, pid=task.init.pid,
            rootfs=[mount_to_proto(m) for m in rootfs],
            io=events.TaskIO(stdin=io.stdin, stdout=io.stdout, stderr=io.stderr, terminal=io.terminal)))

    def started(self, p: Process) -> None:
        if p.exec_id:
            self._exchange.publish(p.task.ns, "/tasks/exec-started", events.TaskExecStarted(
                container_id=p.task.id, exec_id=p.exec_id, pid=p.pid))
        else:
            self._exchange.publish(p.task.ns, "/tasks/start", events.TaskStart(container_id=p.task.id, pid=p.pid))

    def exec_added(self, p: Process) -> None:
        self._exchange.publish(p.task.ns, "/tasks/exec-added", events.TaskExecAdded(container_id=p.task.id,
                                                                                    exec_id=p.exec_id))

    def oom(self, task: Task) -> None:
        self._exchange.publish(task.ns, "/tasks/oom", events.TaskOOM(container_id=task.id))

    def exited(self, p: Process) -> None:
        self._exchange.publish(p.task.ns, "/tasks/exit", events.TaskExit(
            container_id=p.task.id, id=p.id, pid=p.pid, exit_status=p.exit_status,
            exited_at=timestamp(p.exited_at)))

    def deleted(self, p: Process) -> None:
        self._exchange.publish(p.task.ns, "/tasks/delete", events.TaskDelete(
            container_id=p.task.id, id=p.id, pid=p.pid, exit_status=p.exit_status,
            exited_at=timestamp(p.exited_at)))

    def paused(self, task: Task, frozen: bool) -> None:
        if frozen:
            self._exchange.publish(task.ns, "/tasks/paused", events.TaskPaused(container_id=task.id))
        else:
            self._exchange.publish(task.ns, "/tasks/resumed", events.TaskResumed(container_id=task.id))
