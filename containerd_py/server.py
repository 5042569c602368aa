"""Wires the stores, snapshotters and servicers into one gRPC server."""
import logging
import os
import sys
import uuid
from concurrent import futures

import grpc

from . import __version__, errors
from .api.containerd.services import (containers_pb2_grpc, content_pb2_grpc, diff_pb2_grpc, events_pb2_grpc,
                                      images_pb2_grpc, introspection_pb2_grpc, leases_pb2_grpc, namespaces_pb2_grpc,
                                      snapshots_pb2_grpc, tasks_pb2_grpc, version_pb2_grpc)
from .config import Config
from .containers import Containers
from .content.local import LocalContentStore
from .diff.walking import WalkingDiffer
from .events.exchange import Exchange
from .gc.collector import Collector
from .gc.scheduler import Scheduler
from .metadata import leasing
from .metadata.containers import SQLiteContainerStore
from .metadata.db import Database
from .metadata.sqlite import SQLiteImageStore, SQLiteLeaseStore, SQLiteNamespaceStore
from .plugins import Plugin, host_platform
from .services.common import LEASE_KEY
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

_CODES = [
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (errors.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
    (errors.OutOfRange, grpc.StatusCode.OUT_OF_RANGE),
    (errors.Unimplemented, grpc.StatusCode.UNIMPLEMENTED),
    (errors.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (errors.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (errors.Unknown, grpc.StatusCode.UNKNOWN),
]


def _abort(context: grpc.ServicerContext, method: str, e: Exception):
    if isinstance(e, errors.Error):
        code = next(c for cls, c in _CODES if isinstance(e, cls))
        log.debug("%s: %s: %s", method, code.name, e)
        context.abort(code, str(e))
    log.exception("%s failed", method)
    context.abort(grpc.StatusCode.UNKNOWN, f"{type(e).__name__}: {e}")


class _ErrorInterceptor(grpc.ServerInterceptor):
    """Turns domain errors into gRPC statuses (and logs unexpected ones)."""

    def intercept_service(self, continuation, details):
        handler = continuation(details)
        if handler is None:
            return None
        method = details.method
        # The call's lease, for the stores to add what the call creates to it.
        lease = next((v for k, v in details.invocation_metadata or () if k == LEASE_KEY), None)
        if handler.response_streaming:
            behavior = handler.unary_stream or handler.stream_stream

            def wrapped(request, context):
                try:
                    with leasing.using(lease):
                        yield from behavior(request, context)
                except Exception as e:  # noqa: BLE001 - every failure becomes a status
                    _abort(context, method, e)
        else:
            behavior = handler.unary_unary or handler.stream_unary

            def wrapped(request, context):
                try:
                    with leasing.using(lease):
                        return behavior(request, context)
                except Exception as e:  # noqa: BLE001
                    _abort(context, method, e)

        make = {(False, False): grpc.unary_unary_rpc_method_handler,
                (False, True): grpc.unary_stream_rpc_method_handler,
                (True, False): grpc.stream_unary_rpc_method_handler,
                (True, True): grpc.stream_stream_rpc_method_handler}[(handler.request_streaming,
                                                                      handler.response_streaming)]
        return make(wrapped, request_deserializer=handler.request_deserializer,
                    response_serializer=handler.response_serializer)


def _server_uuid(root: str) -> str:
    """A random id made on first start and kept, as containerd's introspection does."""
    path = os.path.join(root, "io.containerd.grpc.v1.introspection", "uuid")
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        value = str(uuid.uuid4())
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


class Daemon:
    """Everything a running containerd-py holds open."""

    def __init__(self, config: Config):
        self.config = config
        root = config.root
        platform = host_platform()
        os.makedirs(os.path.join(root, "io.containerd.metadata.v1.sqlite"), exist_ok=True)
        self.db = Database(os.path.join(root, "io.containerd.metadata.v1.sqlite", "meta.db"))
        self.namespaces = SQLiteNamespaceStore(self.db)
        self.images = SQLiteImageStore(self.db, self.namespaces)
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
                self.snapshotters[cls.name] = LeasedSnapshotter(cls(sn_root), self.db, self.leases)
            except OSError as e:
                plugin.init_error = f"{cls.name} is not supported on {sn_root}: {e}"
                log.warning("skip loading plugin io.containerd.snapshotter.v1.%s: %s", cls.name, plugin.init_error)
                continue
            self.namespaces.register_resource("snapshots", self.snapshotters[cls.name].inner.in_use)

        self.differ = WalkingDiffer(self.content, os.path.join(config.state, "tmpmounts"))
        # Pull, push, import and export inside the daemon, over the same stores the services use.
        container_store = SQLiteContainerStore(self.db, self.namespaces)
        self.collector = Collector(self.db, self.namespaces, self.content, self.images, self.leases, self.snapshotters,
                                   container_store)
        self.gc = Scheduler(self.collector.collect, config.gc_schedule_delay, config.gc_startup_delay)
        self.events = Exchange()
        self.containers = Containers(container_store, self.events, self.gc)
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

    def server(self) -> grpc.Server:
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=256, thread_name_prefix="grpc"),
            interceptors=[_ErrorInterceptor()],
            options=[("grpc.max_receive_message_length", self.config.max_recv_message_size),
                     ("grpc.max_send_message_length", self.config.max_send_message_size)])
        version_pb2_grpc.add_VersionServicer_to_server(VersionServicer(VERSION, __version__), server)
        introspection_pb2_grpc.add_IntrospectionServicer_to_server(
            IntrospectionServicer(self.plugins, self.uuid), server)
        namespaces_pb2_grpc.add_NamespacesServicer_to_server(NamespacesServicer(self.namespaces, self.events), server)
        leases_pb2_grpc.add_LeasesServicer_to_server(LeasesServicer(self.leases, self.collector, self.gc), server)
        content_pb2_grpc.add_ContentServicer_to_server(ContentServicer(self.content, self.gc, self.events), server)
        images_pb2_grpc.add_ImagesServicer_to_server(ImagesServicer(self.images, self.gc, self.events), server)
        snapshots_pb2_grpc.add_SnapshotsServicer_to_server(
            SnapshotsServicer(self.snapshotters, self.namespaces, self.gc, self.events), server)
        diff_pb2_grpc.add_DiffServicer_to_server(DiffServicer(self.differ), server)
        containers_pb2_grpc.add_ContainersServicer_to_server(ContainersServicer(self.containers), server)
        events_pb2_grpc.add_EventsServicer_to_server(EventsServicer(self.events), server)
        tasks_pb2_grpc.add_TasksServicer_to_server(TasksServicer(self.tasks), server)
        return server

    def close(self) -> None:
        self.gc.close()
        for sn in self.snapshotters.values():
            sn.close()
        self.db.close()
