"""Images' routes: pull and import (POST /images/create), list, inspect,
history, tag, remove, push, save, load, prune, and registry login and
search; each decodes the request, calls an image service and encodes
dockerd's reply (JSON progress streams for pull, push and load)."""
from engine.errors import InvalidParameter
from engine.filters import Filters
from engine.services.image_archive import ImageArchives
from engine.services.image_prune import prune_images
from engine.services.image_push import PushService
from engine.services.images import ImageService, decode_auth
from engine.services.registries import RegistryAccess

from ..http import Reply, Request, Streamed, json_reply
from ..streams import json_message


def _json_stream(messages) -> Streamed:
    return Streamed(json_message(m) for m in messages)


def add_routes(router, images: ImageService, archives: ImageArchives, pushes: PushService,
               registries: RegistryAccess, pruned=lambda event_type, reclaimed: None) -> None:
    """``pruned(type, reclaimed)`` logs a prune's event (the events service's)."""
    def create(request: Request):
        """A pull (fromImage) or an import (fromSrc); errors before the first message are HTTP errors."""
        if request.arg("fromImage"):
            return _json_stream(images.pull(request.arg("fromImage"), request.arg("tag") or "",
                                            request.headers.get("x-registry-auth"), request.arg("platform") or ""))
        return _json_stream(archives.import_image(request.body.read, request.arg("fromSrc") or "",
                                                  request.arg("repo") or "", request.arg("tag") or "",
                                                  request.arg("message") or "", request.query.get("changes", [])))

    def listing(request: Request):
        return json_reply(images.list(Filters.parse(request.arg("filters")), request.bool_arg("all")))

    def inspect(request: Request):
        return json_reply(images.inspect(request.params["name"]))

    def history(request: Request):
        return json_reply(images.history(request.params["name"]))

    def tag(request: Request):
        images.tag(request.params["name"], request.arg("repo") or "", request.arg("tag") or "")
        return Reply(201, b"", "")

    def remove(request: Request):
        name = request.params["name"]
        if not name.strip():
            raise InvalidParameter("image name cannot be blank")
        return json_reply(images.remove(name, force=request.bool_arg("force")))

    def push(request: Request):
        return _json_stream(pushes.push(request.params["name"], request.arg("tag") or "",
                                        request.headers.get("x-registry-auth")))

    def save(names: list[str]) -> Streamed:
        return Streamed(archives.save(names), content_type="application/x-tar")

    def load(request: Request):
        quiet = request.bool_arg("quiet") if "quiet" in request.query else True
        return _json_stream(archives.load(request.body.read, quiet))

    def prune(request: Request):
        return json_reply(prune_images(images, request.arg("filters"), pruned))

    def login(request: Request):
        return json_reply(registries.login(request.json() or {}))

    def search(request: Request):
        return json_reply(registries.search(request.arg("term") or "", request.arg("limit"), request.arg("filters"),
                                            decode_auth(request.headers.get("x-registry-auth"))))

    router.add("POST", "/images/create", create)
    router.add("GET", "/images/json", listing)
    router.add("GET", "/images/search", search)
    router.add("GET", "/images/get", lambda request: save(request.query.get("names", [])))
    router.add("POST", "/images/load", load)
    router.add("POST", "/images/prune", prune)
    router.add("POST", "/auth", login)
    router.add("GET", "/images/{name:.*}/json", inspect)
    router.add("GET", "/images/{name:.*}/history", history)
    router.add("GET", "/images/{name:.*}/get", lambda request: save([request.params["name"]]))
    router.add("POST", "/images/{name:.*}/tag", tag)
    router.add("POST", "/images/{name:.*}/push", push)
    router.add("DELETE", "/images/{name:.*}", remove)
