"""`/_ping` and `/version`: dockerd's replies over the system service."""
from engine.services.system import BUILDER_VERSION, SystemService

from ..http import Reply, json_reply

_NO_CACHE = [("Cache-Control", "no-cache, no-store, must-revalidate"), ("Pragma", "no-cache")]


def add_routes(router, system: SystemService) -> None:
    ping_headers = [("Builder-Version", BUILDER_VERSION), *_NO_CACHE]
    # HEAD says Content-Length 0, as dockerd's does: the CLI pings with HEAD first.
    router.add("GET", "/_ping", lambda request: Reply(200, b"OK", "text/plain; charset=utf-8", ping_headers))
    router.add("HEAD", "/_ping", lambda request: Reply(200, b"", "text/plain; charset=utf-8", ping_headers))
    router.add("GET", "/version", lambda request: json_reply(system.version()))
