"""The engine's door to a container's filesystem in containerd: its snapshot
mounted (read-only, or writable for ``docker cp`` into a stopped container),
next to a view of the image below it (``docker diff``), its changes as a
layer through containerd's diff service, and the blobs, image records and
snapshots a commit adds. Nothing here reads containerd's directories; every
tree is mounted from the mounts containerd hands out.
"""
import json
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from containerd_py import errors as cerrors
from containerd_py.client import Client
from containerd_py.content.store import Info
from containerd_py.mount import readonly, temp_mount
from containerd_py.transfer.manifests import DEFAULT_PLATFORM
from containerd_py.transfer.unpack import unpack
from containerd_py.types import Descriptor

from engine.containerd.tasks import SNAPSHOTTER, engine_errors
from engine.errors import System

UNCOMPRESSED_LABEL = "containerd.io/uncompressed"


class ContainerdLayers:
    def __init__(self, client: Client, mount_dir: str, snapshotter: str = SNAPSHOTTER):
        """``mount_dir``: where trees are mounted for a moment (the engine's data-root/tmp)."""
        self.client, self.mount_dir, self.snapshotter = client, mount_dir, snapshotter
        self.snapshots = client.snapshots(snapshotter)

    def leased(self):
        """Views, blobs and snapshots made in the block stay until the block ends (or an image names them)."""
        return self.client.backend.leased(self.client.namespace)

    @contextmanager
    def mounted(self, container_id: str, writable: bool = False) -> Iterator[str]:
        """The container's snapshot mounted (read-only unless ``writable``)."""
        with engine_errors():
            mounts = self.snapshots.mounts(container_id)
        with self._temp_mount(mounts if writable else readonly(mounts), container_id) as root:
            yield root

    @contextmanager
    def _temp_mount(self, mounts: list, container_id: str) -> Iterator[str]:
        """The mounts on a fresh directory; a mount that fails is a 500 naming the container."""
        with ExitStack() as stack:
            try:
                root = stack.enter_context(temp_mount(mounts, self.mount_dir))
            except OSError as err:
                raise System(f"mounting the filesystem of container {container_id}: {err}") from None
            yield root

    @contextmanager
    def parent_view(self, container_id: str) -> Iterator[list]:
        """Mounts of the image's tree below the container (a view, removed afterwards; [] for none).
        Call it under a lease (``leased``), which keeps the view from the collector until it is removed."""
        with engine_errors():
            parent = self.snapshots.stat(container_id).parent
        if not parent:
            yield []
            return
        key = f"{container_id}-parent-view-{os.urandom(4).hex()}"
        with engine_errors():
            mounts = self.snapshots.view(key, parent)
            try:
                yield mounts
            finally:
                self.snapshots.remove(key)

    @contextmanager
    def with_parent(self, container_id: str) -> Iterator[tuple[str, str]]:
        """(the container's tree, its image's tree), both mounted read-only."""
        with self.leased(), self.parent_view(container_id) as parent_mounts, self.mounted(container_id) as root, \
                self._temp_mount(parent_mounts, container_id) as parent:
            yield root, parent

    # -- commit ----------------------------------------------------------------------

    def diff(self, container_id: str, media_type: str) -> tuple[Descriptor, str]:
        """The container's changes as a layer blob; (its descriptor, its diff ID). Call it under a
        lease (``leased``), which keeps the blob until an image names it."""
        with engine_errors():
            upper = self.snapshots.mounts(container_id)
            with self.parent_view(container_id) as lower:
                layer = self.client.diff.compare(lower, upper, media_type)
            diff_id = self.client.content.info(layer.digest).labels.get(UNCOMPRESSED_LABEL, "")
        if not diff_id and media_type.endswith(".tar"):  # a plain tar is its own diff: containerd labels it not
            diff_id = layer.digest
        if not diff_id:
            raise System(f"the diff service gave layer {layer.digest} without its {UNCOMPRESSED_LABEL} label")
        return layer, diff_id

    def store_json(self, obj: dict, media_type: str, labels: dict[str, str]) -> Descriptor:
        """A JSON blob in the content store (its references to other blobs as GC labels)."""
        data = json.dumps(obj, separators=(",", ":")).encode()
        with engine_errors():
            writer = self.client.content.writer(f"commit-{os.urandom(8).hex()}", len(data))
            try:
                writer.write(data)
                try:
                    digest = writer.commit(len(data), "", labels)
                except cerrors.AlreadyExists:
                    digest = writer.digest()
                    self.client.content.update(Info(digest, 0, labels=labels), [f"labels.{k}" for k in labels])
            finally:
                writer.close()
        return Descriptor(media_type, digest, len(data))

    def unpack(self, target: Descriptor) -> None:
        """The image's layers as snapshots (only the new ones are applied), so containers can run from it."""
        with engine_errors():
            unpack(self.client.backend, self.client.namespace, target, DEFAULT_PLATFORM, self.snapshotter)
