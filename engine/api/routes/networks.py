"""Networks' routes: list, inspect, create, remove and prune over the
network service; connect and disconnect over the containers' connections."""
from engine.errors import InvalidParameter
from engine.services.network_connect import NetworkConnections
from engine.services.networks import NetworkService

from ..http import Reply, Request, json_reply


def add_routes(router, networks: NetworkService, connections: NetworkConnections) -> None:
    router.add("GET", "/networks", lambda request: json_reply(networks.list(request.arg("filters"))))
    router.add("GET", "/networks/{name}", lambda request: json_reply(networks.inspect(request.params["name"])))
    router.add("POST", "/networks/create", lambda request: json_reply(networks.create(request.json()), 201))
    router.add("POST", "/networks/prune", lambda request: json_reply(networks.prune(request.arg("filters"))))
    router.add("DELETE", "/networks/{name}", lambda request: _removed(networks, request))

    def connect(request: Request):
        body = _container_body(request)
        connections.connect(request.params["name"], body["Container"], body.get("EndpointConfig"))
        return Reply(200, b"", "")

    def disconnect(request: Request):
        connections.disconnect(request.params["name"], _container_body(request)["Container"])
        return Reply(200, b"", "")

    router.add("POST", "/networks/{name}/connect", connect)
    router.add("POST", "/networks/{name}/disconnect", disconnect)


def _container_body(request: Request) -> dict:
    body = request.json()
    if not isinstance(body, dict) or not isinstance(body.get("Container"), str) or not body["Container"]:
        raise InvalidParameter("container name or ID is required")
    if body.get("EndpointConfig") is not None and not isinstance(body["EndpointConfig"], dict):
        raise InvalidParameter("EndpointConfig must be an object")
    return body


def _removed(networks: NetworkService, request: Request) -> Reply:
    networks.remove(request.params["name"])
    return Reply(204, b"", "")
