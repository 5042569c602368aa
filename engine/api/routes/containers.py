"""Containers' routes: create, start, stop, kill, restart, pause, wait,
remove, rename, prune, inspect and list, each decoding the request, calling
the container service (or its read-only views) and encoding dockerd's reply."""
from engine.errors import BadBody
from engine.services.container_prune import prune_containers
from engine.services.container_update import update_container
from engine.services.container_views import ContainerViews
from engine.services.containers import ContainerService

from ..create_body import decode_create_body
from ..http import Reply, Request, Streamed, json_reply
from ..streams import json_message

NO_CONTENT = Reply(204, b"", "")


def _create_body(request: Request) -> tuple[dict, dict | None, dict]:
    """(Config, HostConfig, NetworkingConfig) of a create; HostConfig None when not sent."""
    request.json_content_type()
    raw = request.body.read()
    if not raw.strip():
        raise BadBody("EOF")  # what dockerd 20.10's decoder says of an empty body
    body = decode_create_body(raw)
    host_config = body.pop("HostConfig", None)
    networking_config = body.pop("NetworkingConfig", None) or {}
    return body, host_config, networking_config


def add_routes(router, containers: ContainerService, views: ContainerViews,
               pruned=lambda event_type, reclaimed: None) -> None:
    """``pruned(type, reclaimed)`` logs a prune's event (the events service's)."""
    def create(request: Request):
        config, host_config, networking_config = _create_body(request)
        record = containers.create(config, host_config, request.arg("name") or None, networking_config)
        return json_reply({"Id": record.id, "Warnings": []}, 201)

    def start(request: Request):
        containers.start(request.params["name"])
        return NO_CONTENT

    def stop(request: Request):
        containers.stop(request.params["name"], request.int_arg("t", None))
        return NO_CONTENT

    def restart(request: Request):
        containers.restart(request.params["name"], request.int_arg("t", None))
        return NO_CONTENT

    def kill(request: Request):
        containers.kill(request.params["name"], request.arg("signal") or "SIGKILL")
        return NO_CONTENT

    def pause(request: Request):
        containers.pause(request.params["name"])
        return NO_CONTENT

    def unpause(request: Request):
        containers.unpause(request.params["name"])
        return NO_CONTENT

    def wait(request: Request):
        """Headers at once (the CLI waits on them before it starts the
        container), the body when the condition holds."""
        waiter = containers.waiter(request.params["name"], request.arg("condition") or "not-running")
        return Streamed(_waited(waiter, request))

    def remove(request: Request):
        containers.remove(request.params["name"], force=request.bool_arg("force"), volumes=request.bool_arg("v"))
        return NO_CONTENT

    def rename(request: Request):
        containers.rename(request.params["name"], request.arg("name") or "")
        return NO_CONTENT

    def update(request: Request):
        return json_reply(update_container(containers, request.params["name"], request.json()))

    def prune(request: Request):
        return json_reply(prune_containers(containers, request.arg("filters"), pruned))

    def inspect(request: Request):
        return json_reply(views.inspect(request.params["name"], size=request.bool_arg("size")))

    def list_(request: Request):
        chosen = dict(all=request.bool_arg("all"), limit=request.int_arg("limit", None) or -1,
                      filters=request.arg("filters"), since=request.arg("since") or "", before=request.arg("before") or "")
        if request.bool_arg("size"):
            return json_reply(views.list(**chosen, size=True))
        return Reply(200, views.list_encoded(**chosen) + b"\n")

    router.add("POST", "/containers/create", create)
    router.add("POST", "/containers/prune", prune)
    router.add("GET", "/containers/json", list_)
    for verb, handler in (("start", start), ("stop", stop), ("restart", restart), ("kill", kill),
                          ("pause", pause), ("unpause", unpause), ("wait", wait), ("rename", rename), ("update", update)):
        router.add("POST", f"/containers/{{name}}/{verb}", handler)
    router.add("GET", "/containers/{name}/json", inspect)
    router.add("DELETE", "/containers/{name}", remove)


def _waited(waiter, request: Request):
    body = waiter(cancelled=request.disconnected)
    if body is not None:
        yield json_message(body)
