"""The engine's event bus, as dockerd's daemon/events: services publish what
happened to containers and images, `GET /events` subscribes.

A message has dockerd's shape (Type, Action, Actor{ID, Attributes}, scope,
time, timeNano, and for containers and images the legacy status/id/from).
The last EVENTS_LIMIT messages are kept, so that a subscriber with `since`
(or `until`) first gets those of them in its window; without `until`, or
with one still to come, it then follows new messages until that time.
Subscribing takes the ring and registers the subscriber under one lock, so
no message falls between the two.
"""
import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from engine.errors import InvalidParameter
from engine.filters import Filters
from engine.reference import parse_normalized

log = logging.getLogger(__name__)

EVENTS_LIMIT = 256  # dockerd's eventsLimit
SUBSCRIBER_BUFFER = 1024  # dockerd's bufferSize: a subscriber this far behind misses what follows
DISCONNECT_POLL = 1.0  # seconds between looks at whether a waiting subscriber's client has gone
CONTAINER, IMAGE, DAEMON = "container", "image", "daemon"
# filter names whose values match an actor's ID or name by prefix, as daemon/events/filter.go's fuzzyMatchName
_NAMED_TYPES = (DAEMON, CONTAINER, "plugin", "volume", "network", "node", "service", "secret", "config")
# `event` values matched by prefix ("health_status" matches "health_status: healthy"), as moby #25798
_FUZZY_ACTIONS = frozenset(("health_status", "exec_create", "exec_start"))


def parse_timestamp(text: str | None) -> int | None:
    """A `since`/`until` value in nanoseconds (None when absent), as moby's
    timetypes.ParseTimestamps reads the docker CLI's "seconds[.fraction]"."""
    if not text:
        return None
    seconds, dot, fraction = text.partition(".")
    for part in (seconds, fraction) if dot else (seconds,):
        if not part.lstrip("+-").isdigit():
            raise InvalidParameter(f'strconv.ParseInt: parsing "{part}": invalid syntax')
    nanos = int(int(fraction) * 10 ** (9 - len(fraction))) if dot else 0
    return int(seconds) * 1_000_000_000 + nanos


