"""Tasks: the running side of containers. Each process (a task's init or an exec'd
one) is started and reaped by a shim of its own; the daemon runs the short-lived
runtime verbs itself and learns of exits when a shim exits (see DESIGN.md)."""
from __future__ import annotations

import json
import logging
import os
import select
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import asdict, dataclass

from .. import errors, mount as mountlib
from ..shim import BINARY as SHIM
from ..api.containerd.events import task_pb2 as events
from ..api.containerd.runtime import runc_options_pb2
from ..api.containerd.types import mount_pb2
from ..containers import Containers
from ..errors import q
from ..events.exchange import Exchange
from ..filters import Filter
from ..services.common import timestamp
from ..types import AnyValue, Mount
from .runtime import Runtime

log = logging.getLogger(__name__)

STATE_DIR = "io.containerd.runtime.v2.task"
RUNTIMES = ("io.containerd.runc.v2", "io.containerd.runc.v1")
RUNC_OPTIONS = "containerd.runc.v1.Options"
SHIM_TIMEOUT = 120  # seconds for a shim to report its process started (guards a hang only)

CREATED, RUNNING, STOPPED, PAUSED = "created", "running", "stopped", "paused"


@dataclass
class IO:
    stdin: str = ""
    stdout: str = ""
    stderr: str = ""
    terminal: bool = False


class Process:
    """A task's init (exec_id "") or an exec'd process, as its shim reports it."""

    def __init__(self, task: Task, exec_id: str, io: IO, pid: int = 0, started: bool = False, shim: int = 0):
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
        return os.path.join(self.task.bundle, f"{self.name}.{suffix}")

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
    def __init__(self, ns: str, container_id: str, bundle: str, runtime: Runtime, io: IO, no_pivot: bool):
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

    def save(self) -> None:
        """task.json: what a restarted daemon needs to find the task again (temp, fsync, rename)."""
        data = {"namespace": self.ns, "id": self.id, "binary": self.runtime.binary, "root": self.runtime.root,
                "no_pivot": self.no_pivot, "paused": self.paused, "memory_cgroup": self.memory_cgroup,
                "init": self.init.record(),
                "execs": {k: p.record() for k, p in self.execs.items()}}
        path = os.path.join(self.bundle, "task.json")
        with open(path + ".tmp", "w") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.rename(path + ".tmp", path)


def _read_exit(p: Process) -> tuple[int, int]:
    """The exit record a shim leaves; status 255 when its shim died without one (as containerd reports)."""
    try:
        with open(p.file("exit")) as f:
            data = json.load(f)
        return data["status"], data["exited_at"]
    except (OSError, ValueError, KeyError):
        return 255, time.time_ns()


def _wait_pid(pid: int) -> None:
    """Blocks until `pid` exits, for a process not our child (a shim of an earlier daemon)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        select.select([fd], [], [])
    finally:
        os.close(fd)


def _is_shim_of(pid: int, p: Process) -> bool:
    """The live process `pid` is the shim of `p` (not a pid reused since)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return False
    return argv[:1] == [SHIM.encode()] and p.task.bundle.encode() in argv and p.name.encode() in argv


def _memory_cgroup(pid: int) -> str:
    """The directory of pid's memory cgroup: the v1 memory hierarchy's, else the unified one's."""
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            entries = [line.rstrip("\n").split(":", 2) for line in f]
    except OSError:
        return ""
    for _, controllers, path in entries:
        if "memory" in controllers.split(","):
            return "/sys/fs/cgroup/memory" + path
    for hierarchy, _, path in entries:
        if hierarchy == "0" and os.path.exists("/sys/fs/cgroup/cgroup.controllers"):  # a pure v2 host
            return "/sys/fs/cgroup" + path
    return ""


def _oom_kills(cgroup_dir: str) -> int:
    """The kernel's count of OOM kills in the cgroup (v1 memory.oom_control, v2 memory.events)."""
    for name in ("memory.oom_control", "memory.events"):
        try:
            with open(os.path.join(cgroup_dir, name)) as f:
                for line in f:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        except (OSError, ValueError):
            continue
    return 0


def _runc_options(value: AnyValue | None) -> runc_options_pb2.Options:
    opts = runc_options_pb2.Options()
    if value is not None and value.type_url.rsplit("/", 1)[-1] == RUNC_OPTIONS:
        opts.ParseFromString(value.value)
    return opts


