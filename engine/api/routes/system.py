"""`/_ping`, `/version`, `/info`, `/system/df` and `/events`: dockerd's
replies over the system, info and events services."""
from engine.services.events import EventsService, EventStream
from engine.services.info import InfoService
from engine.services.system import BUILDER_VERSION, SystemService

from ..http import Reply, Streamed, json_reply
from ..streams import json_message

_NO_CACHE = [("Cache-Control", "no-cache, no-store, must-revalidate"), ("Pragma", "no-cache")]


def add_routes(router, system: SystemService, info: InfoService | None = None,
               events: EventsService | None = None) -> None:
    """`info` and `events` may be left out where only ping and version are served (tests of the server)."""
    ping_headers = [("Builder-Version", BUILDER_VERSION), *_NO_CACHE]
    # HEAD says Content-Length 0, as dockerd's does: the CLI pings with HEAD first.
    router.add("GET", "/_ping", lambda request: Reply(200, b"OK", "text/plain; charset=utf-8", ping_headers))
    router.add("HEAD", "/_ping", lambda request: Reply(200, b"", "text/plain; charset=utf-8", ping_headers))
    router.add("GET", "/version", lambda request: json_reply(system.version()))
    if info is not None:
        router.add("GET", "/info", lambda request: json_reply(info.info()))
        router.add("GET", "/system/df", lambda request: json_reply(info.disk_usage()))
    if events is not None:
        router.add("GET", "/events", lambda request: Streamed(_JsonLines(events.stream(
            request.arg("since"), request.arg("until"), request.arg("filters"), request.disconnected))))


class _JsonLines:
    """The events as a JSON stream; closing it ends their subscription."""

    def __init__(self, messages: EventStream):
        self._messages = messages

    def __iter__(self) -> "_JsonLines":
        return self

    def __next__(self) -> bytes:
        return json_message(next(self._messages))

    def close(self) -> None:
        self._messages.close()
