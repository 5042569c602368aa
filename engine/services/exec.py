"""``docker exec``: processes run in a running container, as dockerd runs
them (daemon/exec.go): an exec instance is created (what to run, and how),
started once (attached to the client's streams, or detached), and inspected
for its exit code, which is how ``docker exec`` learns it.

Instances live in memory only, as dockerd's: an engine restart forgets them.
A container lists those not yet ended (inspect's ExecIDs); an ended one can be
inspected for EXEC_RETENTION seconds more (dockerd's collector drops them
after five to ten minutes).

The process is the container's spec's process (from containerd's record)
with the exec's args, environment, working directory, TTY, user (resolved
in the container's /etc/passwd) and, with --privileged, every capability.
Its exit comes as containerd's /tasks/exit event, through the container
service's watch (``exited``), or from containerd's state after a gap
(``reconcile``).
"""
import base64
import logging
import os
import threading
import time
from dataclasses import dataclass, field

from engine import oci
from engine.containerd.exec import ContainerdExecs
from engine.containerd.tasks import ExecExit
from engine.errors import Conflict, EngineError, InvalidParameter, NotFound
from engine.oci import security, spec, users
from engine.oci.request import JsonFields
from engine.services.containers import ContainerService
from engine.services.exec_io import DEFAULT_DETACH_KEYS, Attached, ExecIO, detach_key_bytes
from engine.store import Container, new_id

log = logging.getLogger(__name__)

START_FAILED = 126  # dockerd's exit code of an exec that could not start
UNKNOWN_EXIT = 255  # a process containerd lost track of while the engine was not watching
EXEC_RETENTION = 300  # seconds an ended exec stays inspectable
RESIZE_WAIT = 10  # seconds a resize waits for the exec to start, as dockerd


@dataclass
class ExecInstance:
    """dockerd's exec.Config: what the client asked for, and how it went."""
    id: str
    container_id: str
    entrypoint: str
    args: list[str]
    env: list[str]
    user: str
    working_dir: str
    tty: bool
    privileged: bool
    open_stdin: bool
    open_stdout: bool
    open_stderr: bool
    detach_keys: bytes
    console_size: list[int] | None
    running: bool = False
    exit_code: int | None = None
    pid: int = 0
    ended_at: float | None = None  # time.monotonic() of its end
    io: ExecIO | None = None
    started: threading.Event = field(default_factory=threading.Event)  # the process runs, or could not start

    def inspect(self) -> dict:
        """``GET /exec/<id>/json``, dockerd's shape."""
        process_config = {"tty": self.tty, "entrypoint": self.entrypoint, "arguments": self.args,
                          "privileged": self.privileged}
        if self.user:
            process_config["user"] = self.user
        return {"ID": self.id, "Running": self.running, "ExitCode": self.exit_code, "ProcessConfig": process_config,
                "OpenStdin": self.open_stdin, "OpenStderr": self.open_stderr, "OpenStdout": self.open_stdout,
                "CanRemove": False, "ContainerID": self.container_id,
                "DetachKeys": base64.b64encode(self.detach_keys).decode(), "Pid": self.pid}


def console_size(value) -> list[int] | None:
    """ConsoleSize [height, width], or None."""
    if value is None:
        return None
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) and v >= 0 for v in value)):
        raise InvalidParameter("ConsoleSize: must be [height, width]")
    return list(value)


@dataclass(frozen=True)
class StartOptions:
    """``POST /exec/<id>/start``'s body (dockerd's ExecStartCheck)."""
    detach: bool
    tty: bool
    console_size: list[int] | None

    @classmethod
    def parse(cls, body) -> "StartOptions":
        fields = JsonFields(body, "ExecStartCheck")
        return cls(fields.bool("Detach"), fields.bool("Tty"), console_size(fields.data.get("ConsoleSize")))


