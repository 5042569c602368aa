"""`Client`: a connection to a daemon (containerd-py or containerd) with the
namespace set once, its services' proxies seen from that namespace, and what
a user of containers does with them (a container from an image, its task,
removal), as containerd's Go client offers them."""
import json
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial

from .. import errors
from ..api.containerd.runtime import runc_options_pb2
from ..containers import Container
from ..errors import q
from ..transfer.backend import Backend, expiry_label
from ..transfer.manifests import chain_ids, read_json, resolve_manifest
from ..types import AnyValue, Stdio
from . import oci
from .connection import Connection
from .content_proxy import ContentProxy
from .proxies import (ContainersProxy, DiffProxy, EventsProxy, ImagesProxy, IntrospectionProxy, LeasesProxy,
                      NamespacesProxy, SnapshotsProxy, VersionProxy)
from .tasks_proxy import TasksProxy

RUNTIME = "io.containerd.runc.v2"
SPEC_TYPE = "types.containerd.io/opencontainers/runtime-spec/1/Spec"


class InNamespace:
    """A proxy seen from one namespace: `view.list(filters)` is `proxy.list(ns, filters)`."""

    def __init__(self, proxy, ns: str):
        self.proxy, self.namespace = proxy, ns

    def __getattr__(self, name: str):
        return partial(getattr(self.proxy, name), self.namespace)


class RemoteBackend(Backend):
    """The transfer code's Backend over the proxies; leased() makes the block's calls carry a lease."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.content = ContentProxy(conn)
        self.images = ImagesProxy(conn)
        self.applier = DiffProxy(conn)
        self._leases = LeasesProxy(conn)

    def snapshotter(self, name):
        return SnapshotsProxy(self.conn, name)

    @contextmanager
    def leased(self, ns: str) -> Iterator[str]:
        lease_id = self._leases.create(ns, "", expiry_label()).id  # the daemon makes up its id
        failed = True
        try:
            with self.conn.leased(lease_id):
                yield lease_id
            failed = False
        finally:
            self._leases.delete(ns, lease_id, sync=failed)  # a failure's leftovers are gone before it is reported


@dataclass
class ContainerOptions:
    """What `new_container` makes of an image: the spec's process and mounts, the runtime, the snapshotter."""

    args: list[str] = field(default_factory=list)  # the image's Cmd when empty
    env: list[str] = field(default_factory=list)
    mounts: list[dict] = field(default_factory=list)
    terminal: bool = False
    cwd: str = ""
    user: str = ""
    runtime: str = ""  # a runc-compatible binary; the daemon's default when empty
    snapshotter: str = "overlayfs"


class Client:
    def __init__(self, address: str, namespace: str = "default", timeout: float = 10):
        """Fails (Unavailable) unless the daemon answers within timeout seconds."""
        self.address, self.namespace = address, namespace
        self.conn = Connection(address)
        try:
            self.conn.ping(timeout)
        except errors.Error:
            self.conn.close()
            raise
        self.backend = RemoteBackend(self.conn)
        self.content = InNamespace(self.backend.content, namespace)
        self.images = InNamespace(self.backend.images, namespace)
        self.diff = InNamespace(self.backend.applier, namespace)
        self.leases = InNamespace(LeasesProxy(self.conn), namespace)
        self.containers = InNamespace(ContainersProxy(self.conn), namespace)
        self.tasks = InNamespace(TasksProxy(self.conn), namespace)
        self.namespaces = NamespacesProxy(self.conn)
        self.events = EventsProxy(self.conn)
        self.version = VersionProxy(self.conn)
        self.introspection = IntrospectionProxy(self.conn)

    def snapshots(self, snapshotter: str) -> InNamespace:
        return InNamespace(self.backend.snapshotter(snapshotter), self.namespace)

    def close(self) -> None:
        self.conn.close()

    def new_container(self, container_id: str, image_ref: str, opts: ContainerOptions) -> Container:
        """The container's record, with its spec made from the image's config, and a snapshot of
        the image to run on; nothing is left when either fails."""
        image = self.images.get(image_ref)
        manifest = resolve_manifest(self.backend.content, self.namespace, image.target)
        config = read_json(self.backend.content, self.namespace, manifest.config)
        try:
            spec = oci.spec_for(config, opts.args, opts.env, opts.mounts, opts.terminal, opts.cwd, opts.user)
        except ValueError as e:
            raise errors.InvalidArgument(str(e)) from None
        runtime_options = None
        if opts.runtime:
            runtime_options = AnyValue(runc_options_pb2.Options.DESCRIPTOR.full_name,
                                       runc_options_pb2.Options(binary_name=opts.runtime).SerializeToString())
        snapshots = self.snapshots(opts.snapshotter)
        with self.backend.leased(self.namespace):  # the collector takes a snapshot no container names yet
            snapshots.prepare(container_id, chain_ids(manifest.diff_ids)[-1] if manifest.diff_ids else "")
            try:
                return self.containers.create(Container(
                    container_id, RUNTIME, runtime_options, AnyValue(SPEC_TYPE, json.dumps(spec).encode()),
                    image.name, opts.snapshotter, container_id))
            except errors.Error:
                snapshots.remove(container_id)
                raise

    def new_task(self, container_id: str, stdio: Stdio) -> int:
        """The container's task on its snapshot, created (not started); returns its pid."""
        container = self.containers.get(container_id)
        rootfs = []
        if container.snapshot_key:
            rootfs = self.snapshots(container.snapshotter).mounts(container.snapshot_key)
        return self.tasks.create(container_id, rootfs, stdio)

    def exec_process(self, container_id: str, exec_id: str, args: list[str], stdio: Stdio, env: list[str] = (),
                     cwd: str = "") -> None:
        """Adds args as a process of the container's task, with the init's settings otherwise; start it next."""
        process = json.loads(self.containers.get(container_id).spec.value)["process"]
        process.update(args=args, terminal=stdio.terminal, env=oci.merge_env(process.get("env") or [], list(env)))
        if cwd:
            process["cwd"] = cwd
        self.tasks.exec(container_id, exec_id, process, stdio)

    def remove_container(self, container_id: str, force: bool = False) -> None:
        """Its task (killed first with force), its record and its snapshot."""
        container = self.containers.get(container_id)
        try:
            task = self.tasks.get(container_id)
        except errors.NotFound:
            task = None
        if task is not None:
            if task.status in ("running", "paused"):
                if not force:
                    raise errors.FailedPrecondition(f"container {q(container_id)} is running "
                                                    f"(stop it first, or remove with --force)")
                self.tasks.kill(container_id, signal.SIGKILL, all_=True)
                self.tasks.wait(container_id)
            self.tasks.delete(container_id)
        self.containers.delete(container_id)
        if container.snapshot_key:
            try:
                self.snapshots(container.snapshotter).remove(container.snapshot_key)
            except errors.NotFound:
                pass
