"""`docker save`, `docker load` and `docker import`, in dockerd 20.10's
formats and words.

save writes dockerd's docker-archive: per layer `<v1 id>/{VERSION,json,layer.tar}`
(the tar uncompressed, as dockerd's layer store holds it), `<config hex>.json`,
`manifest.json` and `repositories`; a name without a tag saves every tag of
that repository, an ID saves the image untagged. load takes that format (its
layers plain or compressed) and OCI archives, and answers with
`{"stream":"Loaded image: x\\n"}` lines (`Loaded image ID: sha256:...` for an
image the archive names not); its errors are the stream's last message.
import makes a one-layer image of a root filesystem tar, with `--change`
lines applied to its config.
"""
import datetime
import io
import json
import shutil
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from containerd_py import digest as digests
from containerd_py import errors as cerrors
from containerd_py import mediatypes as mt
from containerd_py.transfer import progress as p
from engine import gojson
from engine.containerd import archive
from engine.errors import EngineError, Forbidden, InvalidParameter, NotFound, System, Unauthorized
from engine.reference import Named, parse_any, parse_normalized
from engine.services.image_changes import apply_changes
from engine.services.images import DANGLING, ImageService, ImageView, go_config, go_time, unix_time
from engine.services.pull_progress import due, layer_message, progress_text
from engine.services.registries import no_answer
from engine.services.streaming import error_message, in_thread
from engine.services.system import VERSION

_EPOCH = "1970-01-01T00:00:00Z"
_V1_KEYS = ("comment", "created", "container", "container_config", "docker_version", "author", "config",
            "architecture", "variant", "os")
_BLOCK = 512
_TIMEOUT = 60  # seconds without an answer before a download is given up


