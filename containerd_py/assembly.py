"""The composition root: the stores, snapshotters, task manager and servicers of a
running containerd-py, wired together into one gRPC server (`daemon.py` runs it)."""
import logging
import os
import sys

from . import __version__, errors, identifiers, rpc
from .config import Config
from .containers import Containers
from .convert import LEASE_KEY
from .content.local import LocalContentStore
from .diff.walking import WalkingDiffer
from .events.exchange import Exchange
from .gc.collector import Collector
from .gc.scheduler import Scheduler
from .metadata import leasing
from .metadata.sqlite_containers import SQLiteContainerStore
from .metadata.db import Database
from .metadata.sqlite import SQLiteImageStore, SQLiteLeaseStore, SQLiteNamespaceStore
from .plugins import Plugin, host_platform
from .services.containers import ContainersServicer
from .services.content import ContentServicer
from .services.diff import DiffServicer
from .services.events import EventsServicer
from .services.images import ImagesServicer
from .services.introspection import IntrospectionServicer
from .services.leases import LeasesServicer
from .services.namespaces import NamespacesServicer
from .services.snapshots import SnapshotsServicer
from .services.tasks import TasksServicer
from .services.version import VersionServicer
from .snapshots import overlay
from .snapshots.native import NativeSnapshotter
from .snapshots.overlay import OverlaySnapshotter
from .snapshots.leased import LeasedSnapshotter
from .tasks.manager import TaskManager
from .transfer.local import LocalBackend

log = logging.getLogger(__name__)

# The containerd release whose API we speak, and ours after the "+".
VERSION = f"1.6.0+containerd-py.{__version__}"


def _abort(context: rpc.ServicerContext, method: str, e: Exception):
    if isinstance(e, rpc.Termination):
        raise e
    if isinstance(e, errors.Error):
        context.abort(rpc.StatusCode[e.code], str(e))
    log.exception("%s failed", method)
    context.abort(rpc.StatusCode.UNKNOWN, f"{type(e).__name__}: {e}")


def _guarded(method: str, behavior, response_streaming: bool):
    """Turns domain errors into gRPC statuses (and logs unexpected ones), with
    the call's lease (`containerd-lease` metadata) in effect for the stores to
    add what the call creates to it."""
    def lease(context):
        return next((v for k, v in context.invocation_metadata() if k == LEASE_KEY), None)

    if response_streaming:
        def wrapped(request, context):
            try:
                with leasing.using(lease(context)):
                    yield from behavior(request, context)
            except Exception as e:  # noqa: BLE001 - every failure becomes a status
                _abort(context, method, e)
    else:
        def wrapped(request, context):
            try:
                with leasing.using(lease(context)):
                    return behavior(request, context)
            except Exception as e:  # noqa: BLE001
                _abort(context, method, e)
    return wrapped


def _server_uuid(root: str) -> str:
    """A random id made on first start and kept, as containerd's introspection does."""
    path = os.path.join(root, "io.containerd.grpc.v1.introspection", "uuid")
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        value = identifiers.random_uuid()
        with open(path + ".tmp", "w") as f:
            f.write(value)
            f.flush()
            os.fsync(f.fileno())
        os.rename(path + ".tmp", path)
        return value


