"""Containers service: metadata of containers (tasks run them)."""
from google.protobuf import empty_pb2

from .. import errors
from ..api.containerd.services import containers_pb2 as pb
from ..containers import Containers
from ..metadata.store import Container
from .common import namespace, timestamp
from .events import any_from_proto, any_to_proto


def _to_proto(c: Container) -> pb.Container:
    out = pb.Container(id=c.id, labels=c.labels, image=c.image, snapshotter=c.snapshotter,
                       snapshot_key=c.snapshot_key, created_at=timestamp(c.created_at),
                       updated_at=timestamp(c.updated_at), runtime=pb.Container.Runtime(name=c.runtime))
    if c.runtime_options is not None:
        out.runtime.options.CopyFrom(any_to_proto(c.runtime_options))
    if c.spec is not None:
        out.spec.CopyFrom(any_to_proto(c.spec))
    for key, value in c.extensions.items():
        out.extensions[key].CopyFrom(any_to_proto(value))
    return out


def _from_proto(c: pb.Container) -> Container:
    return Container(
        c.id, c.runtime.name, any_from_proto(c.runtime.options) if c.runtime.HasField("options") else None,
        any_from_proto(c.spec) if c.HasField("spec") else None, c.image, c.snapshotter, c.snapshot_key,
        dict(c.labels), {k: any_from_proto(v) for k, v in c.extensions.items()})


class ContainersServicer:
    SERVICE = pb.DESCRIPTOR.services_by_name["Containers"]

    def __init__(self, containers: Containers):
        self._containers = containers

    def Get(self, request, context):
        return pb.GetContainerResponse(container=_to_proto(self._containers.get(namespace(context), request.id)))

    def List(self, request, context):
        found = self._containers.list(namespace(context), list(request.filters))
        return pb.ListContainersResponse(containers=[_to_proto(c) for c in found])

    def ListStream(self, request, context):
        for c in self._containers.list(namespace(context), list(request.filters)):
            yield pb.ListContainerMessage(container=_to_proto(c))

    def Create(self, request, context):
        created = self._containers.create(namespace(context), _from_proto(request.container))
        return pb.CreateContainerResponse(container=_to_proto(created))

    def Update(self, request, context):
        if not request.container.id:
            raise errors.InvalidArgument("Container.ID required")
        updated = self._containers.update(namespace(context), _from_proto(request.container),
                                          list(request.update_mask.paths))
        return pb.UpdateContainerResponse(container=_to_proto(updated))

    def Delete(self, request, context):
        self._containers.delete(namespace(context), request.id)
        return empty_pb2.Empty()
