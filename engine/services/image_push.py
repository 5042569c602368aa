"""`docker push` (POST /images/{name}/push): an image's layers and manifest to
its registry through containerd_py's transfer code, reported as dockerd's
progress messages so the CLI draws its bars:

    The push refers to repository [127.0.0.1:5000/busybox]
    <layer>: Preparing / Pushing [==>  ] / Pushed | Layer already exists | Mounted from other/busybox
    latest: digest: sha256:... size: 527          and an `aux` message {Tag, Digest, Size}

Layers are named by their diff ID, as dockerd names them. A push without a
tag pushes every tag of the repository. Afterwards the image also has the
digest reference it now has in the registry, as dockerd records it.
"""
import threading
from collections.abc import Callable, Iterator

from containerd_py.transfer import progress as p
from engine.errors import NotFound
from engine.reference import Named, parse_normalized
from engine.services.images import ImageService, ImageView, decode_auth, registry_error
from engine.services.pull_progress import due, layer_message
from engine.services.streaming import Emit, error_message, in_thread

_DONE = {p.PUSHED: "Pushed", p.ALREADY_PUSHED: "Layer already exists"}


class PushProgress(p.Progress):
    """Transfer updates as dockerd's per-layer messages (configs and manifests are not shown)."""

    def __init__(self, emit: Emit, diff_ids: dict[str, str], mounted_from: Callable[[str], str]):
        self._emit, self._diff_ids, self._mounted_from = emit, diff_ids, mounted_from
        self._reported_at: dict[str, int] = {}
        self._lock = threading.Lock()

    def update(self, kind, desc, status, current=0):
        if kind != "layer":
            return
        layer_id = self._diff_ids.get(desc.digest, desc.digest).split(":")[-1][:12]
        with self._lock:
            if status == p.UPLOADING:
                if due(self._reported_at.get(desc.digest, 0), current, desc.size):
                    self._reported_at[desc.digest] = current
                    self._emit(layer_message("Pushing", layer_id, current, desc.size))
            elif status == p.MOUNTED:
                self._emit(layer_message(f"Mounted from {self._mounted_from(desc.digest)}", layer_id))
            elif status in _DONE:
                self._emit(layer_message(_DONE[status], layer_id))


class PushService:
    def __init__(self, images: ImageService):
        self.images, self.door = images, images.door

    def push(self, name: str, tag: str = "", registry_auth: str | None = None) -> Iterator[dict]:
        """Checks the name (InvalidParameter raised, for an HTTP error); the rest, failures
        included, is the returned stream's."""
        ref = parse_normalized(name)
        if tag:
            ref = ref.with_tag(tag) if not ref.digest else ref
        return self._stream(ref, registry_auth)

    def _stream(self, ref: Named, registry_auth: str | None) -> Iterator[dict]:
        yield {"status": f"The push refers to repository [{ref.name}]"}
        try:
            registry = self.images.registry(ref.host, decode_auth(registry_auth))
            for tagged, view in self._local_tags(ref):
                yield from self._push_one(registry, tagged, view)
        except Exception as e:  # noqa: BLE001 - the stream's last message
            yield error_message(str(registry_error(e)))

    def _local_tags(self, ref: Named) -> list[tuple[Named, ImageView]]:
        """What to push: the tag asked for, or every tag of the repository (dockerd's words when none)."""
        catalog = self.images.catalog()
        if ref.tag:
            view = catalog.by_name.get(str(ref))
            if view is None:
                raise NotFound(f"tag does not exist: {ref.familiar()}")
            return [(ref, view)]
        tags = sorted((r for v in catalog.by_id.values() for r in v.refs if r.name == ref.name and r.tag),
                      key=lambda r: r.tag)
        if not tags:
            raise NotFound(f"An image does not exist locally with the tag: {ref.familiar_name}")
        return [(r, catalog.by_name[str(r)]) for r in tags]

    def _push_one(self, registry, ref: Named, view: ImageView) -> Iterator[dict]:
        resolved = view.resolved
        diff_ids = dict(zip((layer.digest for layer in resolved.layers),
                            (view.config.get("rootfs") or {}).get("diff_ids") or []))
        for layer in reversed(resolved.layers):  # top first, as dockerd prepares them
            yield layer_message("Preparing", diff_ids.get(layer.digest, layer.digest).split(":")[-1][:12])

        def mounted_from(digest: str) -> str:
            return next((r for r in self.door.source_repositories(ref.host, digest) if r != ref.repository), "")

        def work(emit):
            return self.door.push(registry, ref, str(ref), PushProgress(emit, diff_ids, mounted_from))

        target = yield from in_thread(work, f"push {ref}")
        self.door.put(f"{ref.name}@{target.digest}", view.target)
        self.images.publish("push", ref.familiar(), ref.familiar_name)
        yield {"status": f"{ref.tag}: digest: {target.digest} size: {target.size}"}
        yield {"progressDetail": {}, "aux": {"Tag": ref.tag, "Digest": target.digest, "Size": target.size}}