class ImageArchives:
    def __init__(self, images: ImageService):
        self.images, self.door = images, images.door
        self.client = images.door.client

    # -- save -----------------------------------------------------------------

    def save(self, names: list[str]) -> Iterator[bytes]:
        """Finds every image first (errors raised, for an HTTP error), then streams the tar."""
        return self._tar(self._select(names))

    def _select(self, names: list[str]) -> list[tuple[ImageView, list[Named]]]:
        """dockerd's parseNames: the images to save, each with its tags to write, in order."""
        catalog = self.images.catalog()
        chosen: dict[str, tuple[ImageView, list[Named]]] = {}

        def add(view: ImageView, tag: Named | None = None) -> None:
            tags = chosen.setdefault(view.id, (view, []))[1]
            if tag is not None and tag not in tags:
                tags.append(tag)

        for name in names:
            ref = parse_any(name)
            if isinstance(ref, str):
                add(catalog.find(ref))
                continue
            name_only = "@" not in name and ":" not in name.rpartition("/")[2]
            if ref.familiar_name == "sha256" or name_only:
                tagged = sorted((r for v in catalog.by_id.values() for r in v.refs
                                 if r.name == ref.name and r.tag), key=str) if name_only else []
                for tag in tagged:
                    add(catalog.by_name[str(tag)], tag)
                if not tagged:
                    add(self._by_prefix(catalog, name))
                continue
            view = catalog.by_name.get(str(ref))
            if view is None:
                raise NotFound("reference does not exist")
            add(view, None if ref.digest else ref)
        return list(chosen.values())

    @staticmethod
    def _by_prefix(catalog, text: str) -> ImageView:
        found = catalog.by_prefix(text)
        if found is None:
            raise NotFound(f"No such image: {text}")
        return found

    def _tar(self, selection: list[tuple[ImageView, list[Named]]]) -> Iterator[bytes]:
        manifest, repositories, written = [], {}, set()
        for view, tags in selection:
            layer_paths = []
            for v1_id, v1_json, layer, mtime in _v1_layers(view):
                layer_paths.append(f"{v1_id}/layer.tar")
                if v1_id in written:
                    continue
                written.add(v1_id)
                yield _header(f"{v1_id}/", 0, mtime, tarfile.DIRTYPE, 0o755)
                yield from _file(f"{v1_id}/VERSION", b"1.0", mtime)
                yield from _file(f"{v1_id}/json", v1_json, mtime)
                yield from self._layer(f"{v1_id}/layer.tar", layer, mtime)
            config_name = view.id.split(":")[1] + ".json"
            yield from _file(config_name, archive.read_blob(self.client, view.id),
                             max(unix_time(view.created), 0))
            self.images.publish("save", view.id, view.id)  # as dockerd's exporter, once the image is written
            for tag in tags:
                repositories.setdefault(tag.familiar_name, {})[tag.tag] = layer_paths[-1].split("/")[0] \
                    if layer_paths else ""
            manifest.append({"Config": config_name, "RepoTags": [t.familiar() for t in tags] or None,
                             "Layers": layer_paths})
        now = int(datetime.datetime.now().timestamp())
        if repositories:
            yield from _file("repositories", _go_json(repositories), now)
        yield from _file("manifest.json", _go_json(manifest), now)
        yield b"\0" * (2 * _BLOCK)

    def _layer(self, name: str, layer, mtime: int) -> Iterator[bytes]:
        """The layer uncompressed: spooled first, as a tar header needs its size."""
        with tempfile.TemporaryFile(prefix="engine-save-") as spool:
            with archive.open_uncompressed(self.client, layer) as raw:
                shutil.copyfileobj(raw, spool, 1 << 20)
            size = spool.tell()
            spool.seek(0)
            yield _header(name, size, mtime)
            yield from archive.read_chunks(spool)
            yield _padding(size)

    # -- load -----------------------------------------------------------------

    def load(self, read, quiet: bool = True) -> Iterator[dict]:
        """The archive from read(n), loaded; its report (and failure) as stream messages."""
        try:
            with archive.leased(self.client):
                for image in archive.read_archive(self.client, archive.Readable(read)):
                    yield from self._load_one(image, quiet)
        except (cerrors.Error, EngineError, OSError) as e:  # the stream's last message
            yield error_message(str(e.args[0]) if isinstance(e, cerrors.Error) and e.args else str(e))

    def _load_one(self, image: archive.Archived, quiet: bool) -> Iterator[dict]:
        shown: list[dict] = []
        progress = p.Progress() if quiet else _LoadProgress(shown.append)
        archive.unpack_image(self.client, image.target, self.door.snapshotter, progress)
        yield from shown
        catalog = self.images.catalog()
        image_id = self.door.resolve(image.target).config_digest
        for name in image.names:
            ref = parse_normalized(name)
            previous = catalog.by_name.get(str(ref))
            if previous is not None and previous.id != image_id:
                yield _line(f"The image {ref.familiar()} already exists, renaming the old one with ID "
                            f"{previous.id} to empty string")
            self.images.keep_when_unnamed(str(ref), image.target)
            self.door.put(str(ref), image.target)
            self.images.drop_dangling(image.target)
            yield _line(f"Loaded image: {ref.familiar()}")
        if not image.names:
            if image_id not in catalog.by_id:
                self.door.put(DANGLING + image.target.digest, image.target)
            yield _line(f"Loaded image ID: {image_id}")
        self.images.publish("load", image_id, image_id)

    # -- import ---------------------------------------------------------------

    def import_image(self, read, source: str = "-", repo: str = "", tag: str = "", message: str = "",
                     changes: Iterable[str] = ()) -> Iterator[dict]:
        """A one-layer image of a root filesystem tar: the request's body (source "-", dockerd's
        errors raised, for an HTTP error) or what a URL serves (reported as dockerd reports it:
        Downloading from, Importing bars, then the image's ID)."""
        ref = None
        if repo:
            ref = parse_normalized(repo)
            if ref.digest:
                raise InvalidParameter("cannot import digest reference")
            ref = (ref.with_tag(tag) if tag else ref).tag_name_only()
        container_config = go_config(apply_changes({}, list(changes)))
        if source == "-":
            return iter([self._import(archive.Readable(read), ref, container_config, message or "Imported from -")])
        url = source if "://" in source else f"http://{source}"
        return self._import_stream(_download(url), url, ref, container_config, message or f"Imported from {url}")

    def _import_stream(self, response, url: str, ref: Named | None, container_config: dict,
                       message: str) -> Iterator[dict]:
        with response:
            yield {"status": f"Downloading from {url}"}
            total = int(response.headers.get("Content-Length") or -1)
            try:
                done = yield from in_thread(lambda emit: self._import(
                    _Importing(response, total, emit), ref, container_config, message), f"import {url}")
            except Exception as e:  # noqa: BLE001 - the stream's last message
                yield error_message(str(e.args[0]) if isinstance(e, cerrors.Error) else str(e))
                return
        yield done

    def _import(self, source: BinaryIO, ref: Named | None, container_config: dict, message: str) -> dict:
        created = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        try:
            with archive.leased(self.client):
                layer, diff_id = archive.write_layer(self.client, source)
                config = archive.write_json(self.client, {
                    "architecture": "amd64", "comment": message, "config": container_config,
                    "container_config": go_config({}), "created": created, "docker_version": VERSION,
                    "history": [{"created": created, "comment": message}], "os": "linux",
                    "rootfs": {"type": "layers", "diff_ids": [diff_id]}}, mt.DOCKER_CONFIG)
                manifest = archive.write_manifest(self.client, config, [layer])
                self.door.put(DANGLING + manifest.digest, manifest)
                archive.unpack_image(self.client, manifest, self.door.snapshotter)
        except cerrors.InvalidArgument as e:
            raise InvalidParameter(str(e.args[0])) from None
        if ref is not None:
            self.images.tag(config.digest, str(ref))
        self.images.publish("import", config.digest, config.digest)  # after its tag, as dockerd's
        return {"status": config.digest}


