"""What goes in and out of a container: top, stats, changes, export, the
archive API of ``docker cp``, and commit; each decodes the request, calls
its service and encodes dockerd's reply."""
from engine.services.commit import CommitService
from engine.services.container_fs import PATH_STAT_HEADER, ContainerFiles, encode_path_stat
from engine.services.stats import StatsService

from ..http import Reply, Request, Streamed, json_reply
from ..streams import json_message

TAR = "application/x-tar"


def _bool_or(request: Request, name: str, default: bool) -> bool:
    """dockerd's BoolValueOrDefault: the default when the parameter is absent or empty."""
    return request.bool_arg(name) if request.arg(name) else default


def add_routes(router, stats: StatsService, files: ContainerFiles, committer: CommitService) -> None:
    def top(request: Request):
        return json_reply(stats.top(request.params["name"], request.arg("ps_args")))

    def container_stats(request: Request):
        stream = _bool_or(request, "stream", True)
        samples = stats.stats(request.params["name"], stream, request.bool_arg("one-shot"), request.disconnected)
        if not stream:
            return json_reply(next(samples))
        return Streamed(json_message(sample) for sample in samples)

    def changes(request: Request):
        return json_reply(files.changes(request.params["name"]))

    def export(request: Request):
        return Streamed(files.export(request.params["name"]), content_type=TAR)

    def archive_head(request: Request):
        described = files.stat_path(request.params["name"], request.arg("path") or "")
        return Reply(200, b"", "", [(PATH_STAT_HEADER, encode_path_stat(described))])

    def archive_get(request: Request):
        described, chunks = files.archive(request.params["name"], request.arg("path") or "")
        return Streamed(chunks, content_type=TAR, headers=[(PATH_STAT_HEADER, encode_path_stat(described))])

    def archive_put(request: Request):
        files.extract(request.params["name"], request.arg("path") or "", request.body,
                      request.bool_arg("noOverwriteDirNonDir"), request.bool_arg("copyUIDGID"))
        return Reply(200, b"", "")

    def commit(request: Request):
        config = request.json()
        pause = _bool_or(request, "pause", True)  # dockerd's default since API 1.13
        image_id = committer.commit(request.arg("container") or "", request.arg("repo") or "",
                                    request.arg("tag") or "", request.arg("comment") or "",
                                    request.arg("author") or "", pause, request.query.get("changes", []),
                                    config if isinstance(config, dict) else None)
        return json_reply({"Id": image_id}, 201)

    router.add("GET", "/containers/{name}/top", top)
    router.add("GET", "/containers/{name}/stats", container_stats)
    router.add("GET", "/containers/{name}/changes", changes)
    router.add("GET", "/containers/{name}/export", export)
    router.add("HEAD", "/containers/{name}/archive", archive_head)
    router.add("GET", "/containers/{name}/archive", archive_get)
    router.add("PUT", "/containers/{name}/archive", archive_put)
    router.add("POST", "/commit", commit)
