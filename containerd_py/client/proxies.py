"""A proxy per service of containerd's API (content and tasks have modules of
their own: content_proxy.py, tasks_proxy.py): each takes and returns the domain types the daemon's own stores
use, so code written against a store interface (the transfer code) runs in a
client as it runs in the daemon. Every namespaced call names its namespace,
as every call of a Go client carries it in its context."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from google.protobuf import empty_pb2, field_mask_pb2

from ..api.containerd.services import (containers_pb2, diff_pb2, events_pb2, images_pb2, introspection_pb2, leases_pb2,
                                       namespaces_pb2, snapshots_pb2, version_pb2)
from ..containers import Container, ContainerStore
from ..convert import (container_from_proto, container_to_proto, descriptor_from_proto, descriptor_to_proto,
                       envelope_from_proto, image_from_proto, image_to_proto, lease_from_proto, mount_from_proto,
                       mount_to_proto, namespace_from_proto, namespace_to_proto, snapshot_info_from_proto)
from ..diff.applier import Applier
from ..metadata.store import ImageStore, LeaseStore, Namespace, Resource
from ..plugins import Platform, Plugin
from ..rpc.client_channel import RpcError
from ..rpc.status import StatusCode
from ..snapshots.snapshotter import Snapshotter, Usage
from ..types import Envelope
from .connection import Connection, domain_error, mapped


def _mask(paths: list[str]) -> field_mask_pb2.FieldMask | None:
    return field_mask_pb2.FieldMask(paths=paths) if paths else None


class ImagesProxy(ImageStore):
    def __init__(self, conn: Connection):
        self._conn = conn
        self._stub = conn.stub(images_pb2, "Images")

    @mapped
    def get(self, ns, name):
        return image_from_proto(self._stub.Get(images_pb2.GetImageRequest(name=name), metadata=self._conn.md(ns)).image)

    @mapped
    def list(self, ns, filters):
        response = self._stub.List(images_pb2.ListImagesRequest(filters=filters), metadata=self._conn.md(ns))
        return [image_from_proto(i) for i in response.images]

    @mapped
    def create(self, ns, image):
        response = self._stub.Create(images_pb2.CreateImageRequest(image=image_to_proto(image)),
                                     metadata=self._conn.md(ns))
        return image_from_proto(response.image)

    @mapped
    def update(self, ns, image, paths):
        request = images_pb2.UpdateImageRequest(image=image_to_proto(image), update_mask=_mask(paths))
        return image_from_proto(self._stub.Update(request, metadata=self._conn.md(ns)).image)

    @mapped
    def delete(self, ns, name, sync: bool = False):
        """sync: returns once the garbage collector has removed what only the image held."""
        self._stub.Delete(images_pb2.DeleteImageRequest(name=name, sync=sync), metadata=self._conn.md(ns))


class SnapshotsProxy(Snapshotter):
    """One snapshotter of the snapshots service."""

    def __init__(self, conn: Connection, name: str):
        self._conn, self.name, self.root = conn, name, ""
        self._stub = conn.stub(snapshots_pb2, "Snapshots")

    @mapped
    def stat(self, ns, key):
        request = snapshots_pb2.StatSnapshotRequest(snapshotter=self.name, key=key)
        return snapshot_info_from_proto(self._stub.Stat(request, metadata=self._conn.md(ns)).info)

    @mapped
    def update(self, ns, info, paths):
        request = snapshots_pb2.UpdateSnapshotRequest(
            snapshotter=self.name, info=snapshots_pb2.Info(name=info.name, labels=info.labels),
            update_mask=field_mask_pb2.FieldMask(paths=paths))
        return snapshot_info_from_proto(self._stub.Update(request, metadata=self._conn.md(ns)).info)

    @mapped
    def usage(self, ns, key):
        r = self._stub.Usage(snapshots_pb2.UsageRequest(snapshotter=self.name, key=key), metadata=self._conn.md(ns))
        return Usage(r.size, r.inodes)

    @mapped
    def mounts(self, ns, key):
        r = self._stub.Mounts(snapshots_pb2.MountsRequest(snapshotter=self.name, key=key), metadata=self._conn.md(ns))
        return [mount_from_proto(m) for m in r.mounts]

    @mapped
    def prepare(self, ns, key, parent="", labels=None):
        request = snapshots_pb2.PrepareSnapshotRequest(snapshotter=self.name, key=key, parent=parent, labels=labels)
        return [mount_from_proto(m) for m in self._stub.Prepare(request, metadata=self._conn.md(ns)).mounts]

    @mapped
    def view(self, ns, key, parent="", labels=None):
        request = snapshots_pb2.ViewSnapshotRequest(snapshotter=self.name, key=key, parent=parent, labels=labels)
        return [mount_from_proto(m) for m in self._stub.View(request, metadata=self._conn.md(ns)).mounts]

    @mapped
    def commit(self, ns, name, key, labels=None):
        request = snapshots_pb2.CommitSnapshotRequest(snapshotter=self.name, name=name, key=key, labels=labels)
        self._stub.Commit(request, metadata=self._conn.md(ns))

    @mapped
    def remove(self, ns, key):
        self._stub.Remove(snapshots_pb2.RemoveSnapshotRequest(snapshotter=self.name, key=key),
                          metadata=self._conn.md(ns))

    @mapped
    def walk(self, ns, filters=()):
        responses = self._stub.List(snapshots_pb2.ListSnapshotsRequest(snapshotter=self.name, filters=list(filters)),
                                    metadata=self._conn.md(ns))
        return [snapshot_info_from_proto(i) for r in responses for i in r.info]

    @mapped
    def cleanup(self):
        self._stub.Cleanup(snapshots_pb2.CleanupRequest(snapshotter=self.name))

    def close(self):
        pass


class DiffProxy(Applier):
    def __init__(self, conn: Connection):
        self._conn = conn
        self._stub = conn.stub(diff_pb2, "Diff")

    @mapped
    def apply(self, ns, desc, mounts):
        request = diff_pb2.ApplyRequest(diff=descriptor_to_proto(desc), mounts=[mount_to_proto(m) for m in mounts])
        return descriptor_from_proto(self._stub.Apply(request, metadata=self._conn.md(ns)).applied)

    @mapped
    def compare(self, ns, lower, upper, media_type="", ref="", labels=None):
        """containerd's Diff: the changes from the lower mounts to the upper ones, as a layer blob."""
        request = diff_pb2.DiffRequest(left=[mount_to_proto(m) for m in lower],
                                       right=[mount_to_proto(m) for m in upper], media_type=media_type, ref=ref,
                                       labels=labels)
        return descriptor_from_proto(self._stub.Diff(request, metadata=self._conn.md(ns)).diff)


