"""Networks' routes: list, inspect, create, remove and prune over the
network service (connect and disconnect belong with the containers')."""
from engine.services.networks import NetworkService

from ..http import Reply, Request, json_reply


def add_routes(router, networks: NetworkService) -> None:
    router.add("GET", "/networks", lambda request: json_reply(networks.list(request.arg("filters"))))
    router.add("GET", "/networks/{name}", lambda request: json_reply(networks.inspect(request.params["name"])))
    router.add("POST", "/networks/create", lambda request: json_reply(networks.create(request.json()), 201))
    router.add("POST", "/networks/prune", lambda request: json_reply(networks.prune(request.arg("filters"))))
    router.add("DELETE", "/networks/{name}", lambda request: _removed(networks, request))


def _removed(networks: NetworkService, request: Request) -> Reply:
    networks.remove(request.params["name"])
    return Reply(204, b"", "")
