"""Publish/subscribe of event envelopes, filtered with containerd's filter syntax.

Subscribers get their own bounded queue: a stalled subscriber loses its
oldest events rather than slowing the publisher down (or the daemon's memory).
"""
import collections
import threading
import time
from collections.abc import Iterator

from google.protobuf import json_format, symbol_database
from google.protobuf.message import Message

from .. import errors, identifiers
from ..errors import q
from ..filters import Filter
from ..types import AnyValue, Envelope

QUEUE_LIMIT = 1024


def validate_topic(topic: str) -> None:
    """`/a/b`: a leading slash, then identifier components (containerd's rule)."""
    if not topic:
        raise errors.InvalidArgument("must not be empty")
    if not topic.startswith("/"):
        raise errors.InvalidArgument(f"must start with '/': {q(topic)}")
    for component in topic[1:].split("/"):
        try:
            identifiers.validate(component)
        except errors.InvalidArgument as e:
            raise errors.InvalidArgument(f"failed validation on component {q(component)}: {e.args[0]}") from None


def pack(event: Message) -> AnyValue:
    """containerd's type URLs for events are bare message names (`containerd.events.TaskExit`)."""
    return AnyValue(event.DESCRIPTOR.full_name, event.SerializeToString())


def _event_fields(event: AnyValue) -> dict[str, str]:
    """Flattened fields of an event whose type this process knows; none otherwise."""
    try:
        cls = symbol_database.Default().GetSymbol(event.type_url.rsplit("/", 1)[-1])
    except KeyError:
        return {}
    out = {}

    def walk(prefix, value):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}", v)
        elif not isinstance(value, list):
            out[prefix] = str(value)
    walk("event", json_format.MessageToDict(cls.FromString(event.value), preserving_proto_field_name=True))
    return out


def _adaptor(env: Envelope):
    fields = None

    def lookup(path: tuple[str, ...]):
        nonlocal fields
        if path == ("topic",):
            return env.topic
        if path == ("namespace",):
            return env.namespace
        if path[0] == "event":
            fields = _event_fields(env.event) if fields is None else fields
            return fields.get(".".join(path))
        return None
    return lookup


class Subscription:
    def __init__(self, exchange: "Exchange", selector: Filter):
        self._exchange, self._selector = exchange, selector
        self._queue: collections.deque[Envelope] = collections.deque(maxlen=QUEUE_LIMIT)
        self._cond = threading.Condition()

    def offer(self, env: Envelope) -> None:
        if self._selector.match(_adaptor(env)):
            with self._cond:
                self._queue.append(env)
                self._cond.notify()

    def next(self, timeout: float) -> Envelope | None:
        """The next envelope, or None after `timeout` seconds without one."""
        with self._cond:
            if not self._queue:
                self._cond.wait(timeout)
            return self._queue.popleft() if self._queue else None

    def close(self) -> None:
        self._exchange._remove(self)


class Exchange:
    def __init__(self):
        self._lock = threading.Lock()
        self._subscribers: list[Subscription] = []

    def publish(self, ns: str, topic: str, event: Message | AnyValue) -> None:
        identifiers.validate(ns)
        validate_topic(topic)
        self.forward(Envelope(time.time_ns(), ns, topic, pack(event) if isinstance(event, Message) else event))

    def forward(self, env: Envelope) -> None:
        """Delivers an envelope as it is (timestamp and namespace included), as Forward does."""
        identifiers.validate(env.namespace)
        validate_topic(env.topic)
        with self._lock:
            subscribers = list(self._subscribers)
        for sub in subscribers:
            sub.offer(env)

    def subscribe(self, filters: list[str]) -> Subscription:
        sub = Subscription(self, Filter(filters))
        with self._lock:
            self._subscribers.append(sub)
        return sub

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subscribers:
                self._subscribers.remove(sub)

    def stream(self, filters: list[str], active) -> Iterator[Envelope]:
        """Envelopes as they come, while `active()` says the subscriber is still there."""
        sub = self.subscribe(filters)
        try:
            while active():
                env = sub.next(timeout=0.5)
                if env is not None:
                    yield env
        finally:
            sub.close()
