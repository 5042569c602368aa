"""Containers service: metadata of containers (tasks run them)."""
from google.protobuf import empty_pb2

from .. import errors
from ..api.containerd.services import containers_pb2 as pb
from ..containers import Containers
from ..convert import container_from_proto, container_to_proto
from .common import namespace


class ContainersServicer:
    SERVICE = pb.DESCRIPTOR.services_by_name["Containers"]

    def __init__(self, containers: Containers):
        self._containers = containers

    def Get(self, request, context):
        found = self._containers.get(namespace(context), request.id)
        return pb.GetContainerResponse(container=container_to_proto(found))

    def List(self, request, context):
        found = self._containers.list(namespace(context), list(request.filters))
        return pb.ListContainersResponse(containers=[container_to_proto(c) for c in found])

    def ListStream(self, request, context):
        for c in self._containers.list(namespace(context), list(request.filters)):
            yield pb.ListContainerMessage(container=container_to_proto(c))

    def Create(self, request, context):
        created = self._containers.create(namespace(context), container_from_proto(request.container))
        return pb.CreateContainerResponse(container=container_to_proto(created))

    def Update(self, request, context):
        if not request.container.id:
            raise errors.InvalidArgument("Container.ID required")
        updated = self._containers.update(namespace(context), container_from_proto(request.container),
                                          list(request.update_mask.paths))
        return pb.UpdateContainerResponse(container=container_to_proto(updated))

    def Delete(self, request, context):
        self._containers.delete(namespace(context), request.id)
        return empty_pb2.Empty()