def _download(url: str):
    """The response for url, or dockerd's error (remote.GetWithStatusError) before any output."""
    import urllib.error  # at the first use: see containerd_py/remotes/registry.py
    import urllib.request

    try:
        return urllib.request.urlopen(url, timeout=_TIMEOUT)
    except urllib.error.HTTPError as e:
        with e:
            body = e.read(64 << 10).strip().decode(errors="replace")
        text = f"failed to GET {url} with status {e.code} {e.reason}: {body}"
        raise {400: InvalidParameter, 401: Unauthorized, 403: Forbidden, 404: NotFound}.get(e.code, System)(text) \
            from None
    except (urllib.error.URLError, ValueError) as e:
        cause = e.reason if isinstance(getattr(e, "reason", None), BaseException) else e
        raise System(no_answer("GET", url, cause)) from None


class _Importing(io.RawIOBase):
    """A download read through, reported as dockerd's `Importing` progress."""

    def __init__(self, response, total: int, emit):
        self._response, self._total, self._emit = response, total, emit
        self._done = self._reported = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self._response.readinto(buffer)
        self._done += n
        if due(self._reported, self._done, self._total) or not n:
            self._reported = self._done
            self._emit({"status": "Importing", "progressDetail": {"current": self._done, "total": self._total},
                        "progress": progress_text(self._done, self._total)})
        return n


class _LoadProgress(p.Progress):
    """dockerd's `Loading layer` lines, one per layer unpacked (by its chain ID)."""

    def __init__(self, emit):
        self._emit = emit

    def update(self, kind, desc, status, current=0):
        if kind == "layer" and status == p.UNPACKED:
            self._emit(layer_message("Loading layer", desc.digest.split(":")[1][:12], desc.size, desc.size))


def _line(text: str) -> dict:
    """What dockerd's load writes through its stdout writer: a `stream` message."""
    return {"stream": text + "\n"}


def _go_json(obj) -> bytes:
    """As Go's json.Encoder writes it: compact, a newline after."""
    return gojson.encode(obj) + b"\n"


def _v1_layers(view: ImageView) -> Iterator[tuple[str, bytes, object, int]]:
    """(v1 ID, its legacy json, layer, mtime) per layer, bottom first, as moby's v1.CreateID
    derives them: the ID a digest of the v1 image with its chain ID and parent's ID."""
    config, parent = view.config, ""
    layers, chains = view.resolved.layers, view.resolved.chain_ids
    for i, (layer, chain) in enumerate(zip(layers, chains)):
        if i == len(layers) - 1:
            v1 = {k: config[k] for k in _V1_KEYS if config.get(k)}
            v1["created"] = go_time(config.get("created", ""))
            v1["container_config"] = go_config(config.get("container_config"))
            if config.get("config") is not None:
                v1["config"] = go_config(config["config"])
            mtime = max(unix_time(view.created), 0)
        else:
            v1, mtime = {"created": _EPOCH, "container_config": go_config({})}, 0
        identity = {**v1, "layer_id": chain, **({"parent": "sha256:" + parent} if parent else {})}
        v1_id = digests.hex_of(digests.of_small(json.dumps(identity, sort_keys=True, separators=(",", ":")).encode()))
        document = {"id": v1_id, **({"parent": parent} if parent else {}), **v1}
        yield v1_id, json.dumps(document, separators=(",", ":")).encode(), layer, mtime
        parent = v1_id


def _header(name: str, size: int, mtime: int, kind: bytes = tarfile.REGTYPE, mode: int = 0o644) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.type, info.mode = size, mtime, kind, mode
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _padding(size: int) -> bytes:
    return b"\0" * (-size % _BLOCK)


def _file(name: str, data: bytes, mtime: int) -> Iterator[bytes]:
    yield _header(name, len(data), mtime)
    yield data + _padding(len(data))
