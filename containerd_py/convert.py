"""Protobuf messages <-> domain types, and the gRPC metadata keys: what the
daemon's servicers and the client library share of containerd's API, so that
neither imports the other."""
from google.protobuf import any_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from .api.containerd.services import (containers_pb2, content_pb2, events_pb2, images_pb2, leases_pb2,
                                      namespaces_pb2, snapshots_pb2)
from .api.containerd.types import descriptor_pb2, mount_pb2, task_pb2
from .containers import Container
from .content.store import Info as ContentInfo, Status
from .metadata.store import Image, Lease, Namespace
from .snapshots.snapshotter import Info as SnapshotInfo, Kind
from .types import AnyValue, Descriptor, Envelope, Mount, ProcessState

NAMESPACE_KEY = "containerd-namespace"
LEASE_KEY = "containerd-lease"


def timestamp(ns: int) -> Timestamp:
    return Timestamp(seconds=ns // 1_000_000_000, nanos=ns % 1_000_000_000)


def nanoseconds(t: Timestamp) -> int:
    return t.seconds * 1_000_000_000 + t.nanos


def descriptor_to_proto(d: Descriptor) -> descriptor_pb2.Descriptor:
    return descriptor_pb2.Descriptor(media_type=d.media_type, digest=d.digest, size=d.size, annotations=d.annotations)


def descriptor_from_proto(d: descriptor_pb2.Descriptor) -> Descriptor:
    return Descriptor(d.media_type, d.digest, d.size, dict(d.annotations))


def mount_to_proto(m: Mount) -> mount_pb2.Mount:
    return mount_pb2.Mount(type=m.type, source=m.source, target=m.target, options=m.options)


def mount_from_proto(m: mount_pb2.Mount) -> Mount:
    return Mount(m.type, m.source, list(m.options), m.target)


def any_to_proto(a: AnyValue) -> any_pb2.Any:
    return any_pb2.Any(type_url=a.type_url, value=a.value)


def any_from_proto(a: any_pb2.Any) -> AnyValue:
    return AnyValue(a.type_url, a.value)


def content_info_to_proto(i: ContentInfo) -> content_pb2.Info:
    return content_pb2.Info(digest=i.digest, size=i.size, created_at=timestamp(i.created_at),
                            updated_at=timestamp(i.updated_at), labels=i.labels)


def content_info_from_proto(i: content_pb2.Info) -> ContentInfo:
    return ContentInfo(i.digest, i.size, nanoseconds(i.created_at), nanoseconds(i.updated_at), dict(i.labels))


def status_to_proto(s: Status) -> content_pb2.Status:
    return content_pb2.Status(ref=s.ref, offset=s.offset, total=s.total, expected=s.expected,
                              started_at=timestamp(s.started_at), updated_at=timestamp(s.updated_at))


def status_from_proto(s: content_pb2.Status) -> Status:
    return Status(s.ref, s.offset, s.total, s.expected, nanoseconds(s.started_at), nanoseconds(s.updated_at))


def image_to_proto(i: Image) -> images_pb2.Image:
    return images_pb2.Image(name=i.name, labels=i.labels, target=descriptor_to_proto(i.target),
                            created_at=timestamp(i.created_at), updated_at=timestamp(i.updated_at))


def image_from_proto(i: images_pb2.Image) -> Image:
    return Image(i.name, descriptor_from_proto(i.target), dict(i.labels), nanoseconds(i.created_at),
                 nanoseconds(i.updated_at))


def snapshot_info_to_proto(i: SnapshotInfo) -> snapshots_pb2.Info:
    return snapshots_pb2.Info(name=i.name, parent=i.parent, kind=int(i.kind), labels=i.labels,
                              created_at=timestamp(i.created_at), updated_at=timestamp(i.updated_at))


def snapshot_info_from_proto(i: snapshots_pb2.Info) -> SnapshotInfo:
    return SnapshotInfo(i.name, i.parent, Kind(i.kind), nanoseconds(i.created_at), nanoseconds(i.updated_at),
                        dict(i.labels))


def container_to_proto(c: Container) -> containers_pb2.Container:
    out = containers_pb2.Container(
        id=c.id, labels=c.labels, image=c.image, snapshotter=c.snapshotter, snapshot_key=c.snapshot_key,
        created_at=timestamp(c.created_at), updated_at=timestamp(c.updated_at),
        runtime=containers_pb2.Container.Runtime(name=c.runtime))
    if c.runtime_options is not None:
        out.runtime.options.CopyFrom(any_to_proto(c.runtime_options))
    if c.spec is not None:
        out.spec.CopyFrom(any_to_proto(c.spec))
    for key, value in c.extensions.items():
        out.extensions[key].CopyFrom(any_to_proto(value))
    return out


def container_from_proto(c: containers_pb2.Container) -> Container:
    return Container(
        c.id, c.runtime.name, any_from_proto(c.runtime.options) if c.runtime.HasField("options") else None,
        any_from_proto(c.spec) if c.HasField("spec") else None, c.image, c.snapshotter, c.snapshot_key,
        dict(c.labels), {k: any_from_proto(v) for k, v in c.extensions.items()}, nanoseconds(c.created_at),
        nanoseconds(c.updated_at))


def namespace_to_proto(n: Namespace) -> namespaces_pb2.Namespace:
    return namespaces_pb2.Namespace(name=n.name, labels=n.labels)


def namespace_from_proto(n: namespaces_pb2.Namespace) -> Namespace:
    return Namespace(n.name, dict(n.labels))


def lease_to_proto(lease: Lease) -> leases_pb2.Lease:
    return leases_pb2.Lease(id=lease.id, labels=lease.labels, created_at=timestamp(lease.created_at))


def lease_from_proto(lease: leases_pb2.Lease) -> Lease:
    return Lease(lease.id, dict(lease.labels), nanoseconds(lease.created_at))


def task_status_to_proto(status: str) -> int:
    """A process status as the domain names it ("running") to the enum's value: the names are the enum's."""
    return task_pb2.Status.Value(status.upper())


def process_from_proto(p: task_pb2.Process) -> ProcessState:
    return ProcessState(p.container_id, p.id, p.pid, task_pb2.Status.Name(p.status).lower(), p.exit_status,
                        nanoseconds(p.exited_at), p.stdin, p.stdout, p.stderr, p.terminal)


def envelope_to_proto(e: Envelope) -> events_pb2.Envelope:
    return events_pb2.Envelope(timestamp=timestamp(e.timestamp), namespace=e.namespace, topic=e.topic,
                               event=any_to_proto(e.event))


def envelope_from_proto(e: events_pb2.Envelope) -> Envelope:
    return Envelope(nanoseconds(e.timestamp), e.namespace, e.topic, any_from_proto(e.event))
