"""The task manager, as containerd's runtime/v2 task manager: the task verbs of the
Tasks service over runtimes (runtime.py), bundles (bundle.py) and shims
(shim_manager.py), with their events (publisher.py) and the tasks a restarted
daemon finds again (see DESIGN.md)."""
from __future__ import annotations

import json
import logging
import os
import signal
import threading

from .. import errors
from ..containers import Containers
from ..errors import q
from ..events.exchange import Exchange
from ..filters import Filter
from ..types import AnyValue, Mount, Stdio
from . import crashpoints, runtime as runtimes
from .bundle import Bundle
from .oom import memory_cgroup, oom_kills
from .publisher import TaskEvents
from .shim_manager import ShimManager
from .task import CREATED, PAUSED, RUNNING, STOPPED, Process, Task

log = logging.getLogger(__name__)


class TaskManager:
    def __init__(self, state: str, containers: Containers, exchange: Exchange, default_binary: str):
        self._state, self._containers, self._default_binary = state, containers, default_binary
        self._events = TaskEvents(exchange)
        self._shims = ShimManager(self._exited)
        self._tasks: dict[tuple[str, str], Task] = {}
        self._lock = threading.Lock()
        containers.register_user(lambda ns, cid: (ns, cid) in self._tasks)

    # -- lookup

    def _task(self, ns: str, container_id: str) -> Task:
        try:
            return self._tasks[(ns, container_id)]
        except KeyError:
            raise errors.NotFound(f"task {q(container_id)}") from None

    def get(self, ns: str, container_id: str, exec_id: str = "") -> Process:
        return self._task(ns, container_id).process(exec_id)

    def list(self, ns: str) -> list[Process]:
        return [t.init for (tns, _), t in sorted(self._tasks.items()) if tns == ns]

    def select(self, ns: str, filters: list[str]) -> list[Process]:
        """The inits of the namespace's tasks that match containerd-style filters (fields id, status, pid)."""
        selector = Filter(filters)

        def fields(p: Process):
            values = {("id",): p.task.id, ("status",): p.status(), ("pid",): str(p.pid)}
            return values.get
        return [p for p in self.list(ns) if selector.match(fields(p))]

    # -- the task's init

    def create(self, ns: str, container_id: str, rootfs: list[Mount], io: Stdio, options: AnyValue | None) -> Process:
        container = self._containers.get(ns, container_id)
        if container.spec is None:
            raise errors.InvalidArgument(f"container {q(container_id)} has no spec")
        try:
            spec = json.loads(container.spec.value)
        except ValueError as e:
            raise errors.InvalidArgument(f"container {q(container_id)}: spec is not valid JSON: {e}") from None
        if not isinstance(spec, dict):
            raise errors.InvalidArgument(f"container {q(container_id)}: spec is not a JSON object")
        runtime, no_pivot = runtimes.choose(container.runtime, options if options is not None
                                            else container.runtime_options, ns, self._state, self._default_binary)
        bundle = Bundle.of(self._state, ns, container_id)
        with self._lock:
            if (ns, container_id) in self._tasks:
                raise errors.AlreadyExists(f"task {q(container_id)}")
            task = Task(ns, container_id, bundle, runtime, io, no_pivot)
            self._tasks[(ns, container_id)] = task
        try:
            with task.lock:
                bundle.create(container_id, spec, rootfs)
                os.makedirs(runtime.root, mode=0o711, exist_ok=True)
                crashpoints.reached("bundle-made")
                self._shims.start(task.init, task.save)
                crashpoints.reached("shim-reported")
                task.memory_cgroup = memory_cgroup(task.init.pid)
                task.save()
                crashpoints.reached("created")
        except BaseException:
            self._discard(task)
            raise
        self._events.created(task, rootfs)
        return task.init

    def _exited(self, p: Process, status: int, at: int) -> None:
        """A shim has ended: /tasks/oom first if the kernel counted OOM kills in the init's cgroup."""
        with p.task.events_lock:
            if not p.exec_id and p.task.memory_cgroup and oom_kills(p.task.memory_cgroup):
                self._events.oom(p.task)
            p.set_exited(status, at)
            self._events.exited(p)

    def start(self, ns: str, container_id: str, exec_id: str = "") -> Process:
        task = self._task(ns, container_id)
        with task.lock, task.events_lock:
            p = task.process(exec_id)
            if p.started or p.status() == STOPPED:
                raise errors.FailedPrecondition(f"process {q(p.id)}: already started")
            if exec_id:
                if task.init.status() not in (RUNNING, PAUSED):
                    raise errors.FailedPrecondition(f"task {q(container_id)} is not running")
                self._shims.start(p, task.save)
                crashpoints.reached("exec-shim-reported")
            else:
                task.runtime.start(container_id)
                crashpoints.reached("started")
            p.started = True
            task.save()
            self._events.started(p)
        return p

    def delete(self, ns: str, container_id: str) -> Process:
        task = self._task(ns, container_id)
        with task.lock:
            status = task.init.status()
            if status in (RUNNING, PAUSED):
                raise errors.FailedPrecondition(f"task {q(container_id)} must be stopped before deletion: {status}")
            self._remove(task)
        self._events.deleted(task.init)
        return task.init

    def _remove(self, task: Task) -> None:
        """Undoes a task: the runtime's container (killing what is left), the rootfs mount, the bundle."""
        try:
            task.runtime.delete(task.id, force=True)
        except errors.Error as e:
            log.warning("deleting task %s: %s", task.id, e)
        for p in task.processes():
            if p.pid and not p.wait(timeout=10):
                log.warning("task %s: process %s did not exit after delete", task.id, p.id)
        self._discard(task)

    def _discard(self, task: Task) -> None:
        task.bundle.delete()
        with self._lock:
            self._tasks.pop((task.ns, task.id), None)

    def kill(self, ns: str, container_id: str, exec_id: str, sig: int, all_: bool) -> None:
        """A signal to one process, the init as an exec, goes to its pid: the
        runtime's `kill` of it is that kill(2), and spawning the runtime was
        ~50 ms of every stop. Only --all (every process of the container's
        cgroup) needs the runtime."""
        task = self._task(ns, container_id)
        p = task.process(exec_id)
        if p.status() == STOPPED:
            raise errors.NotFound(f"process {q(p.id)}: process already finished")
        if exec_id and p.pid <= 0:
            raise errors.FailedPrecondition(f"process {q(p.id)}: process not created")  # as containerd's shim
        if not exec_id and (all_ or p.pid <= 0):
            task.runtime.kill(container_id, sig, all_)
            return
        try:
            os.kill(p.pid, sig)
        except ProcessLookupError:
            raise errors.NotFound(f"process {q(p.id)}: process already finished") from None

    def wait(self, ns: str, container_id: str, exec_id: str = "", active=lambda: True) -> Process | None:
        """The process once it has exited; None if `active()` (the caller is
        still there) turns false first, so a waiter gone or cancelled does not
        hold its thread (nor the daemon's shutdown) until the container ends."""
        p = self.get(ns, container_id, exec_id)
        while not p.wait(0.5):
            if not active():
                return None
        return p

    # -- exec'd processes

    def exec(self, ns: str, container_id: str, exec_id: str, io: Stdio, spec: AnyValue | None) -> None:
        task = self._task(ns, container_id)
        if not exec_id:
            raise errors.InvalidArgument("exec id must not be empty")
        if spec is None:
            raise errors.InvalidArgument(f"exec {q(exec_id)}: a process spec is required")
        try:
            process = json.loads(spec.value)
        except ValueError as e:
            raise errors.InvalidArgument(f"exec {q(exec_id)}: process spec is not valid JSON: {e}") from None
        with task.lock:
            if exec_id in task.execs:
                raise errors.AlreadyExists(f"exec {q(exec_id)}")
            if task.init.status() not in (RUNNING, PAUSED):
                raise errors.FailedPrecondition(f"task {q(container_id)} is not running")
            p = Process(task, exec_id, io)
            with open(p.file("process.json"), "w") as f:
                json.dump(process, f)
            task.execs[exec_id] = p
            task.save()
        self._events.exec_added(p)

    def delete_process(self, ns: str, container_id: str, exec_id: str) -> Process:
        task = self._task(ns, container_id)
        with task.lock:
            p = task.process(exec_id)
            if not exec_id:
                raise errors.InvalidArgument("the init process is deleted with its task")
            if p.status() in (RUNNING, PAUSED):
                raise errors.FailedPrecondition(f"process {q(exec_id)} must be stopped before deletion")
            del task.execs[exec_id]
            task.save()
            for suffix in ("process.json", "pid", "exit", "shim.log", "winsize"):
                try:
                    os.unlink(p.file(suffix))
                except FileNotFoundError:
                    pass
        self._events.deleted(p)
        return p

    # -- the rest of the verbs, each one runtime call

    def pause(self, ns: str, container_id: str) -> None:
        self._freeze(ns, container_id, True)

    def resume(self, ns: str, container_id: str) -> None:
        self._freeze(ns, container_id, False)

    def _freeze(self, ns: str, container_id: str, frozen: bool) -> None:
        task = self._task(ns, container_id)
        want, verb = (RUNNING, task.runtime.pause) if frozen else (PAUSED, task.runtime.resume)
        with task.lock:
            if task.init.status() != want:
                raise errors.FailedPrecondition(f"task {q(container_id)} is {task.init.status()}, not {want}")
            verb(container_id)
            task.paused = frozen
            task.save()
        self._events.paused(task, frozen)

    def pids(self, ns: str, container_id: str) -> list[tuple[int, str]]:
        """Every process of the task, with the exec id of those that are exec'd processes."""
        task = self._task(ns, container_id)
        by_pid = {p.pid: p.exec_id for p in task.execs.values() if p.status() != STOPPED}
        return [(pid, by_pid.get(pid, "")) for pid in task.runtime.pids(container_id)]

    def stats(self, ns: str, container_id: str) -> dict:
        return self._task(ns, container_id).runtime.stats(container_id)

    def update(self, ns: str, container_id: str, resources: AnyValue) -> None:
        task = self._task(ns, container_id)
        try:
            if not isinstance(json.loads(resources.value), dict):
                raise ValueError("not a JSON object")
        except ValueError as e:
            raise errors.InvalidArgument(f"task {q(container_id)}: resources are not valid JSON: {e}") from None
        path = task.bundle.file("update.json")
        with open(path, "wb") as f:
            f.write(resources.value)
        try:
            task.runtime.update(container_id, path)
        finally:
            os.unlink(path)

    def resize_pty(self, ns: str, container_id: str, exec_id: str, width: int, height: int) -> None:
        """Hands the size to the process's shim, which holds the pty's master (see the shim)."""
        p = self.get(ns, container_id, exec_id)
        if not p.io.terminal:
            raise errors.FailedPrecondition(f"process {q(p.id)} has no terminal")
        path = p.file("winsize")
        with open(path + ".tmp", "w") as f:
            f.write(f"{width} {height}")
        os.rename(path + ".tmp", path)
        if p.shim and p.status() != STOPPED:
            try:
                os.kill(p.shim, signal.SIGWINCH)
            except ProcessLookupError:
                pass  # the process has just exited

    # -- after a restart

    def restore(self) -> None:
        """Finds every task a previous daemon left: stopped ones with their exit status, live ones watched
        again, one it was creating with its pid or, if its create did not succeed, removed (DESIGN.md)."""
        for bundle in Bundle.all(self._state):
            try:
                task = Task.load(bundle)
            except (OSError, ValueError, KeyError) as e:
                log.warning("task bundle %s cannot be restored (%s); removing it", bundle.path, e)
                bundle.delete()
                continue
            self._tasks[(task.ns, task.id)] = task
            for p in task.processes():
                self._shims.reattach(p)
            if not task.init.pid:
                log.warning("task %s in namespace %s was being created when the daemon ended; removing it",
                            task.id, task.ns)
                self._remove(task)
            elif task.init.status() == CREATED:
                self._learn_started(task)

    def _learn_started(self, task: Task) -> None:
        """A start that the earlier daemon ended before recording: the runtime knows it happened."""
        try:
            status = task.runtime.state(task.id).get("status")
        except (errors.Error, ValueError, AttributeError):
            return
        if status in (RUNNING, PAUSED):
            task.init.started, task.paused = True, status == PAUSED
            task.save()
