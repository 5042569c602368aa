"""Containers, their snapshots and tasks in containerd, for the container
service: the few calls dockerd's libcontainerd makes, through containerd_py's
client library, with containerd's errors turned into the engine's.

A container here is containerd's record (spec, runtime, snapshot key = the
container's ID) and a snapshot of its image; its task is what runs. Exits
and OOM kills come as events (``subscribe_exits``), so the engine learns of
them whatever call it was making, and at a restart from ``task_state``.
"""
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from containerd_py import errors as cerrors
from containerd_py.api.containerd.events import task_pb2
from containerd_py.api.containerd.runtime import runc_options_pb2
from containerd_py.client import Client
from containerd_py.containers import Container as ContainerdContainer
from containerd_py.transfer.manifests import chain_ids, read_json, resolve_manifest
from containerd_py.types import AnyValue, Mount, ProcessState, Stdio

from engine import reference
from engine.disk import files_size
from engine.errors import Conflict, InvalidParameter, NotFound, System, Unavailable

RUNC_V2 = "io.containerd.runc.v2"
SPEC_TYPE = "types.containerd.io/opencontainers/runtime-spec/1/Spec"
SNAPSHOTTER = "overlayfs"
EXIT_TOPIC, OOM_TOPIC = "/tasks/exit", "/tasks/oom"

_ENGINE_ERROR = {cerrors.NotFound: NotFound, cerrors.AlreadyExists: Conflict, cerrors.FailedPrecondition: Conflict,
                 cerrors.InvalidArgument: InvalidParameter, cerrors.Unavailable: Unavailable}


@contextmanager
def engine_errors() -> Iterator[None]:
    """containerd's errors as the engine's, the message as containerd wrote it."""
    try:
        yield
    except cerrors.Error as err:
        raise _ENGINE_ERROR.get(type(err), System)(str(err)) from None


@dataclass(frozen=True)
class ImageForContainer:
    """What a create needs of an image: its ID, its config, the snapshot to start from."""
    name: str
    id: str  # the config's digest, dockerd's image ID
    config: dict  # the image config's "config" object (Cmd, Env, ...)
    chain_id: str  # "" for an image without layers


@dataclass(frozen=True)
class TaskExit:
    container_id: str
    exit_code: int
    exited_at: int  # nanoseconds since the epoch


@dataclass(frozen=True)
class ExecExit:
    """The exit of a process exec'd in a container's task."""
    container_id: str
    exec_id: str
    exit_code: int
    exited_at: int  # nanoseconds since the epoch


def docker_reference(ref: str) -> str:
    """A short name as docker expands it (busybox -> docker.io/library/busybox:latest),
    through engine.reference; what does not parse as a name is looked up as given."""
    try:
        named = reference.parse_normalized(ref)
    except InvalidParameter:
        return ref
    return str(named.tag_name_only())


def init_snapshot(container_id: str) -> str:
    """The name of a container's committed init layer (moby's "<id>-init")."""
    return f"{container_id}-init"


