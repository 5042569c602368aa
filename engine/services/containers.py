"""The container backend the API's routes call: create, start, stop, kill,
restart, pause, wait, remove, rename, and the reconcile at engine start.

The record (engine/store) is the engine's truth about a container; what
runs is containerd's (engine/containerd/tasks.py). Exits reach the record
through containerd's events, watched by one thread from construction on, and
through ``reconcile`` for those that happened while the engine was away — so
a container's exit is recorded whether or not anybody was waiting for it.

Every change of a container happens under that container's lock, so an exit
event cannot overtake the start that caused it.
"""
import dataclasses
import logging
import os
import signal
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable

from containerd_py.mount import temp_mount

from engine import init, oci
from engine.containerd.tasks import ContainerdTasks, ExecExit, ImageForContainer, TaskExit, task_events
from engine.errors import Conflict, EngineError, InvalidParameter, NotFound, NotModified, System, Unavailable
from engine.services import links
from engine.services.restart import RestartPolicies, check_policy
from engine.services.config_merge import image_metadata
from engine.services.container_network import NoNetworking
from engine.services.container_seams import (DEFAULT_RUNTIME, ExecExits, FileLogSink, LogSink, RootfsHost,
                                             installed_runtimes, parse_signal)
from engine.services.container_volumes import ContainerVolumes, VolumeProvider
from engine.services.health import merged_healthcheck
from engine.services.network_files import NetworkFiles
from engine.store import Container, ContainerStore, go_time, new_id

log = logging.getLogger(__name__)

DEFAULT_STOP_TIMEOUT = 10  # seconds, dockerd's
WAIT_CONDITIONS = ("not-running", "next-exit", "removed")
UNKNOWN_EXIT = 255  # a task gone without a trace while the engine was away, as dockerd records it
_RESUBSCRIBE_DELAY = 0.5
_CANCEL_POLL = 0.5  # seconds between looks at a waiting client's disconnection
# (record, action, attributes) of a container event, as dockerd's LogContainerEventWithAttributes
Publish = Callable[[Container, str, dict | None], None]