def message(event_type: str, action: str, actor_id: str, attributes: dict[str, str], now_ns: int) -> dict:
    """An events.Message as dockerd's Log makes it, its keys in Go's order."""
    legacy = {}
    if event_type in (CONTAINER, IMAGE):  # Go's omitempty: a prune's has no id
        legacy = {"status": action, **({"id": actor_id} if actor_id else {})}
        if event_type == CONTAINER and attributes.get("image"):
            legacy["from"] = attributes["image"]
    return {**legacy, "Type": event_type, "Action": action,
            "Actor": {"ID": actor_id, "Attributes": dict(sorted(attributes.items()))},
            "scope": "local", "time": now_ns // 1_000_000_000, "timeNano": now_ns}


def _fuzzy(filters: Filters, name: str, source: str) -> bool:
    """moby's Args.FuzzyMatch: no values, an exact value, or a value that is a prefix."""
    values = filters.fields.get(name)
    return not values or any(source.startswith(value) for value in values)


def _familiar_name(image: str) -> str:
    """An image reference without its tag or digest (daemon/events' stripTag)."""
    try:
        return parse_normalized(image).familiar_name
    except InvalidParameter:
        return image


def include(filters: Filters, event: dict) -> bool:
    """daemon/events' Filter.Include: every filter given holds for the event."""
    actor_id, attributes = event["Actor"]["ID"], event["Actor"]["Attributes"]
    action = event["Action"]
    if filters.fields.get("event", set()) & _FUZZY_ACTIONS:
        if not _fuzzy(filters, "event", action):
            return False
    elif not filters.exact_match("event", action):
        return False
    if not (filters.exact_match("type", event["Type"]) and filters.exact_match("scope", event["scope"])):
        return False
    name = attributes.get("name", "")
    for kind in _NAMED_TYPES:
        if not (_fuzzy(filters, kind, actor_id) or _fuzzy(filters, kind, name)):
            return False
    if filters.fields.get("image"):  # an image event's name, a container event's image, with or without tags
        image = attributes.get("name" if event["Type"] == IMAGE else "image", "")
        if not any(filters.exact_match("image", candidate)
                   for candidate in (actor_id, image, _familiar_name(actor_id), _familiar_name(image))):
            return False
    return filters.match_kv_list("label", attributes)


class Subscription:
    """One subscriber's queue of new messages, bounded as dockerd's: a
    subscriber that does not keep up misses messages (and the log says so)."""

    def __init__(self, bus: "EventsService", filters: Filters):
        self._bus, self.filters = bus, filters
        self._queue: deque[dict] = deque()
        self._ready = threading.Condition()
        self._dropped = 0

    def deliver(self, event: dict) -> None:
        if not include(self.filters, event):
            return
        with self._ready:
            if len(self._queue) >= SUBSCRIBER_BUFFER:
                self._dropped += 1
                if self._dropped == 1:
                    log.warning("events: a subscriber is %d events behind; it misses new ones", SUBSCRIBER_BUFFER)
                return
            self._queue.append(event)
            self._ready.notify()

    def next(self, timeout: float) -> dict | None:
        """The next message, or None after `timeout` seconds without one."""
        with self._ready:
            if not self._queue and not self._ready.wait_for(lambda: self._queue, timeout):
                return None
            return self._queue.popleft()

    def close(self) -> None:
        self._bus.unsubscribe(self)


class EventsService:
    """The bus. `container` and `image` are what services call (their
    `publish`); `stream` is what `GET /events` returns."""

    def __init__(self, clock_ns: Callable[[], int] = time.time_ns):
        self._clock_ns = clock_ns
        self._recent: deque[dict] = deque(maxlen=EVENTS_LIMIT)
        self._subscribers: list[Subscription] = []
        self._lock = threading.Lock()

    @property
    def listeners(self) -> int:
        """How many subscribers there are (`docker info`'s NEventsListener)."""
        with self._lock:
            return len(self._subscribers)

    def log(self, event_type: str, action: str, actor_id: str, attributes: dict[str, str]) -> dict:
        """Publishes one message now: kept in the ring and given to every subscriber."""
        with self._lock:
            event = message(event_type, action, actor_id, attributes, self._clock_ns())
            self._recent.append(event)
            for subscriber in self._subscribers:
                subscriber.deliver(event)
        return event

    def container(self, record, action: str, attributes: dict[str, str] | None = None) -> None:
        """dockerd's LogContainerEventWithAttributes: the given attributes, the
        container's labels over them, then its image (as the user named it) and name."""
        attributes = {**(attributes or {}), **record.labels}
        if record.config.get("Image"):
            attributes["image"] = record.config["Image"]
        attributes["name"] = record.name.lstrip("/")
        self.log(CONTAINER, action, record.id, attributes)

    def image(self, action: str, image_id: str, name: str, labels: dict[str, str] | None = None) -> None:
        """dockerd's LogImageEvent: the image's labels (while it exists) and the reference acted on."""
        attributes = dict(labels or {})
        if name:
            attributes["name"] = name
        self.log(IMAGE, action, image_id, attributes)

    def pruned(self, event_type: str, reclaimed: int) -> None:
        """A prune's own event, after those of what it removed (dockerd's, since API 1.31)."""
        self.log(event_type, "prune", "", {"reclaimed": str(reclaimed)})

    def subscribe(self, since_ns: int | None, until_ns: int | None, filters: Filters
                  ) -> tuple[list[dict], Subscription]:
        """The kept messages within [since, until] that pass the filters (none
        when neither is given, as dockerd), and a subscription to new ones."""
        subscription = Subscription(self, filters)
        with self._lock:
            past = []
            if since_ns is not None or until_ns is not None:
                past = [e for e in self._recent if e["timeNano"] >= (since_ns or 0)
                        and (until_ns is None or e["timeNano"] <= until_ns) and include(filters, e)]
            self._subscribers.append(subscription)
        return past, subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            if subscription in self._subscribers:
                self._subscribers.remove(subscription)

    def stream(self, since: str | None, until: str | None, filters_param: str | None,
               client_gone: threading.Event) -> "EventStream":
        """`GET /events`: the arguments are checked (a bad one raises, for an
        HTTP error) and the subscription made before the reply's headers go
        out, so a client that acts once it has them misses nothing of it."""
        since_ns, until_ns = parse_timestamp(since), parse_timestamp(until)
        if until_ns is not None and since_ns is not None and until_ns < since_ns:
            raise InvalidParameter(f"`since` time ({since}) cannot be after `until` time ({until})")
        past, subscription = self.subscribe(since_ns, until_ns, Filters.parse(filters_param))
        return EventStream(past, subscription, until_ns, client_gone, self._clock_ns)


class EventStream:
    """A subscriber's messages: the kept ones, then new ones until `until`
    or until the client has gone. `close()` ends the subscription, also when
    the stream was never read (a generator's `finally` would not run then)."""

    def __init__(self, past: list[dict], subscription: Subscription, until_ns: int | None,
                 client_gone: threading.Event, clock_ns: Callable[[], int]):
        self._past, self._subscription = deque(past), subscription
        self._until_ns, self._client_gone, self._clock_ns = until_ns, client_gone, clock_ns

    def __iter__(self) -> "EventStream":
        return self

    def __next__(self) -> dict:
        if self._past:
            return self._past.popleft()
        until = self._until_ns
        while not self._client_gone.is_set():
            left = DISCONNECT_POLL if until is None else max(0.0, (until - self._clock_ns()) / 1e9)
            event = self._subscription.next(min(left, DISCONNECT_POLL))
            if event is not None and (until is None or event["timeNano"] <= until):
                return event
            if until is not None and (event is not None or left == 0):
                break  # `until` has come: what happened by then is sent, nothing after
        self.close()
        raise StopIteration

    def close(self) -> None:
        self._subscription.close()
