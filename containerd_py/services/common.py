"""Request context (namespace) and conversions between protobuf and our types."""
from google.protobuf.timestamp_pb2 import Timestamp

from .. import identifiers
from ..rpc import ServicerContext
from ..api.containerd.types import descriptor_pb2, mount_pb2
from ..types import Descriptor, Mount

NAMESPACE_KEY = "containerd-namespace"
LEASE_KEY = "containerd-lease"
DEFAULT_NAMESPACE = "default"
BATCH = 100  # items per message of streamed lists, as containerd batches them


def namespace(context: ServicerContext) -> str:
    for key, value in context.invocation_metadata():
        if key == NAMESPACE_KEY:
            identifiers.validate(value)
            return value
    return DEFAULT_NAMESPACE


def timestamp(ns: int) -> Timestamp:
    return Timestamp(seconds=ns // 1_000_000_000, nanos=ns % 1_000_000_000)


def descriptor_to_proto(d: Descriptor) -> descriptor_pb2.Descriptor:
    return descriptor_pb2.Descriptor(media_type=d.media_type, digest=d.digest, size=d.size, annotations=d.annotations)


def descriptor_from_proto(d: descriptor_pb2.Descriptor) -> Descriptor:
    return Descriptor(d.media_type, d.digest, d.size, dict(d.annotations))


def mount_to_proto(m: Mount) -> mount_pb2.Mount:
    return mount_pb2.Mount(type=m.type, source=m.source, target=m.target, options=m.options)


def mount_from_proto(m: mount_pb2.Mount) -> Mount:
    return Mount(m.type, m.source, list(m.options), m.target)


def batched(items: list, size: int = BATCH):
    for i in range(0, len(items), size):
        yield items[i:i + size]
