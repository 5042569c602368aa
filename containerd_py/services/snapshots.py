"""Snapshots service: dispatches to the snapshotter named in each request."""
from google.protobuf import empty_pb2

from .. import errors
from ..api.containerd.events import snapshot_pb2 as events
from ..api.containerd.services import snapshots_pb2 as pb
from ..convert import mount_to_proto, snapshot_info_to_proto
from ..events.exchange import Exchange
from ..gc.scheduler import Scheduler
from ..metadata.store import NamespaceStore
from ..snapshots.snapshotter import Info, Kind, Snapshotter
from .common import batched, namespace


class SnapshotsServicer:
    SERVICE = pb.DESCRIPTOR.services_by_name["Snapshots"]

    def __init__(self, snapshotters: dict[str, Snapshotter], namespaces: NamespaceStore, gc: Scheduler,
                 exchange: Exchange):
        self._snapshotters = snapshotters
        self._namespaces = namespaces
        self._gc = gc
        self._exchange = exchange

    def _get(self, name: str) -> Snapshotter:
        if not name:
            raise errors.InvalidArgument("snapshotter argument missing")
        try:
            return self._snapshotters[name]
        except KeyError:
            raise errors.InvalidArgument(f"snapshotter not loaded: {name}") from None

    def Prepare(self, request, context):
        sn, ns = self._get(request.snapshotter), namespace(context)
        self._namespaces.ensure(ns)
        mounts = sn.prepare(ns, request.key, request.parent, dict(request.labels))
        return pb.PrepareSnapshotResponse(mounts=[mount_to_proto(m) for m in mounts])

    def View(self, request, context):
        sn, ns = self._get(request.snapshotter), namespace(context)
        self._namespaces.ensure(ns)
        mounts = sn.view(ns, request.key, request.parent, dict(request.labels))
        return pb.ViewSnapshotResponse(mounts=[mount_to_proto(m) for m in mounts])

    def Mounts(self, request, context):
        mounts = self._get(request.snapshotter).mounts(namespace(context), request.key)
        return pb.MountsResponse(mounts=[mount_to_proto(m) for m in mounts])

    def Commit(self, request, context):
        self._get(request.snapshotter).commit(namespace(context), request.name, request.key, dict(request.labels))
        return empty_pb2.Empty()

    def Remove(self, request, context):
        ns = namespace(context)
        self._get(request.snapshotter).remove(ns, request.key)
        self._exchange.publish(ns, "/snapshot/remove", events.SnapshotRemove(key=request.key))
        self._gc.deleted()
        return empty_pb2.Empty()

    def Stat(self, request, context):
        info = self._get(request.snapshotter).stat(namespace(context), request.key)
        return pb.StatSnapshotResponse(info=snapshot_info_to_proto(info))

    def Update(self, request, context):
        info = Info(request.info.name, labels=dict(request.info.labels), kind=Kind(request.info.kind))
        updated = self._get(request.snapshotter).update(namespace(context), info, list(request.update_mask.paths))
        return pb.UpdateSnapshotResponse(info=snapshot_info_to_proto(updated))

    def List(self, request, context):
        infos = self._get(request.snapshotter).walk(namespace(context), list(request.filters))
        for batch in batched(infos):
            yield pb.ListSnapshotsResponse(info=[snapshot_info_to_proto(i) for i in batch])

    def Usage(self, request, context):
        usage = self._get(request.snapshotter).usage(namespace(context), request.key)
        return pb.UsageResponse(size=usage.size, inodes=usage.inodes)

    def Cleanup(self, request, context):
        self._get(request.snapshotter).cleanup()
        return empty_pb2.Empty()
