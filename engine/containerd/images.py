"""The image side of the engine's door to containerd: images by name in the
engine's namespace, what their targets resolve to (manifest, config, layer
chain), layer sizes from the snapshotter, and pulls through containerd_py's
transfer code running over the client's proxies (as `containerd-py-ctl pull`
does). Nothing here touches containerd's directories on disk.

Everything takes a `containerd_py.client.Client`; containerd's errors are
passed through as containerd_py's domain errors for the image service to word.
"""
import threading
from dataclasses import dataclass

from containerd_py import errors
from containerd_py.client import Client
from containerd_py.metadata.store import Image
from containerd_py.reference import Reference
from containerd_py.remotes.registry import Registry
from containerd_py.transfer.manifests import DEFAULT_PLATFORM, chain_ids, read_json, resolve_manifest
from containerd_py.transfer.progress import Progress
from containerd_py.transfer.pull import pull as transfer_pull
from containerd_py.types import Descriptor

SNAPSHOTTER = "overlayfs"


@dataclass(frozen=True)
class Resolved:
    """What an image's target comes to on this platform; immutable, as the target's digest is."""

    manifest: Descriptor
    config_digest: str  # the image ID
    config: dict
    layers: tuple[Descriptor, ...]
    chain_ids: tuple[str, ...]


class ContainerdImages:
    """Images of one namespace (the client's) and one snapshotter."""

    def __init__(self, client: Client, snapshotter: str = SNAPSHOTTER):
        self.client, self.snapshotter = client, snapshotter
        self._resolved: dict[str, Resolved] = {}  # target digest -> what it resolves to
        self._layer_sizes: dict[str, int] = {}  # chain id -> bytes of that layer's snapshot
        self._lock = threading.Lock()

    def list(self) -> list[Image]:
        return self.client.images.list([])

    def get(self, name: str) -> Image | None:
        try:
            return self.client.images.get(name)
        except errors.NotFound:
            return None

    def put(self, name: str, target: Descriptor, labels: dict[str, str] | None = None) -> Image:
        """Creates the name, or points it at target (with labels) if it exists."""
        image = Image(name, target, dict(labels or {}))
        try:
            return self.client.images.create(image)
        except errors.AlreadyExists:
            return self.client.images.update(image, ["target"] + [f"labels.{k}" for k in image.labels])

    def delete(self, name: str, sync: bool = False) -> None:
        """sync: returns once what only this name held (content, snapshots) is collected."""
        self.client.images.delete(name, sync=sync)

    def resolve(self, target: Descriptor) -> Resolved:
        """The target's manifest and config for linux/amd64, read once per digest."""
        with self._lock:
            known = self._resolved.get(target.digest)
        if known is not None:
            return known
        content, ns = self.client.backend.content, self.client.namespace
        manifest = resolve_manifest(content, ns, target, DEFAULT_PLATFORM)
        config = read_json(content, ns, manifest.config)
        resolved = Resolved(manifest.desc, manifest.config.digest, config, tuple(manifest.layers),
                            tuple(chain_ids(manifest.diff_ids)))
        with self._lock:
            self._resolved[target.digest] = resolved
        return resolved

    def layer_size(self, chain_id: str) -> int:
        """Bytes the committed snapshot of one layer holds (0 when it is not unpacked)."""
        with self._lock:
            known = self._layer_sizes.get(chain_id)
        if known is not None:
            return known
        try:
            size = self.client.snapshots(self.snapshotter).usage(chain_id).size
        except errors.NotFound:
            return 0
        with self._lock:
            self._layer_sizes[chain_id] = size  # committed snapshots do not change
        return size

    def forget_layers(self, chain: tuple[str, ...]) -> None:
        """Drops cached sizes of layers that may have been collected."""
        with self._lock:
            for chain_id in chain:
                self._layer_sizes.pop(chain_id, None)

    def pull(self, registry: Registry, ref: Reference, progress: Progress) -> Image:
        """Fetches ref into the content store, records it under str(ref) and unpacks it."""
        return transfer_pull(self.client.backend, self.client.namespace, registry, ref, DEFAULT_PLATFORM,
                             self.snapshotter, progress)

    @staticmethod
    def resolve_remote(registry: Registry, ref: Reference) -> Descriptor:
        """What ref names in the registry now (NotFound when nothing)."""
        return registry.resolve(ref.repository, ref.object)
