"""A task and its processes as the daemon holds them, and the record of them
(`task.json`) that lets a restarted daemon find them again."""
from __future__ import annotations

import threading
from dataclasses import asdict

from .. import errors
from ..errors import q
from ..types import Stdio
from .bundle import Bundle
from .runtime import Runtime

CREATED, RUNNING, STOPPED, PAUSED = "created", "running", "stopped", "paused"


class Process:
    """A task's init (exec_id "") or an exec'd process, as its shim reports it."""

    def __init__(self, task: Task, exec_id: str, io: Stdio, pid: int = 0, started: bool = False, shim: int = 0):
        self.task, self.exec_id, self.io, self.pid, self.started, self.shim = task, exec_id, io, pid, started, shim
        self.exit_status, self.exited_at = 0, 0
        self._exited = threading.Event()

    @property
    def id(self) -> str:
        return self.exec_id or self.task.id

    @property
    def name(self) -> str:
        """Prefix of this process's files in the bundle."""
        return f"exec-{self.exec_id}" if self.exec_id else "init"

    def file(self, suffix: str) -> str:
        return self.task.bundle.file(f"{self.name}.{suffix}")

    def status(self) -> str:
        if self._exited.is_set():
            return STOPPED
        if not self.started:
            return CREATED
        return PAUSED if self.task.paused else RUNNING

    def set_exited(self, status: int, at: int) -> None:
        self.exit_status, self.exited_at = status, at
        self._exited.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._exited.wait(timeout)

    def record(self) -> dict:
        return {"io": asdict(self.io), "pid": self.pid, "started": self.started, "shim": self.shim}


class Task:
    def __init__(self, ns: str, container_id: str, bundle: Bundle, runtime: Runtime, io: Stdio, no_pivot: bool):
        self.ns, self.id, self.bundle, self.runtime, self.no_pivot = ns, container_id, bundle, runtime, no_pivot
        self.paused = False
        self.memory_cgroup = ""  # where its OOM kills are counted (found once the init exists)
        self.init = Process(self, "", io)
        self.execs: dict[str, Process] = {}
        self.lock = threading.RLock()
        # Held from a start to its event, and from an exit to its event: a process that exits at
        # once is still reported started before it is reported gone.
        self.events_lock = threading.Lock()

    def process(self, exec_id: str) -> Process:
        if not exec_id:
            return self.init
        try:
            return self.execs[exec_id]
        except KeyError:
            raise errors.NotFound(f"process {q(exec_id)}") from None

    def processes(self) -> list[Process]:
        return [self.init, *self.execs.values()]

    def save(self) -> None:
        """Rewrites task.json: what a restarted daemon needs to find the task again."""
        self.bundle.save_record({
            "namespace": self.ns, "id": self.id, "binary": self.runtime.binary, "root": self.runtime.root,
            "no_pivot": self.no_pivot, "paused": self.paused, "memory_cgroup": self.memory_cgroup,
            "init": self.init.record(), "execs": {k: p.record() for k, p in self.execs.items()}})

    @classmethod
    def load(cls, bundle: Bundle) -> Task:
        """The task a bundle's task.json records (OSError, ValueError or KeyError when it cannot be read)."""
        data = bundle.load_record()
        init = data["init"]
        task = cls(data["namespace"], data["id"], bundle, Runtime(data["binary"], data["root"]), Stdio(**init["io"]),
                   data["no_pivot"])
        task.paused, task.memory_cgroup = data["paused"], data["memory_cgroup"]
        task.init.pid, task.init.started, task.init.shim = init["pid"], init["started"], init["shim"]
        for exec_id, rec in data["execs"].items():
            task.execs[exec_id] = Process(task, exec_id, Stdio(**rec["io"]), rec["pid"], rec["started"], rec["shim"])
        return task