class ContainersProxy(ContainerStore):
    def __init__(self, conn: Connection):
        self._conn = conn
        self._stub = conn.stub(containers_pb2, "Containers")

    @mapped
    def get(self, ns, container_id):
        response = self._stub.Get(containers_pb2.GetContainerRequest(id=container_id), metadata=self._conn.md(ns))
        return container_from_proto(response.container)

    @mapped
    def list(self, ns, filters):
        response = self._stub.List(containers_pb2.ListContainersRequest(filters=filters), metadata=self._conn.md(ns))
        return [container_from_proto(c) for c in response.containers]

    @mapped
    def create(self, ns, container: Container):
        request = containers_pb2.CreateContainerRequest(container=container_to_proto(container))
        return container_from_proto(self._stub.Create(request, metadata=self._conn.md(ns)).container)

    @mapped
    def update(self, ns, container, paths):
        request = containers_pb2.UpdateContainerRequest(container=container_to_proto(container),
                                                        update_mask=_mask(paths))
        return container_from_proto(self._stub.Update(request, metadata=self._conn.md(ns)).container)

    @mapped
    def delete(self, ns, container_id):
        self._stub.Delete(containers_pb2.DeleteContainerRequest(id=container_id), metadata=self._conn.md(ns))


class LeasesProxy(LeaseStore):
    def __init__(self, conn: Connection):
        self._conn = conn
        self._stub = conn.stub(leases_pb2, "Leases")

    @mapped
    def create(self, ns, lease_id="", labels=None):
        """Without an id, the daemon makes one up."""
        request = leases_pb2.CreateRequest(id=lease_id, labels=labels)
        return lease_from_proto(self._stub.Create(request, metadata=self._conn.md(ns)).lease)

    @mapped
    def delete(self, ns, lease_id, sync: bool = False):
        """sync: returns once the garbage collector has removed what only the lease held."""
        self._stub.Delete(leases_pb2.DeleteRequest(id=lease_id, sync=sync), metadata=self._conn.md(ns))

    @mapped
    def list(self, ns, filters):
        response = self._stub.List(leases_pb2.ListRequest(filters=filters), metadata=self._conn.md(ns))
        return [lease_from_proto(lease) for lease in response.leases]

    @mapped
    def add_resource(self, ns, lease_id, resource):
        request = leases_pb2.AddResourceRequest(id=lease_id, resource=leases_pb2.Resource(id=resource.id,
                                                                                          type=resource.type))
        self._stub.AddResource(request, metadata=self._conn.md(ns))

    @mapped
    def delete_resource(self, ns, lease_id, resource):
        request = leases_pb2.DeleteResourceRequest(id=lease_id, resource=leases_pb2.Resource(id=resource.id,
                                                                                             type=resource.type))
        self._stub.DeleteResource(request, metadata=self._conn.md(ns))

    @mapped
    def list_resources(self, ns, lease_id):
        response = self._stub.ListResources(leases_pb2.ListResourcesRequest(id=lease_id), metadata=self._conn.md(ns))
        return [Resource(r.id, r.type) for r in response.resources]