def default_runtime_binary() -> str:
    """runpy-oci: the one installed beside this interpreter, else the first on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "runpy-oci")
    return beside if os.access(beside, os.X_OK) else "runpy-oci"


class Assembly:
    """Everything a running containerd-py holds open."""

    def __init__(self, config: Config):
        self.config = config
        root = config.root
        platform = host_platform()
        os.makedirs(os.path.join(root, "io.containerd.metadata.v1.sqlite"), exist_ok=True)
        self.db = Database(os.path.join(root, "io.containerd.metadata.v1.sqlite", "meta.db"))
        self.events = Exchange()
        self.namespaces = SQLiteNamespaceStore(self.db)
        self.images = SQLiteImageStore(self.db, self.namespaces, self.events)
        self.leases = SQLiteLeaseStore(self.db, self.namespaces)
        content_root = os.path.join(root, "io.containerd.content.v1.content")
        self.content = LocalContentStore(content_root, self.db, self.namespaces, self.leases)
        self.plugins = [Plugin("io.containerd.content.v1", "content", exports={"root": content_root})]

        self.snapshotters = {}
        for cls in (NativeSnapshotter, OverlaySnapshotter):
            if config.plugin_disabled("io.containerd.snapshotter.v1", cls.name):
                continue
            sn_root = os.path.join(root, f"io.containerd.snapshotter.v1.{cls.name}")
            plugin = Plugin("io.containerd.snapshotter.v1", cls.name, platforms=[platform], exports={"root": sn_root})
            self.plugins.append(plugin)
            try:
                if cls is OverlaySnapshotter:
                    overlay.supported(sn_root)
                self.snapshotters[cls.name] = LeasedSnapshotter(cls(sn_root), self.db, self.leases, self.events)
            except OSError as e:
                plugin.init_error = f"{cls.name} is not supported on {sn_root}: {e}"
                log.warning("skip loading plugin io.containerd.snapshotter.v1.%s: %s", cls.name, plugin.init_error)
                continue
            self.namespaces.register_resource("snapshots", self.snapshotters[cls.name].inner.in_use)

        self.differ = WalkingDiffer(self.content, os.path.join(config.state, "tmpmounts"))
        # Pull, push, import and export inside the daemon, over the same stores the services use.
        container_store = SQLiteContainerStore(self.db, self.namespaces, self.events)
        self.collector = Collector(self.db, self.namespaces, self.content, self.images, self.leases, self.snapshotters,
                                   container_store)
        self.gc = Scheduler(self.collector.collect, config.gc_schedule_delay, config.gc_startup_delay)
        self.containers = Containers(container_store, self.gc.deleted)
        self.tasks = TaskManager(config.state, self.containers, self.events, default_runtime_binary())
        self.tasks.restore()
        self.transfer = LocalBackend(self.content, self.images, self.snapshotters, self.differ, self.leases,
                                     self.collector, self.gc)
        self.plugins += [
            Plugin("io.containerd.metadata.v1", "sqlite", requires=["io.containerd.content.v1",
                                                                    "io.containerd.snapshotter.v1"]),
            Plugin("io.containerd.differ.v1", "walking", requires=["io.containerd.metadata.v1"], platforms=[platform]),
            Plugin("io.containerd.lease.v1", "manager", requires=["io.containerd.metadata.v1"]),
            Plugin("io.containerd.runtime.v2", "task", requires=["io.containerd.metadata.v1"], platforms=[platform]),
        ]
        services = ["containers", "content", "diff", "events", "images", "introspection", "leases", "namespaces",
                    "snapshots", "tasks", "version"]
        self.plugins += [Plugin("io.containerd.service.v1", f"{s}-service", requires=["io.containerd.metadata.v1"])
                         for s in services if s not in ("events", "introspection", "version")]
        self.plugins += [Plugin("io.containerd.grpc.v1", s, requires=["io.containerd.service.v1"]) for s in services]
        self.uuid = _server_uuid(root)

    def server(self) -> rpc.Server:
        server = rpc.Server(max_workers=256, max_receive_message_length=self.config.max_recv_message_size,
                            max_send_message_length=self.config.max_send_message_size, wrap=_guarded)
        for servicer in (VersionServicer(VERSION, __version__), IntrospectionServicer(self.plugins, self.uuid),
                         NamespacesServicer(self.namespaces, self.events),
                         LeasesServicer(self.leases, self.collector, self.gc),
                         ContentServicer(self.content, self.gc, self.events),
                         ImagesServicer(self.images, self.gc),
                         SnapshotsServicer(self.snapshotters, self.namespaces, self.gc, self.events),
                         DiffServicer(self.differ), ContainersServicer(self.containers), EventsServicer(self.events),
                         TasksServicer(self.tasks)):
            server.add_service(servicer.SERVICE, servicer)
        return server

    def close(self) -> None:
        self.gc.close()
        for sn in self.snapshotters.values():
            sn.close()
        self.db.close()
