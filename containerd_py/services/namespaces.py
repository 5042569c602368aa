"""Namespaces service."""
from google.protobuf import empty_pb2

from ..api.containerd.services import namespaces_pb2 as pb, namespaces_pb2_grpc as pb_grpc
from ..metadata.store import Namespace, NamespaceStore


def _to_proto(n: Namespace) -> pb.Namespace:
    return pb.Namespace(name=n.name, labels=n.labels)


class NamespacesServicer(pb_grpc.NamespacesServicer):
    def __init__(self, store: NamespaceStore):
        self._store = store

    def Get(self, request, context):
        return pb.GetNamespaceResponse(namespace=_to_proto(self._store.get(request.name)))

    def List(self, request, context):
        return pb.ListNamespacesResponse(namespaces=[_to_proto(n) for n in self._store.list()])

    def Create(self, request, context):
        n = request.namespace
        return pb.CreateNamespaceResponse(namespace=_to_proto(self._store.create(n.name, dict(n.labels))))

    def Update(self, request, context):
        n = Namespace(request.namespace.name, dict(request.namespace.labels))
        updated = self._store.update(n, list(request.update_mask.paths))
        return pb.UpdateNamespaceResponse(namespace=_to_proto(updated))

    def Delete(self, request, context):
        self._store.delete(request.name)
        return empty_pb2.Empty()
