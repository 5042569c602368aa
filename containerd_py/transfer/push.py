"""Pushing: an image's blobs (concurrently, mounted from another repository of
the registry when the content came from there), then its manifests, children
before parents, the top one under the tag."""
import contextvars
from concurrent.futures import ThreadPoolExecutor

from .. import errors
from .. import mediatypes as mt
from ..plugins import Platform
from ..reference import Reference
from ..remotes.registry import Registry
from ..types import Descriptor
from .backend import Backend
from .manifests import children, platform_children, read_json
from .progress import ALREADY_PUSHED, MOUNTED, PUSHED, UPLOADING, WAITING, Progress, kind_of
from .pull import record_source, source_label

_RESULTS = {"exists": ALREADY_PUSHED, "mounted": MOUNTED, "pushed": PUSHED}


def push(backend: Backend, ns: str, registry: Registry, ref: Reference, local_name: str,
         platform: Platform | None = None, chunk_size: int = 0, progress: Progress = Progress(),
         concurrency: int = 3) -> Descriptor:
    """Pushes the image local_name as ref; platform picks one manifest out of an index.
    Returns the descriptor now at ref."""
    content = backend.content
    target = backend.images.get(ns, local_name).target
    if platform is not None and target.media_type in mt.INDEXES:
        (target,) = platform_children(target, read_json(content, ns, target), platform)
    manifests: list[Descriptor] = []  # children before parents
    blobs: dict[str, Descriptor] = {}

    def walk(desc: Descriptor) -> None:
        try:
            if desc.media_type in mt.INDEXES or desc.media_type in mt.MANIFESTS:
                for kid in children(desc, read_json(content, ns, desc)):
                    walk(kid)
                manifests.append(desc)
            else:
                content.info(ns, desc.digest)
                blobs.setdefault(desc.digest, desc)
        except errors.NotFound:
            raise errors.NotFound(f"{kind_of(desc)} {desc.digest} of {local_name} is not in the content store "
                                  f"(pulled for one platform only? push with --platform)") from None

    walk(target)
    key, repo = source_label(ref.host, ref.repository)

    def push_blob(desc: Descriptor) -> None:
        kind = kind_of(desc)
        sources = tuple(filter(None, content.info(ns, desc.digest).labels.get(key, "").split(",")))
        result = registry.push_blob(repo, desc, lambda: content.open(ns, desc.digest), sources, chunk_size,
                                    _Counter(progress, kind, desc))
        record_source(content, ns, desc.digest, key, repo)
        progress.update(kind, desc, _RESULTS[result], desc.size)

    for desc in blobs.values():
        progress.update(kind_of(desc), desc, WAITING)
    with ThreadPoolExecutor(concurrency, thread_name_prefix="push") as pool:
        for future in [pool.submit(contextvars.copy_context().run, push_blob, d) for d in blobs.values()]:
            future.result()
    for desc in manifests:
        with content.open(ns, desc.digest) as f:
            data = f.read()
        registry.put_manifest(repo, ref.object if desc is target else desc.digest, desc, data)
        record_source(content, ns, desc.digest, key, repo)
        progress.update(kind_of(desc), desc, PUSHED, desc.size)
    return target


class _Counter:
    """Turns byte counts into UPLOADING updates."""

    def __init__(self, progress: Progress, kind: str, desc: Descriptor):
        self._progress, self._kind, self._desc, self._done = progress, kind, desc, 0

    def __call__(self, n: int) -> None:
        self._done += n
        self._progress.update(self._kind, self._desc, UPLOADING, self._done)