class ExecService:
    """Exec instances of the containers of one ContainerService."""

    def __init__(self, containers: ContainerService, execs: ContainerdExecs, fifo_root: str,
                 host: oci.Host | None = None):
        """``fifo_root``: where the exec FIFOs are made (under the engine's exec-root)."""
        self.containers, self.execs, self.fifo_root = containers, execs, fifo_root
        self.host = host or oci.LocalHost()
        self._instances: dict[str, ExecInstance] = {}
        self._lock = threading.Lock()
        containers.watch_execs(self)

    # -- create, inspect ---------------------------------------------------------------------------------------------

    def create(self, ref: str, config: dict) -> str:
        """``POST /containers/<ref>/exec``: the new instance's ID."""
        fields = JsonFields(config, "ExecConfig")
        cmd = fields.strings("Cmd")
        if not cmd:
            raise InvalidParameter("No exec command specified")
        record = self._active(ref)
        keys, tty = fields.str("DetachKeys"), fields.bool("Tty")
        container_env = oci.ContainerConfig(env=tuple(record.config.get("Env") or ()), tty=tty)
        instance = ExecInstance(
            new_id(), record.id, cmd[0], list(cmd[1:]),
            spec.replace_or_append_env(spec.environment(container_env, record.config.get("Hostname") or ""),
                                       fields.strings("Env") or ()),
            fields.str("User") or record.config.get("User") or "",
            fields.str("WorkingDir") or record.config.get("WorkingDir") or "",
            tty, fields.bool("Privileged"), fields.bool("AttachStdin"), fields.bool("AttachStdout"),
            fields.bool("AttachStderr"), detach_key_bytes(keys) if keys else b"",
            console_size(fields.data.get("ConsoleSize")))
        with self._lock:
            self._forget_ended()
            self._instances[instance.id] = instance
        self._publish(record, "exec_create", instance)
        return instance.id

    def _publish(self, record: Container, action: str, instance: ExecInstance) -> None:
        """dockerd's exec event: the command after the action ("exec_start: sh -c true"; with a space
        after a lone command, as its Entrypoint + " " + Args), the exec's ID an attribute."""
        self.containers.publish(record, f"{action}: {instance.entrypoint} {' '.join(instance.args)}",
                                {"execID": instance.id})

    def _active(self, ref: str) -> Container:
        """The running container, or dockerd's refusal (getActiveContainer)."""
        record = self.containers.store.get(ref)
        state = record.state
        if not state.running:
            raise Conflict(f"Container {record.id} is not running")
        if state.paused:
            raise Conflict(f"Container {ref} is paused, unpause the container before exec")
        if state.restarting:
            raise Conflict(f"Container {record.id} is restarting, wait until the container is running")
        return record

    def _forget_ended(self) -> None:
        """Under the lock: drops instances ended long ago, and those of removed containers."""
        now = time.monotonic()
        for instance in list(self._instances.values()):
            if (instance.ended_at is not None and now - instance.ended_at > EXEC_RETENTION) or \
                    self.containers.store.find_exact(instance.container_id) is None:
                del self._instances[instance.id]

    def _instance(self, exec_id: str) -> ExecInstance:
        """An instance whose container still exists; dockerd's 404 otherwise."""
        with self._lock:
            instance = self._instances.get(exec_id)
        if instance is None or self.containers.store.find_exact(instance.container_id) is None:
            raise NotFound(f"No such exec instance: {exec_id}")
        return instance

    def _usable(self, exec_id: str) -> tuple[ExecInstance, Container]:
        """An instance whose container runs (dockerd's getExecConfig)."""
        with self._lock:
            instance = self._instances.get(exec_id)
        if instance is None:
            raise NotFound(f"No such exec instance: {exec_id}")
        record = self.containers.store.find_exact(instance.container_id)
        if record is None:
            raise NotFound(f"No such container: {exec_id}")
        return instance, self._active(record.id)

    def inspect(self, exec_id: str) -> dict:
        return self._instance(exec_id).inspect()

    def ids_of(self, container_id: str) -> list[str]:
        """The container's instances not yet ended (its inspect's ExecIDs)."""
        with self._lock:
            return [i.id for i in self._instances.values()
                    if i.container_id == container_id and i.exit_code is None]

    def forget(self, exec_id: str) -> None:
        """Drops an instance at once (a health probe's, which nobody
        inspects: kept for EXEC_RETENTION, those of a check every second
        would be thousands)."""
        with self._lock:
            self._instances.pop(exec_id, None)

    def check_startable(self, exec_id: str) -> None:
        """dockerd's ExecExists, before a start hijacks the connection."""
        self._usable(exec_id)

    # -- start -------------------------------------------------------------------------------------------------------

    def start(self, exec_id: str, client: Attached | None = None, size: list[int] | None = None) -> None:
        """Runs the instance. Detached (no ``client``, or none of its streams
        asked for at create) it returns once the process runs; attached, once
        the client's attach is over: the output relayed and the exit recorded
        (or the client detached)."""
        instance, record = self._usable(exec_id)
        with self._lock:
            if instance.exit_code is not None:
                raise Conflict(f"Error: Exec command {instance.id} has already run")
            if instance.running:
                raise Conflict(f"Error: Exec command {instance.id} is already running")
            instance.running = True
        self._publish(record, "exec_start", instance)
        client = client or Attached()
        attached = Attached(client.read if instance.open_stdin else None,
                            client.stdout if instance.open_stdout else None,
                            client.stderr if instance.open_stderr else None)
        stdin = attached.read is not None
        if not (stdin or attached.stdout or attached.stderr):
            attached = None  # nothing to attach: a start that returns at once, as dockerd's
        io = None
        try:
            process = self._process(instance, record, size or instance.console_size)
            io = instance.io = ExecIO(os.path.join(self.fifo_root, instance.id), stdin, instance.tty)
            instance.pid = self.execs.start(record.id, instance.id, process, io.stdio)
        except (EngineError, OSError) as err:
            self._start_failed(instance, io)
            if isinstance(err, OSError):
                raise EngineError(f"exec {instance.id}: {err}") from None
            raise
        instance.started.set()
        io.relay(attached, instance.detach_keys or DEFAULT_DETACH_KEYS,
                 lambda: self.execs.close_stdin(record.id, instance.id))
        if attached is not None:
            io.detached.wait()
            if io.keys_typed:
                self.containers.publish(record, "exec_detach", {"execID": instance.id})

    def _start_failed(self, instance: ExecInstance, io: ExecIO | None) -> None:
        if io is not None:
            io.close()
        with self._lock:
            instance.running, instance.exit_code, instance.ended_at = False, START_FAILED, time.monotonic()
        instance.started.set()

    def _process(self, instance: ExecInstance, record: Container, size: list[int] | None) -> dict:
        """dockerd's exec process: the container's, with the exec's settings."""
        process = self.execs.container_process(record.id, record.state.pid)
        process.update(args=[instance.entrypoint, *instance.args], env=list(instance.env),
                       cwd=instance.working_dir or "/", terminal=instance.tty)
        process.pop("consoleSize", None)
        if instance.tty and size:
            process["consoleSize"] = {"height": size[0], "width": size[1]}
        if instance.user:
            rootfs = f"/proc/{record.state.pid}/root"  # the running container's own files
            user = users.resolve_user(instance.user, record.host_config.get("GroupAdd") or [],
                                      lambda path: self.host.read_rootfs_file(rootfs, path))
            process["user"] = {"uid": user.uid, "gid": user.gid, "additionalGids": list(user.additional_gids)}
        if instance.privileged:
            every = list(security.ALL_CAPABILITIES)
            process["capabilities"] = {**process.get("capabilities", {}), "bounding": every, "effective": every,
                                       "inheritable": every, "permitted": every}
        return process

    def resize(self, exec_id: str, height: int, width: int) -> None:
        """The exec's terminal size; waits a while for a start in progress, as dockerd."""
        instance, record = self._usable(exec_id)
        if not instance.started.wait(RESIZE_WAIT):
            raise EngineError("timeout waiting for exec session ready")
        self.execs.resize(record.id, instance.id, width, height)

    # -- exits -------------------------------------------------------------------------------------------------------

    def exited(self, event: ExecExit) -> None:
        """Records an exec's exit (once) and removes its process from containerd."""
        with self._lock:
            instance = self._instances.get(event.exec_id)
            if instance is None or instance.container_id != event.container_id or instance.exit_code is not None:
                return
            instance.running, instance.exit_code, instance.ended_at = False, event.exit_code, time.monotonic()
            io = instance.io
        record = self.containers.store.find_exact(event.container_id)
        if record is not None:
            self.containers.publish(record, "exec_die", {"execID": instance.id, "exitCode": str(event.exit_code)})
        if io is not None:
            io.exited()
        try:
            self.execs.delete(event.container_id, event.exec_id)
        except EngineError as err:
            log.warning("removing exec %s of container %s: %s", event.exec_id, event.container_id, err)

    def reconcile(self) -> None:
        """After containerd was away: exits of running execs that happened meanwhile."""
        with self._lock:
            running = [i for i in self._instances.values() if i.running and i.started.is_set()]
        for instance in running:
            state = self.execs.state(instance.container_id, instance.id)
            if state is None:
                self.exited(ExecExit(instance.container_id, instance.id, UNKNOWN_EXIT, 0))
            elif state.status == "stopped":
                self.exited(ExecExit(instance.container_id, instance.id, state.exit_status, state.exited_at))
