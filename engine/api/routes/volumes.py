"""Volumes' routes: create, list, inspect, remove and prune over the volume service."""
from engine.services.volumes import VolumeService

from ..http import Reply, Request, json_reply


def add_routes(router, volumes: VolumeService) -> None:
    router.add("GET", "/volumes", lambda request: json_reply(volumes.list(request.arg("filters"))))
    router.add("GET", "/volumes/{name}", lambda request: json_reply(volumes.inspect(request.params["name"])))
    router.add("POST", "/volumes/create", lambda request: json_reply(volumes.create(request.json()), 201))
    router.add("POST", "/volumes/prune", lambda request: json_reply(volumes.prune(request.arg("filters"))))

    def remove(request: Request) -> Reply:
        volumes.remove(request.params["name"], request.bool_arg("force"))
        return Reply(204, b"", "")

    router.add("DELETE", "/volumes/{name}", remove)