class ContainerdTasks:
    """The container service's view of containerd."""

    def __init__(self, client: Client, snapshotter: str = SNAPSHOTTER):
        self.client, self.snapshotter = client, snapshotter
        self.snapshots = client.snapshots(snapshotter)

    # -- images ----------------------------------------------------------------

    def image(self, ref: str) -> ImageForContainer:
        """The image ``ref`` names (as given, or as docker expands a short
        name); dockerd's 404 otherwise."""
        found = None
        for name in dict.fromkeys((ref, docker_reference(ref))):
            try:
                found = self.client.images.get(name)
                break
            except cerrors.NotFound:
                continue
            except cerrors.Error as err:
                raise System(f"looking up image {ref}: {err}") from None
        if found is None:
            raise NotFound(f"No such image: {ref}")
        with engine_errors():
            content, ns = self.client.backend.content, self.client.namespace
            manifest = resolve_manifest(content, ns, found.target)
            config = read_json(content, ns, manifest.config)
        chain = chain_ids(manifest.diff_ids)
        return ImageForContainer(found.name, manifest.config.digest, config.get("config") or {},
                                 chain[-1] if chain else "")

    # -- containers ------------------------------------------------------------

    def leased(self):
        """A block whose snapshots and containers a lease holds until the block ends:
        containerd's collector removes an active snapshot nothing references, and
        a snapshot is unreferenced until its container's record names it."""
        return self.client.backend.leased(self.client.namespace)

    def prepare_snapshot(self, container_id: str, parent: str,
                         init_layer: Callable[[list[Mount]], None] | None = None) -> list[Mount]:
        """The container's writable snapshot. With ``init_layer`` (called with
        the mounts of a snapshot to fill), as dockerd's: a committed
        ``<id>-init`` snapshot between the image and the container."""
        with engine_errors():
            if init_layer is not None:
                active = f"{container_id}-init-prepare"
                init_layer(self.snapshots.prepare(active, parent))
                self.snapshots.commit(init_snapshot(container_id), active)
                parent = init_snapshot(container_id)
            return self.snapshots.prepare(container_id, parent)

    def snapshot_mounts(self, container_id: str) -> list[Mount]:
        with engine_errors():
            return self.snapshots.mounts(container_id)

    def remove_snapshot(self, container_id: str) -> None:
        """The container's snapshot, then its init layer, or what is left of
        a create that stopped before committing it (only then is there an
        ``-init-prepare``: a round trip spared on every other removal)."""
        init_layer = init_snapshot(container_id)
        for key in (container_id, init_layer, f"{container_id}-init-prepare"):
            try:
                self.snapshots.remove(key)
            except cerrors.NotFound:
                continue
            except cerrors.Error as err:
                raise System(f"removing the snapshot of {container_id}: {err}") from None
            if key == init_layer:
                return

    def snapshot_usage(self, container_id: str) -> int:
        """The bytes of what the container wrote (0 once its snapshot is gone),
        as dockerd's overlay2 counts them: its snapshot's upper directory
        walked, not containerd's count of blocks (which has the directories
        made for its mounts weigh 4 KiB each)."""
        try:
            mounts = self.snapshots.mounts(container_id)
        except cerrors.NotFound:
            return 0
        except cerrors.Error as err:
            raise System(f"measuring the snapshot of {container_id}: {err}") from None
        return files_size(writable_dir(mounts))

    def create_container(self, container_id: str, image_name: str, spec: dict, runtime_binary: str,
                         labels: dict | None = None) -> None:
        """containerd's record of the container, run by the runc shim with ``runtime_binary``."""
        options = AnyValue(runc_options_pb2.Options.DESCRIPTOR.full_name,
                           runc_options_pb2.Options(binary_name=runtime_binary).SerializeToString())
        with engine_errors():
            self.client.containers.create(ContainerdContainer(
                container_id, RUNC_V2, options, AnyValue(SPEC_TYPE, json.dumps(spec).encode()), image_name,
                self.snapshotter, container_id, dict(labels or {})))

    def update_spec(self, container_id: str, change: Callable[[dict], None]) -> None:
        """The container's stored spec changed by ``change`` (what is only
        known at start, such as legacy links' environment), before its task."""
        with engine_errors():
            container = self.client.containers.get(container_id)
            spec = json.loads(container.spec.value)
            change(spec)
            container.spec = AnyValue(SPEC_TYPE, json.dumps(spec).encode())
            self.client.containers.update(container, ["spec"])

    def delete_container(self, container_id: str) -> None:
        try:
            self.client.containers.delete(container_id)
        except cerrors.NotFound:
            pass
        except cerrors.Error as err:
            raise System(f"removing container {container_id} from containerd: {err}") from None

    def remove(self, container_id: str) -> None:
        """Its task (which must have stopped), its containerd record, its snapshot; what is gone already is skipped."""
        self.delete_task(container_id)
        self.delete_container(container_id)
        self.remove_snapshot(container_id)

    # -- tasks -----------------------------------------------------------------

    def create_task(self, container_id: str, stdio: Stdio) -> int:
        with engine_errors():
            return self.client.tasks.create(container_id, self.snapshot_mounts(container_id), stdio)

    def start_task(self, container_id: str) -> int:
        with engine_errors():
            return self.client.tasks.start(container_id)

    def kill(self, container_id: str, signal: int) -> None:
        """Signals every process of the task (as dockerd does for the init's signal too)."""
        with engine_errors():
            self.client.tasks.kill(container_id, signal, all_=False)

    def update_resources(self, container_id: str, resources: dict) -> None:
        with engine_errors():
            self.client.tasks.update(container_id, resources)

    def close_stdin(self, container_id: str) -> None:
        """The task's stdin has ended: real containerd's shim holds the FIFO
        open for writing itself until told (containerd-py's needs no word)."""
        with engine_errors():
            self.client.tasks.close_io(container_id)

    def resize(self, container_id: str, width: int, height: int) -> None:
        """The task's terminal size (the init process's)."""
        with engine_errors():
            self.client.tasks.resize_pty(container_id, "", width, height)

    def pause(self, container_id: str) -> None:
        with engine_errors():
            self.client.tasks.pause(container_id)

    def resume(self, container_id: str) -> None:
        with engine_errors():
            self.client.tasks.resume(container_id)

    def task_state(self, container_id: str) -> ProcessState | None:
        """The task's state; None when it has none."""
        try:
            return self.client.tasks.get(container_id)
        except cerrors.NotFound:
            return None
        except cerrors.Error as err:
            raise _ENGINE_ERROR.get(type(err), System)(str(err)) from None

    def delete_task(self, container_id: str) -> TaskExit | None:
        """Removes a stopped task; its exit, or None when there was none."""
        try:
            gone = self.client.tasks.delete(container_id)
        except cerrors.NotFound:
            return None
        except cerrors.Error as err:
            raise _ENGINE_ERROR.get(type(err), System)(str(err)) from None
        return TaskExit(container_id, gone.status, gone.exited_at)

    # -- events ----------------------------------------------------------------

    def subscribe_exits(self):
        """A subscription to the namespace's task exits and OOM kills; iterate
        it with :func:`task_events`, close() it from any thread."""
        ns = json.dumps(self.client.namespace)
        return self.client.events.subscribe([f'namespace=={ns},topic=="{EXIT_TOPIC}"',
                                             f'namespace=={ns},topic=="{OOM_TOPIC}"'])


def task_events(subscription) -> Iterator[TaskExit | ExecExit | str]:
    """Init exits as TaskExit, exits of exec'd processes as ExecExit, OOM
    kills as the container's ID. Ends when the subscription is closed; a lost
    daemon is raised as 503."""
    try:
        for envelope in subscription:
            if envelope.topic == EXIT_TOPIC:
                event = task_pb2.TaskExit.FromString(envelope.event.value)
                exited_at = event.exited_at.seconds * 1_000_000_000 + event.exited_at.nanos
                if event.id == event.container_id:
                    yield TaskExit(event.container_id, event.exit_status, exited_at)
                else:
                    yield ExecExit(event.container_id, event.id, event.exit_status, exited_at)
            elif envelope.topic == OOM_TOPIC:
                yield task_pb2.TaskOOM.FromString(envelope.event.value).container_id
    except cerrors.Error as err:
        raise Unavailable(f"containerd's events: {err}") from None


def writable_dir(mounts: list[Mount]) -> str:
    """The directory a snapshot's writes go to: an overlay's upperdir, else a bind's source."""
    for mount in mounts:
        for option in mount.options:
            if option.startswith("upperdir="):
                return option.partition("=")[2]
    return mounts[0].source if mounts else ""
