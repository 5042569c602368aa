"""Events service: Publish and Forward into the exchange, Subscribe to a filtered stream of it."""
from google.protobuf import any_pb2, empty_pb2

from ..api.containerd.services import events_pb2 as pb
from ..events.exchange import Envelope, Exchange
from ..types import AnyValue
from .common import namespace, timestamp


def any_from_proto(a: any_pb2.Any) -> AnyValue:
    return AnyValue(a.type_url, a.value)


def any_to_proto(a: AnyValue) -> any_pb2.Any:
    return any_pb2.Any(type_url=a.type_url, value=a.value)


class EventsServicer:
    SERVICE = pb.DESCRIPTOR.services_by_name["Events"]

    def __init__(self, exchange: Exchange):
        self._exchange = exchange

    def Publish(self, request, context):
        self._exchange.publish(namespace(context), request.topic, any_from_proto(request.event))
        return empty_pb2.Empty()

    def Forward(self, request, context):
        e = request.envelope
        self._exchange.forward(Envelope(e.timestamp.ToNanoseconds(), e.namespace, e.topic, any_from_proto(e.event)))
        return empty_pb2.Empty()

    def Subscribe(self, request, context):
        for env in self._exchange.stream(list(request.filters), context.is_active):
            yield pb.Envelope(timestamp=timestamp(env.timestamp), namespace=env.namespace, topic=env.topic,
                              event=any_to_proto(env.event))
