"""Events service: Publish and Forward into the exchange, Subscribe to a filtered stream of it."""
from google.protobuf import empty_pb2

from ..api.containerd.services import events_pb2 as pb
from ..convert import any_from_proto, envelope_from_proto, envelope_to_proto
from ..events.exchange import Exchange
from .common import namespace


class EventsServicer:
    SERVICE = pb.DESCRIPTOR.services_by_name["Events"]

    def __init__(self, exchange: Exchange):
        self._exchange = exchange

    def Publish(self, request, context):
        self._exchange.publish(namespace(context), request.topic, any_from_proto(request.event))
        return empty_pb2.Empty()

    def Forward(self, request, context):
        self._exchange.forward(envelope_from_proto(request.envelope))
        return empty_pb2.Empty()

    def Subscribe(self, request, context):
        for env in self._exchange.stream(list(request.filters), context.is_active):
            yield envelope_to_proto(env)
