"""Namespaces service."""
from google.protobuf import empty_pb2

from ..api.containerd.events import namespace_pb2 as events
from ..api.containerd.services import namespaces_pb2 as pb
from ..events.exchange import Exchange
from ..metadata.store import Namespace, NamespaceStore
from .common import namespace


def _to_proto(n: Namespace) -> pb.Namespace:
    return pb.Namespace(name=n.name, labels=n.labels)


class NamespacesServicer:
    SERVICE = pb.DESCRIPTOR.services_by_name["Namespaces"]

    def __init__(self, store: NamespaceStore, exchange: Exchange):
        self._store, self._exchange = store, exchange

    def Get(self, request, context):
        return pb.GetNamespaceResponse(namespace=_to_proto(self._store.get(request.name)))

    def List(self, request, context):
        return pb.ListNamespacesResponse(namespaces=[_to_proto(n) for n in self._store.list()])

    def Create(self, request, context):
        n = request.namespace
        created = self._store.create(n.name, dict(n.labels))
        self._exchange.publish(namespace(context), "/namespaces/create",
                               events.NamespaceCreate(name=created.name, labels=created.labels))
        return pb.CreateNamespaceResponse(namespace=_to_proto(created))

    def Update(self, request, context):
        n = Namespace(request.namespace.name, dict(request.namespace.labels))
        updated = self._store.update(n, list(request.update_mask.paths))
        self._exchange.publish(namespace(context), "/namespaces/update",
                               events.NamespaceUpdate(name=updated.name, labels=updated.labels))
        return pb.UpdateNamespaceResponse(namespace=_to_proto(updated))

    def Delete(self, request, context):
        self._store.delete(request.name)
        self._exchange.publish(namespace(context), "/namespaces/delete", events.NamespaceDelete(name=request.name))
        return empty_pb2.Empty()