class NamespacesProxy:
    """Namespaces are not namespaced: no call names one."""

    def __init__(self, conn: Connection):
        self._stub = conn.stub(namespaces_pb2, "Namespaces")

    @mapped
    def get(self, name: str) -> Namespace:
        return namespace_from_proto(self._stub.Get(namespaces_pb2.GetNamespaceRequest(name=name)).namespace)

    @mapped
    def list(self) -> list[Namespace]:
        return [namespace_from_proto(n) for n in self._stub.List(namespaces_pb2.ListNamespacesRequest()).namespaces]

    @mapped
    def create(self, name: str, labels: dict[str, str]) -> Namespace:
        request = namespaces_pb2.CreateNamespaceRequest(namespace=namespaces_pb2.Namespace(name=name, labels=labels))
        return namespace_from_proto(self._stub.Create(request).namespace)

    @mapped
    def update(self, namespace: Namespace, paths: list[str]) -> Namespace:
        request = namespaces_pb2.UpdateNamespaceRequest(namespace=namespace_to_proto(namespace),
                                                        update_mask=_mask(paths))
        return namespace_from_proto(self._stub.Update(request).namespace)

    @mapped
    def delete(self, name: str) -> None:
        self._stub.Delete(namespaces_pb2.DeleteNamespaceRequest(name=name))


class Subscription:
    """Events as they come, for one reader to iterate; close() ends the iteration from any thread."""

    def __init__(self, stream):
        self._stream = stream

    def __iter__(self) -> Iterator[Envelope]:
        try:
            for envelope in self._stream:
                yield envelope_from_proto(envelope)
        except RpcError as e:
            if e.code != StatusCode.CANCELLED:
                raise domain_error(e) from None

    def close(self) -> None:
        self._stream.cancel()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class EventsProxy:
    def __init__(self, conn: Connection):
        self._stub = conn.stub(events_pb2, "Events")

    def subscribe(self, filters: list[str]) -> Subscription:
        """Events of every namespace that match filters."""
        return Subscription(self._stub.Subscribe(events_pb2.SubscribeRequest(filters=filters)))


@dataclass
class Version:
    version: str
    revision: str


class VersionProxy:
    def __init__(self, conn: Connection):
        self._stub = conn.stub(version_pb2, "Version")

    @mapped
    def version(self) -> Version:
        response = self._stub.Version(empty_pb2.Empty())
        return Version(response.version, response.revision)


@dataclass
class Server:
    uuid: str
    pid: int
    pidns: int


class IntrospectionProxy:
    def __init__(self, conn: Connection):
        self._stub = conn.stub(introspection_pb2, "Introspection")

    @mapped
    def plugins(self, filters: list[str] = ()) -> list[Plugin]:
        response = self._stub.Plugins(introspection_pb2.PluginsRequest(filters=list(filters)))
        return [Plugin(p.type, p.id, list(p.requires),
                       [Platform(x.os, x.architecture, x.variant) for x in p.platforms], dict(p.exports),
                       list(p.capabilities), p.init_err.message) for p in response.plugins]

    @mapped
    def server(self) -> Server:
        response = self._stub.Server(empty_pb2.Empty())
        return Server(response.uuid, response.pid, response.pidns)
