"""Namespaces service."""
from google.protobuf import empty_pb2

from ..api.containerd.events import namespace_pb2 as events
from ..api.containerd.services import namespaces_pb2 as pb
from ..convert import namespace_from_proto, namespace_to_proto
from ..events.exchange import Exchange
from ..metadata.store import NamespaceStore
from .common import namespace


class NamespacesServicer:
    SERVICE = pb.DESCRIPTOR.services_by_name["Namespaces"]

    def __init__(self, store: NamespaceStore, exchange: Exchange):
        self._store, self._exchange = store, exchange

    def Get(self, request, context):
        return pb.GetNamespaceResponse(namespace=namespace_to_proto(self._store.get(request.name)))

    def List(self, request, context):
        return pb.ListNamespacesResponse(namespaces=[namespace_to_proto(n) for n in self._store.list()])

    def Create(self, request, context):
        n = request.namespace
        created = self._store.create(n.name, dict(n.labels))
        self._exchange.publish(namespace(context), "/namespaces/create",
                               events.NamespaceCreate(name=created.name, labels=created.labels))
        return pb.CreateNamespaceResponse(namespace=namespace_to_proto(created))

    def Update(self, request, context):
        updated = self._store.update(namespace_from_proto(request.namespace), list(request.update_mask.paths))
        self._exchange.publish(namespace(context), "/namespaces/update",
                               events.NamespaceUpdate(name=updated.name, labels=updated.labels))
        return pb.UpdateNamespaceResponse(namespace=namespace_to_proto(updated))

    def Delete(self, request, context):
        self._store.delete(request.name)
        self._exchange.publish(namespace(context), "/namespaces/delete", events.NamespaceDelete(name=request.name))
        return empty_pb2.Empty()