class TaskManager:
    def __init__(self, state: str, containers: Containers, exchange: Exchange, default_binary: str):
        self._state, self._containers, self._exchange = state, containers, exchange
        self._default_binary = default_binary
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

    def _runtime(self, ns: str, container, options: AnyValue | None) -> tuple[Runtime, bool]:
        if container.runtime not in RUNTIMES:
            raise errors.NotFound(f"runtime {q(container.runtime)}")
        opts = _runc_options(options if options is not None else container.runtime_options)
        binary = opts.binary_name or self._default_binary
        found = shutil.which(binary)
        if found is None:
            raise errors.NotFound(f"runtime binary {q(binary)}")
        name = os.path.basename(found)
        root = os.path.join(opts.root, ns) if opts.root else os.path.join(self._state, "runtime", name, ns)
        return Runtime(os.path.abspath(found), root), opts.no_pivot_root

    def create(self, ns: str, container_id: str, rootfs: list[Mount], io: IO, options: AnyValue | None) -> Process:
        container = self._containers.get(ns, container_id)
        if container.spec is None:
            raise errors.InvalidArgument(f"container {q(container_id)} has no spec")
        try:
            spec = json.loads(container.spec.value)
        except ValueError as e:
            raise errors.InvalidArgument(f"container {q(container_id)}: spec is not valid JSON: {e}") from None
        if not isinstance(spec, dict):
            raise errors.InvalidArgument(f"container {q(container_id)}: spec is not a JSON object")
        runtime, no_pivot = self._runtime(ns, container, options)
        bundle = os.path.join(self._state, STATE_DIR, ns, container_id)
        with self._lock:
            if (ns, container_id) in self._tasks:
                raise errors.AlreadyExists(f"task {q(container_id)}")
            task = Task(ns, container_id, bundle, runtime, io, no_pivot)
            self._tasks[(ns, container_id)] = task
        try:
            with task.lock:
                self._make_bundle(task, spec, rootfs)
                task.save()
                self._spawn_shim(task.init)
                task.memory_cgroup = _memory_cgroup(task.init.pid)
                task.save()
        except BaseException:
            self._discard(task)
            raise
        self._exchange.publish(ns, "/tasks/create", events.TaskCreate(
            container_id=container_id, bundle=bundle, pid=task.init.pid,
            rootfs=[mount_pb2.Mount(type=m.type, source=m.source, target=m.target, options=m.options)
                    for m in rootfs],
            io=events.TaskIO(stdin=io.stdin, stdout=io.stdout, stderr=io.stderr, terminal=io.terminal)))
        return task.init

    def _make_bundle(self, task: Task, spec: dict, rootfs: list[Mount]) -> None:
        if os.path.exists(task.bundle):
            shutil.rmtree(task.bundle)  # a leftover of a task deleted while the daemon was down
        os.makedirs(os.path.join(task.bundle, "rootfs"), mode=0o711)
        os.makedirs(task.runtime.root, mode=0o711, exist_ok=True)
        with open(os.path.join(task.bundle, "config.json"), "w") as f:
            json.dump(spec, f)
        if rootfs:
            try:
                mountlib.mount_all(rootfs, os.path.join(task.bundle, "rootfs"))
            except OSError as e:
                raise errors.InvalidArgument(f"rootfs of task {q(task.id)}: {e}") from None
            with open(os.path.join(task.bundle, "rootfs.mounted"), "w"):
                pass

    def _spawn_shim(self, p: Process) -> None:
        t = p.task
        argv = [SHIM, t.id, t.bundle, p.name, t.runtime.binary, t.runtime.root,
                "1" if p.io.terminal else "0", p.io.stdin, p.io.stdout, p.io.stderr, "1" if t.no_pivot else "0"]
        with open(p.file("shim.log"), "ab") as log_file:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log_file,
                                    cwd=t.bundle, start_new_session=True, close_fds=True)
        ready, _, _ = select.select([proc.stdout], [], [], SHIM_TIMEOUT)
        line = proc.stdout.readline() if ready else b""
        proc.stdout.close()
        try:
            report = json.loads(line)
        except ValueError:
            report = {"error": f"the shim reported nothing (see {p.file('shim.log')})"}
        if "pid" not in report:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            what = "create" if not p.exec_id else "exec"
            raise errors.Unknown(f"OCI runtime {what} failed: {report.get('error', 'unknown error')}")
        p.pid, p.shim = report["pid"], proc.pid
        threading.Thread(target=self._watch, args=(p, proc.wait), daemon=True,
                         name=f"shim-{t.id}-{p.name}").start()

    def _watch(self, p: Process, wait_shim) -> None:
        wait_shim()
        status, at = _read_exit(p)
        with p.task.events_lock:
            if not p.exec_id and p.task.memory_cgroup and _oom_kills(p.task.memory_cgroup):
                self._exchange.publish(p.task.ns, "/tasks/oom", events.TaskOOM(container_id=p.task.id))
            p.set_exited(status, at)
            self._exchange.publish(p.task.ns, "/tasks/exit", events.TaskExit(
                container_id=p.task.id, id=p.id, pid=p.pid, exit_status=status, exited_at=timestamp(at)))

    def start(self, ns: str, container_id: str, exec_id: str = "") -> Process:
        task = self._task(ns, container_id)
        with task.lock, task.events_lock:
            p = task.process(exec_id)
            if p.started or p.status() == STOPPED:
                raise errors.FailedPrecondition(f"process {q(p.id)}: already started")
            if exec_id:
                if task.init.status() not in (RUNNING, PAUSED):
                    raise errors.FailedPrecondition(f"task {q(container_id)} is not running")
                self._spawn_shim(p)
            else:
                task.runtime.start(container_id)
            p.started = True
            task.save()
            if exec_id:
                self._exchange.publish(ns, "/tasks/exec-started", events.TaskExecStarted(
                    container_id=container_id, exec_id=exec_id, pid=p.pid))
            else:
                self._exchange.publish(ns, "/tasks/start", events.TaskStart(container_id=container_id, pid=p.pid))
        return p

    def delete(self, ns: str, container_id: str) -> Process:
        task = self._task(ns, container_id)
        with task.lock:
            status = task.init.status()
            if status in (RUNNING, PAUSED):
                raise errors.FailedPrecondition(f"task {q(container_id)} must be stopped before deletion: {status}")
            self._remove(task)
        init = task.init
        self._exchange.publish(ns, "/tasks/delete", events.TaskDelete(
            container_id=container_id, id=container_id, pid=init.pid, exit_status=init.exit_status,
            exited_at=timestamp(init.exited_at)))
        return init

    def _remove(self, task: Task) -> None:
        """Undoes a task: the runtime's container (killing what is left), the rootfs mount, the bundle."""
        try:
            task.runtime.delete(task.id, force=True)
        except errors.Error as e:
            log.warning("deleting task %s: %s", task.id, e)
        for p in [task.init, *task.execs.values()]:
            if p.pid and not p.wait(timeout=10):
                log.warning("task %s: process %s did not exit after delete", task.id, p.id)
        self._discard(task)

    def _discard(self, task: Task) -> None:
        if os.path.exists(os.path.join(task.bundle, "rootfs.mounted")):
            mountlib.unmount(os.path.join(task.bundle, "rootfs"))
        shutil.rmtree(task.bundle, ignore_errors=True)
        with self._lock:
            self._tasks.pop((task.ns, task.id), None)

    def kill(self, ns: str, container_id: str, exec_id: str, sig: int, all_: bool) -> None:
        task = self._task(ns, container_id)
        p = task.process(exec_id)
        if p.status() == STOPPED:
            raise errors.NotFound(f"process {q(p.id)}: process already finished")
        if exec_id:
            try:
                os.kill(p.pid, sig)
            except ProcessLookupError:
                raise errors.NotFound(f"process {q(p.id)}: process already finished") from None
        else:
            task.runtime.kill(container_id, sig, all_)

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

    def exec(self, ns: str, container_id: str, exec_id: str, io: IO, spec: AnyValue | None) -> None:
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
        self._exchange.publish(ns, "/tasks/exec-added", events.TaskExecAdded(container_id=container_id,
                                                                             exec_id=exec_id))

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
        self._exchange.publish(ns, "/tasks/delete", events.TaskDelete(
            container_id=container_id, id=exec_id, pid=p.pid, exit_status=p.exit_status,
            exited_at=timestamp(p.exited_at)))
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
        event = events.TaskPaused(container_id=container_id) if frozen else events.TaskResumed(
            container_id=container_id)
        self._exchange.publish(ns, "/tasks/paused" if frozen else "/tasks/resumed", event)

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
        path = os.path.join(task.bundle, "update.json")
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
        """Finds every task a previous daemon left: stopped ones with their exit status, live ones watched again."""
        top = os.path.join(self._state, STATE_DIR)
        for ns in sorted(os.listdir(top)) if os.path.isdir(top) else []:
            for container_id in sorted(os.listdir(os.path.join(top, ns))):
                bundle = os.path.join(top, ns, container_id)
                try:
                    with open(os.path.join(bundle, "task.json")) as f:
                        data = json.load(f)
                    self._restore(bundle, data)
                except (OSError, ValueError, KeyError) as e:
                    log.warning("task bundle %s cannot be restored (%s); removing it", bundle, e)
                    if os.path.exists(os.path.join(bundle, "rootfs.mounted")):
                        mountlib.unmount(os.path.join(bundle, "rootfs"))
                    shutil.rmtree(bundle, ignore_errors=True)

    def _restore(self, bundle: str, data: dict) -> None:
        init = data["init"]
        task = Task(data["namespace"], data["id"], bundle, Runtime(data["binary"], data["root"]), IO(**init["io"]),
                    data["no_pivot"])
        task.paused, task.memory_cgroup = data["paused"], data["memory_cgroup"]
        task.init.pid, task.init.started, task.init.shim = init["pid"], init["started"], init["shim"]
        for exec_id, rec in data["execs"].items():
            task.execs[exec_id] = Process(task, exec_id, IO(**rec["io"]), rec["pid"], rec["started"], rec["shim"])
        self._tasks[(task.ns, task.id)] = task
        for p in [task.init, *task.execs.values()]:
            if not p.pid:
                continue  # an exec never started
            if os.path.exists(p.file("exit")) or not _is_shim_of(p.shim, p):
                p.set_exited(*_read_exit(p))
            else:
                threading.Thread(target=self._watch, args=(p, lambda pid=p.shim: _wait_pid(pid)), daemon=True,
                                 name=f"shim-{task.id}-{p.name}").start()


