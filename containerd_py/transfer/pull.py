"""Pulling: resolve a reference, fetch what the platform needs into the content
store (blobs concurrently), record the image, then unpack it.

Objects get the labels ctr gives them: where they came from
(`containerd.io/distribution.source.<host>`) and the gc references from
each index and manifest to its children.
"""
import contextvars
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing

from .. import errors
from .. import mediatypes as mt
from ..content.store import ContentStore, Info
from ..metadata.store import Image, ImageStore
from ..plugins import Platform
from ..reference import Reference
from ..remotes.registry import Registry
from ..types import Descriptor
from .backend import Backend
from .manifests import DEFAULT_PLATFORM, gc_labels, platform_children, read_json
from .progress import DOWNLOADED, DOWNLOADING, EXISTS, WAITING, Progress, kind_of
from .unpack import unpack


def source_label(host: str, repo: str) -> tuple[str, str]:
    """containerd keys the label by host name without the port."""
    hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return f"containerd.io/distribution.source.{hostname}", repo


def record_source(content: ContentStore, ns: str, digest: str, key: str, repo: str) -> None:
    """Adds repo to the object's source label, for later pushes to mount it from there."""
    current = content.info(ns, digest).labels.get(key, "")
    repos = ",".join(sorted(set(filter(None, current.split(","))) | {repo}))
    content.update(ns, Info(digest, 0, labels={key: repos}), [f"labels.{key}"])


def store_image(images: ImageStore, ns: str, name: str, target: Descriptor) -> Image:
    """Creates the image, or points an existing one at the new target."""
    try:
        return images.create(ns, Image(name, target))
    except errors.AlreadyExists:
        return images.update(ns, Image(name, target), [])


def pull(backend: Backend, ns: str, registry: Registry, ref: Reference, platform: Platform | None = DEFAULT_PLATFORM,
         snapshotter: str | None = "overlayfs", progress: Progress = Progress(), concurrency: int = 3) -> Image:
    """Pulls ref; platform None fetches every platform of an index (and then unpacks none).

    Everything is written under a temporary lease: a failed pull leaves
    nothing for the garbage collector to keep.
    """
    with backend.leased(ns):
        try:
            target = registry.resolve(ref.repository, ref.object)
        except errors.NotFound:
            raise errors.NotFound(f"{ref}: reference") from None
        with ThreadPoolExecutor(concurrency, thread_name_prefix="fetch") as pool:
            _Fetcher(backend, ns, registry, ref, platform, progress, pool).tree(target)
        image = store_image(backend.images, ns, str(ref), target)
        if snapshotter and platform is not None:
            unpack(backend, ns, image.target, platform, snapshotter, progress)
    return image


class _Fetcher:
    def __init__(self, backend: Backend, ns: str, registry: Registry, ref: Reference, platform: Platform | None,
                 progress: Progress, pool: ThreadPoolExecutor):
        self.content, self.ns, self.registry, self.repo = backend.content, ns, registry, ref.repository
        self.platform, self.progress, self.pool = platform, progress, pool
        self.source_key, _ = source_label(ref.host, ref.repository)

    def tree(self, desc: Descriptor) -> None:
        """Fetches desc and, for an index or manifest, the children the platform needs."""
        self.blob(desc)
        if desc.media_type not in mt.INDEXES and desc.media_type not in mt.MANIFESTS:
            return
        kids = platform_children(desc, read_json(self.content, self.ns, desc), self.platform)
        for kid in kids:
            self.progress.update(kind_of(kid), kid, WAITING)
        # Each thread runs in a copy of this context: the daemon's stores find the lease there.
        blobs = [self.pool.submit(contextvars.copy_context().run, self.blob, k)
                 for k in kids if k.media_type not in mt.DISTRIBUTABLE_MANIFESTS]
        for kid in kids:
            if kid.media_type in mt.DISTRIBUTABLE_MANIFESTS:
                self.tree(kid)
        for future in blobs:
            future.result()
        labels = gc_labels(desc, kids)
        self.content.update(self.ns, Info(desc.digest, 0, labels=labels), [f"labels.{k}" for k in labels])

    def blob(self, desc: Descriptor) -> None:
        """Fetches one object into the content store unless it is there; the store verifies it."""
        kind = kind_of(desc)
        try:
            record_source(self.content, self.ns, desc.digest, self.source_key, self.repo)
        except errors.NotFound:
            pass
        else:
            self.progress.update(kind, desc, EXISTS, desc.size)
            return
        ref = f"{kind}-{desc.digest}"
        try:
            writer = self.content.writer(self.ns, ref, desc.size, desc.digest)
        except errors.AlreadyExists:
            self.progress.update(kind, desc, EXISTS, desc.size)
            return
        with closing(writer):
            offset = writer.status().offset
            if offset > desc.size:
                writer.truncate(0)
                offset = 0
            done = [offset]

            def write(data: bytes) -> None:
                writer.write(data)
                done[0] += len(data)
                self.progress.update(kind, desc, DOWNLOADING, done[0])

            self.registry.fetch(self.repo, desc, write, offset)
            bad = None
            try:
                writer.commit(desc.size, desc.digest, {self.source_key: self.repo})
            except errors.AlreadyExists:
                pass  # a concurrent pull committed it first
            except errors.FailedPrecondition as e:
                bad = e
        if bad is not None:
            self.content.abort(self.ns, ref)  # the bytes are wrong: nothing to resume from
            raise errors.FailedPrecondition(f"{self.registry.base_url}/{self.repo}: {kind} {desc.digest}: "
                                            f"{bad.args[0]}")
        self.progress.update(kind, desc, DOWNLOADED, desc.size)