class ContainerService:
    """Containers' lifecycle over a record store and containerd. The engine
    builds one at start (it subscribes to containerd's exits at once), calls
    ``reconcile()`` once, and ``close()`` when it stops."""

    def __init__(self, store: ContainerStore, tasks: ContainerdTasks, data_root: str, host: oci.Host | None = None,
                 log_sink: LogSink | None = None, runtimes: dict[str, str] | None = None,
                 default_runtime: str = DEFAULT_RUNTIME, cgroup_parent: str = oci.spec.DEFAULT_CGROUP_PARENT,
                 resolve_image: Callable[[str], ImageForContainer] | None = None, init_path: str = init.BINARY,
                 publish: Publish = lambda record, action, attributes=None: None, network=None,
                 volumes: VolumeProvider | None = None):
        """``resolve_image`` finds a create's image (the image service's lookup
        by name, ID or digest once assembled; by name in containerd by default);
        ``publish`` reports events (the events service once assembled);
        ``volumes`` gives containers their volumes (the volume service)."""
        self.store, self.tasks, self.data_root, self.publish = store, tasks, data_root, publish
        self.resolve_image = resolve_image or tasks.image
        self.network = network or NoNetworking()
        self.volumes = ContainerVolumes(volumes, lambda: [r for r in store.all() if r.state.running], store.get)
        self.host = host or oci.LocalHost()
        self.log_sink = log_sink or FileLogSink(store)
        self.runtimes = runtimes if runtimes is not None else installed_runtimes()
        self.default_runtime, self.cgroup_parent, self.init_path = default_runtime, cgroup_parent, init_path
        self._locks: dict[str, threading.RLock] = defaultdict(threading.RLock)
        self._changed = threading.Condition()  # notified at every exit and removal
        self._exits: dict[str, int] = defaultdict(int)  # exits seen per container, for next-exit waits
        self._oom: set[str] = set()
        self._closing = False
        self.restarts = RestartPolicies()
        self._startup_done = False  # exits are restarted by policy once the engine's start is through
        self._exec_exits: ExecExits | None = None
        self._subscription = self.tasks.subscribe_exits()
        self._watcher = threading.Thread(target=self._watch_exits, name="container-exits", daemon=True)
        self._watcher.start()

    def watch_execs(self, listener: ExecExits) -> None:
        """Exits of exec'd processes go to ``listener`` (the exec service): one watch of containerd's events."""
        self._exec_exits = listener

    def close(self) -> None:
        """Stops watching containerd; containers keep running."""
        self._closing = True
        self.restarts.close()
        self._subscription.close()
        self._watcher.join()

    def locked(self, container_id: str) -> threading.RLock:
        """The lock every change of the container happens under (for the services beside this one)."""
        return self._locks[container_id]

    # -- create ------------------------------------------------------------------

    def create(self, config: dict, host_config: dict | None, name: str | None = None,
               networking_config: dict | None = None) -> Container:
        """A container as ``docker create`` makes it; on any failure nothing is
        left of it (record, name, snapshot, containerd container)."""
        config, host_config = dict(config or {}), self.log_sink.configure(dict(host_config or {}))
        parsed_hc = oci.parse_host_config(host_config)
        check_policy(host_config)
        parsed = oci.parse_config(config)
        oci.check_against_host(parsed_hc, self.host)
        runtime = host_config.get("Runtime") or self.default_runtime
        if runtime not in self.runtimes:
            raise InvalidParameter(f"Unknown runtime specified {runtime}")
        if not config.get("Image"):
            raise InvalidParameter("Config.Image: image name is required")
        image = self.resolve_image(config["Image"])
        merged = oci.merge_image_config(parsed, image.config)
        container_id = new_id()
        hostname = config.get("Hostname") or (socket.gethostname() if parsed_hc.network_mode == "host"
                                              else container_id[:12])
        merged = dataclasses.replace(merged, hostname=hostname)  # the spec's, as dockerd's from the stored config
        network_settings = self.network.plan(container_id, host_config, networking_config)
        record = Container(
            container_id, self.store.reserve_name(container_id, name), image.id,
            {**config, **image_metadata(config, image.config), "Hostname": hostname, "Env": list(merged.env), "Cmd": list(merged.cmd or ()) or None,
             "Entrypoint": list(merged.entrypoint) if merged.entrypoint else None,
             "WorkingDir": merged.working_dir, "User": merged.user,
             **merged_healthcheck(config.get("Healthcheck"), image.config.get("Healthcheck"))},
            {**host_config, "Runtime": runtime}, driver=self.tasks.snapshotter,
            mount_points=oci.mounts.recorded_mount_points(host_config), network_settings=network_settings)
        undo = [lambda: self.store.release_name(record.name, container_id)]
        try:
            if host_config.get("Links"):
                record.host_config["Links"] = links.normalized(host_config["Links"], record.name, self.store)
            mounts, volume_points = self.volumes.resolve(parsed_hc.mounts, {**(image.config.get("Volumes") or {}),
                                                                            **(config.get("Volumes") or {})},
                                                         host_config.get("VolumesFrom") or ())
            record.mount_points.update(volume_points)
            undo.append(lambda: self.volumes.removed(record.mount_points))
            parsed_hc = dataclasses.replace(parsed_hc, mounts=tuple(mounts))
            args = oci.spec.command(merged)
            record.path, record.args = args[0], args[1:]
            files = self._network_files(record, parsed_hc.network_mode)
            record.hostname_path, record.hosts_path = files.hostname, files.hosts
            record.resolv_conf_path = files.resolv_conf
            with self.tasks.leased():
                undo.append(lambda: self.tasks.remove_snapshot(container_id))
                spec = {}

                def in_init_layer(mounted: str) -> None:
                    """One mount for both: the init files made, the image's users read for the spec."""
                    oci.init_layer.set_up(mounted)
                    self.volumes.copy_up(parsed_hc.mounts, mounted)
                    spec.update(self._spec(record, merged, parsed_hc, files, mounted))

                self.tasks.prepare_snapshot(container_id, image.chain_id,
                                            lambda mounts: self._mounted(mounts, in_init_layer))
                self.tasks.create_container(container_id, image.name, spec, self.runtimes[runtime])
                undo.append(lambda: self.tasks.delete_container(container_id))
            self.store.add(record)
            undo.append(lambda: self.store.remove(container_id))
            if files.own:
                files.write(hostname, parsed_hc.network_mode == "host", host_config.get("ExtraHosts") or [],
                            self.network.resolv_conf(record))
        except BaseException as err:
            for step in reversed(undo):
                try:
                    step()
                except EngineError as failed:
                    log.error("undoing the create of %s: %s", container_id, failed)
            if isinstance(err, OSError):
                raise System(f"creating container {container_id}: {err}") from None
            raise
        self.publish(record, "create")
        return record

    def _mounted(self, mounts, use: Callable[[str], None]) -> None:
        with temp_mount(mounts, os.path.join(self.data_root, "tmp")) as mounted:
            use(mounted)

    def _network_files(self, record: Container, network_mode: str) -> NetworkFiles:
        """The container's own files, or with --network container:<x>, x's."""
        if network_mode.startswith("container:"):
            joined = self._running_for_join(network_mode.partition(":")[2])
            return NetworkFiles(joined.hostname_path, joined.hosts_path, joined.resolv_conf_path, own=False)
        return NetworkFiles.under(self.store.container_dir(record.id))

    def _running_for_join(self, ref: str) -> Container:
        joined = self.store.get(ref)
        if not joined.state.running:
            raise Conflict(f"cannot join network of a non running container: {joined.id}")
        return joined

    def _spec(self, record: Container, merged, hc, files: NetworkFiles, mounted: str) -> dict:
        """dockerd's spec, with the image's users read from its files mounted at ``mounted``."""
        namespace_paths = {}
        for kind, proc_name, mode in (("network", "net", hc.network_mode), ("ipc", "ipc", hc.ipc_mode),
                                      ("pid", "pid", hc.pid_mode)):
            if mode.startswith("container:"):
                joined = self._running_for_join(mode.partition(":")[2])
                namespace_paths[kind] = f"/proc/{joined.state.pid}/ns/{proc_name}"
        sandbox = self.network.own_sandbox(record)
        if sandbox:
            namespace_paths["network"] = sandbox
        inputs = oci.SpecInputs(record.id, "rootfs", oci.MountPaths(files.resolv_conf, files.hostname, files.hosts,
                                                                    init=self.init_path),
                                namespace_paths, self.cgroup_parent)
        return oci.generate(merged, hc, inputs, RootfsHost(self.host, mounted))

    # -- start and exits ---------------------------------------------------------------

    def start(self, ref: str) -> None:
        """Runs the container's task; 304 when it runs already."""
        record = self.store.get(ref)
        with self._locks[record.id]:
            state = record.state
            if state.paused:
                raise Conflict("cannot start a paused container, try unpause instead")
            if state.running:
                raise NotModified(f"container {record.id} is already running")
            if state.removal_in_progress or state.dead:
                raise Conflict("container is marked for removal and cannot be started")
            self.restarts.reset(record.id)  # a manual start: restart policy afresh, as dockerd's
            record.restart_count, record.has_been_manually_stopped = 0, False
            self._run(record)

    def _run(self, record: Container) -> None:
        """The task created and started, under the container's lock."""
        try:
            self.volumes.starting(record.id, record.mount_points)
            self._attach_network(record)
            self.tasks.create_task(record.id, self.log_sink.stdio(record))
            pid = self.tasks.start_task(record.id)
        except EngineError as err:
            self._start_failed(record, err)
        record.state.set_running(pid, go_time())
        record.has_been_started_before = True
        self.store.save(record)
        self.publish(record, "start")

    def _attach_network(self, record: Container) -> None:
        """The container's networks wired before its task starts, its
        /etc/hosts naming its own addresses (and its legacy links')."""
        linked = links.at_start(record, self.store)
        if linked:
            self.tasks.update_spec(record.id, lambda spec: links.add_to_spec(
                spec, links.environment(linked, record.name), linked, record.config.get("Env") or []))
        addresses = self.network.attach(record)
        if addresses and record.hosts_path.startswith(self.store.container_dir(record.id)):
            NetworkFiles.under(self.store.container_dir(record.id)).write_hosts(
                record.config.get("Hostname") or "", record.config.get("Domainname") or "",
                record.host_config.get("ExtraHosts") or [], addresses, links.hosts_lines(linked))

    def _start_failed(self, record: Container, err: EngineError):
        """dockerd's exit codes for a start that never ran the command: 127 not found, 126 not executable."""
        self.tasks.delete_task(record.id)
        self.network.detach(record)
        self.volumes.stopped(record.id, record.mount_points)
        self.log_sink.closed(record)
        message = str(err)
        code = 127 if ("no such file" in message or "not found" in message) else \
            126 if "permission denied" in message else 128
        record.state.set_start_failed(message, code)
        self.store.save(record)
        if record.host_config.get("AutoRemove"):  # as dockerd: `run --rm`'s wait for the removal ends
            try:
                self.remove(record.id)
            except EngineError as failed:
                log.error("removing %s after its failed start (--rm): %s", record.id, failed)
        raise System(message) from None

    def _watch_exits(self) -> None:
        """Records every exit containerd reports; after losing containerd,
        subscribes again and reconciles what happened meanwhile."""
        subscription = self._subscription
        while not self._closing:
            try:
                for event in task_events(subscription):
                    if isinstance(event, TaskExit):
                        self._exited(event)
                    elif isinstance(event, ExecExit):
                        if self._exec_exits is not None:
                            self._exec_exits.exited(event)
                    else:
                        self._oom.add(event)
                if self._closing:
                    return
            except EngineError as err:
                log.warning("watching container exits: %s", err)
            time.sleep(_RESUBSCRIBE_DELAY)
            try:
                subscription = self._subscription = self.tasks.subscribe_exits()
                self.reconcile()
                if self._exec_exits is not None:
                    self._exec_exits.reconcile()
            except EngineError as err:
                log.warning("watching container exits: %s", err)

    def _exited(self, event: TaskExit) -> None:
        """The task's exit recorded (once), the task deleted; its restart
        policy's restart scheduled (State.Restarting meanwhile), or else
        --rm honoured."""
        try:
            record = self.store.get_by_id(event.container_id)
        except NotFound:
            return
        with self._locks[record.id]:
            if not record.state.running or record.state.restarting:
                return
            gone = self.tasks.delete_task(record.id) or event
            self.log_sink.closed(record)
            exited_at, oom_killed = go_time(gone.exited_at or time.time_ns()), record.id in self._oom
            record.state.set_stopped(gone.exit_code, exited_at, oom_killed)
            if self._startup_done and self.restarts.on_exit(record, lambda: self._restart_by_policy(record.id)):
                record.restart_count += 1
                record.state.set_restarting(gone.exit_code, exited_at, oom_killed)
            self._oom.discard(record.id)
            if record.state.oom_killed:
                self.publish(record, "oom")
            self.publish(record, "die", {"exitCode": str(gone.exit_code)})
            self.network.detach(record)  # dockerd's network disconnect follows the die
            self.volumes.stopped(record.id, record.mount_points)
            self.store.save(record)
            self._exit_seen(record.id)
        if record.host_config.get("AutoRemove") and not record.state.restarting:
            try:
                self.remove(record.id, volumes=True)
            except EngineError as err:
                log.error("removing %s after its exit (--rm): %s", record.id, err)

    def _exit_seen(self, container_id: str) -> None:
        """Wakes the waits for an exit (dockerd's waitStop, which a restart's exit fires too)."""
        with self._changed:
            self._exits[container_id] += 1
            self._changed.notify_all()

    def _restart_by_policy(self, container_id: str) -> None:
        """The back-off waited out (on the timer's thread): the task started
        again, events die then start as dockerd's; a failed start leaves the
        container exited with the exit that caused the restart."""
        with self._locks[container_id]:
            record = self.store.find_exact(container_id)
            if not self.restarts.due(container_id) or record is None:
                return
            try:
                self._run(record)
            except EngineError as err:
                log.error("restarting %s by its restart policy: %s", container_id, err)
                record.state.set_stopped(record.state.exit_code, record.state.finished_at, record.state.oom_killed)
                self.store.save(record)
                self._exit_seen(container_id)

    def start_by_restart_policy(self) -> None:
        """At engine start, once the records are reconciled and the networks
        restored: the containers whose policies want them running started
        (RestartCount from 0), as dockerd's restore; from then on exits are
        restarted by policy."""
        self._startup_done = True
        for record in self.store.all():
            if RestartPolicies.wanted_at_engine_start(record):
                try:
                    self.start(record.id)
                except EngineError as err:
                    log.error("starting %s by its restart policy: %s", record.id, err)

    def reconcile(self) -> None:
        """Matches the records with containerd's tasks, as at engine start:
        exits that happened meanwhile are recorded with their codes, running
        tasks kept, --rm containers that exited removed. A container that
        cannot be matched is reported and the others go on; containerd
        gone (503) ends the round, to be done again once it is back."""
        for record in self.store.all():
            try:
                self._reconcile(record)
            except Unavailable:
                raise
            except EngineError as err:
                log.error("restoring container %s: %s", record.id, err)

    def _reconcile(self, record: Container) -> None:
        with self._locks[record.id]:
            if record.state.restarting:
                if not self.restarts.pending(record.id):  # left restarting by an engine that stopped
                    state = record.state
                    state.set_stopped(state.exit_code, state.finished_at, state.oom_killed)
                    self.store.save(record)
                return
            task = self.tasks.task_state(record.id)
            if task is not None and task.status in ("running", "paused", "pausing"):
                if not record.state.running or record.state.pid != task.pid:
                    record.state.set_running(task.pid, go_time(), initial=False)
                record.state.paused = task.status != "running"
                self.store.save(record)
                return
            if record.state.running:
                self._exited(TaskExit(record.id, task.exit_status, task.exited_at) if task is not None
                             else TaskExit(record.id, UNKNOWN_EXIT, 0))
                return
            if task is not None:  # stopped or created, and never recorded as running
                self.tasks.delete_task(record.id)
        if record.host_config.get("AutoRemove") and record.state.status == "exited" \
                and self.store.find_exact(record.id):
            self.remove(record.id, volumes=True)

    # -- stop, kill, restart, pause ----------------------------------------------------

    def stop(self, ref: str, timeout: int | None = None) -> None:
        """StopSignal, then SIGKILL after ``timeout`` seconds (the container's
        StopTimeout, or 10; -1 waits for ever); 304 when not running."""
        record = self.store.get(ref)
        if not record.state.running:
            raise NotModified(f"container {record.id} is already stopped")
        if timeout is None:
            timeout = record.config.get("StopTimeout")
            timeout = DEFAULT_STOP_TIMEOUT if timeout is None else timeout
        stop_signal = self._stop_signal(record)
        seen = self.exit_count(record.id)
        if self._signal(record, stop_signal) and self.wait_exit(record.id, seen, None if timeout < 0 else timeout):
            self.publish(record, "stop")
            return
        if self._signal(record, signal.SIGKILL):
            self.wait_exit(record.id, seen, None)
        self.publish(record, "stop")

    def _signal(self, record: Container, number: int) -> bool:
        """Sends the signal to a running task; False when it had exited
        already. A paused container sent its stop signal or SIGKILL is
        resumed to receive it, as dockerd does."""
        with self._locks[record.id]:
            if not record.state.running:
                return False
            if self._stopped_by_hand(record, number):
                return True  # it was waiting to restart: no task to signal, as dockerd's
            try:
                self.tasks.kill(record.id, number)
            except NotFound:
                return False  # exited: its event is on its way
            except Conflict as err:
                if "not running" in str(err) or "stopped" in str(err):
                    return False
                raise
            self.publish(record, "kill", {"signal": str(number)})  # under the lock: before the "die" it causes
            if record.state.paused and number in (signal.SIGKILL, self._stop_signal(record)):
                self.tasks.resume(record.id)
                record.state.paused = False
                self.store.save(record)
            return True

    def _stopped_by_hand(self, record: Container, number: int) -> bool:
        """dockerd's killWithSignal: a kill marks the container manually
        stopped, and its stop signal or SIGKILL (any signal without a
        StopSignal configured) cancels its restart policy until the next
        manual start; True when it was waiting out a restart's back-off,
        which leaves it exited."""
        record.has_been_manually_stopped, restarting = True, record.state.restarting
        if number == signal.SIGKILL or not record.config.get("StopSignal") or number == self._stop_signal(record):
            self.restarts.cancel(record.id)
            if restarting:
                state = record.state
                state.set_stopped(state.exit_code, state.finished_at, state.oom_killed)
                self._exit_seen(record.id)
        self.store.save(record)
        return restarting

    @staticmethod
    def _stop_signal(record: Container) -> int:
        return parse_signal(record.config.get("StopSignal") or "SIGTERM")

    def exit_count(self, container_id: str) -> int:
        """Exits recorded so far, for ``wait_exit``."""
        with self._changed:
            return self._exits.get(container_id, 0)

    def wait_exit(self, container_id: str, seen: int, timeout: float | None) -> bool:
        """Until an exit after the ``seen``-th is recorded (its log is whole
        then) or the container is removed; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self._exits.get(container_id, 0) > seen
                                          or self.store.find_exact(container_id) is None, timeout)

    def kill(self, ref: str, sig: str | int = "SIGKILL") -> None:
        """Sends ``sig`` (a name or number as docker takes them); 409 when not running."""
        number = parse_signal(sig)
        record = self.store.get(ref)
        seen = self.exit_count(record.id)
        if not self._signal(record, number):
            raise Conflict(f"Cannot kill container: {ref}: Container {record.id} is not running")
        if number == signal.SIGKILL:
            self.wait_exit(record.id, seen, None)  # as dockerd, a SIGKILL returns once the exit is recorded

    def restart(self, ref: str, timeout: int | None = None) -> None:
        try:
            self.stop(ref, timeout)
        except NotModified:
            pass
        self.start(ref)
        self.publish(self.store.get(ref), "restart")

    def pause(self, ref: str) -> None:
        self._pause(ref, True)

    def unpause(self, ref: str) -> None:
        self._pause(ref, False)

    def _pause(self, ref: str, paused: bool) -> None:
        record = self.store.get(ref)
        with self._locks[record.id]:
            state = record.state
            if not state.running:
                raise Conflict(f"Container {record.id} is not running")
            if paused and state.paused:
                raise Conflict(f"Container {record.id} is already paused")
            if not paused and not state.paused:
                raise Conflict(f"Container {record.id} is not paused")
            (self.tasks.pause if paused else self.tasks.resume)(record.id)
            state.paused = paused
            self.store.save(record)
            self.publish(record, "pause" if paused else "unpause")

    # -- wait, remove, rename ----------------------------------------------------------

    def wait(self, ref: str, condition: str = "not-running", timeout: float | None = None) -> dict:
        """``POST /containers/<id>/wait``'s body once ``condition`` holds."""
        return self.waiter(ref, condition)(timeout)

    def waiter(self, ref: str, condition: str = "not-running") -> Callable[..., dict | None]:
        """A wait checked now (404, bad condition), to be waited out later:
        ``waiter(...)(timeout, cancelled)`` is the wait's body once the
        condition holds, or None once ``cancelled`` is set (the client has gone)."""
        record = self.store.get(ref)
        if condition not in WAIT_CONDITIONS:
            raise InvalidParameter(f"invalid condition: {condition!r}")
        seen = self.exit_count(record.id)

        def met() -> bool:
            if condition == "removed":
                return self.store.find_exact(record.id) is None
            if condition == "next-exit":
                return self._exits[record.id] > seen
            return not record.state.running or self._exits[record.id] > seen  # a restart's exit too, as dockerd

        def wait(timeout: float | None = None, cancelled: threading.Event | None = None) -> dict | None:
            deadline = None if timeout is None else time.monotonic() + timeout
            with self._changed:
                while not self._changed.wait_for(met, _CANCEL_POLL if cancelled else timeout):
                    if cancelled is not None and cancelled.is_set():
                        return None
                    if deadline is not None and time.monotonic() >= deadline:
                        raise System(f"timed out waiting for container {record.id}")
            error = record.state.error
            return {"StatusCode": record.state.exit_code, "Error": {"Message": error} if error else None}

        return wait

    def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        """``docker rm`` (``-f`` kills first, ``-v`` takes its anonymous volumes
        along); 409 for a running container without it."""
        record = self.store.get(ref)
        if record.state.running:
            if not force:
                status = record.state.status
                procedure = "Stop the container before attempting removal or force remove"
                if status == "paused":
                    procedure = "Unpause and then " + procedure.lower()
                raise Conflict(f"You cannot remove a {status} container {record.id}. {procedure}")
            seen = self.exit_count(record.id)
            if self._signal(record, signal.SIGKILL):
                self.wait_exit(record.id, seen, None)
        with self._locks[record.id]:
            if self.store.find_exact(record.id) is None:
                return  # removed meanwhile (--rm)
            if record.state.running:
                raise Conflict(f"You cannot remove a running container {record.id}. "
                               "Stop the container before attempting removal or force remove")
            record.state.removal_in_progress = True
            try:
                self.tasks.remove(record.id)
            except EngineError as err:
                record.state.removal_in_progress = False
                raise System(f"unable to remove container {record.id}: {err}") from None
            self.store.remove(record.id)
            self.restarts.reset(record.id)
            self.log_sink.removed(record)
            if volumes:
                self.volumes.removed(record.mount_points)
        self.publish(record, "destroy")
        with self._changed:
            self._exits.pop(record.id, None)
            self._changed.notify_all()
        self._locks.pop(record.id, None)

    def rename(self, ref: str, new_name: str) -> None:
        record = self.store.get(ref)
        with self._locks[record.id]:
            old_name = self.store.rename(record.id, new_name)
        self.publish(record, "rename", {"oldName": old_name})
