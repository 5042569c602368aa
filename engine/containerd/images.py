"""The image side of the engine's door to containerd: images by name in the
engine's namespace, what their targets resolve to (manifest, config, layer
chain), layer sizes as dockerd counts them, and pulls through containerd_py's
transfer code running over the client's proxies (as `containerd-py-ctl pull`
does). Nothing here touches containerd's directories on disk.

Everything takes a `containerd_py.client.Client`; containerd's errors are
passed through as containerd_py's domain errors for the image service to word.
"""
import tarfile
import threading
from dataclasses import dataclass

from containerd_py import errors
from containerd_py.client import Client
from containerd_py.content.store import Info
from containerd_py.diff.compression import decompress
from containerd_py.metadata.store import Image
from containerd_py.reference import Reference
from containerd_py.remotes.registry import Registry
from containerd_py.transfer.manifests import DEFAULT_PLATFORM, chain_ids, read_json, resolve_manifest
from containerd_py.transfer.progress import Progress
from containerd_py.transfer.pull import pull as transfer_pull
from containerd_py.transfer.pull import source_label
from containerd_py.transfer.push import push as transfer_push
from containerd_py.types import Descriptor

SNAPSHOTTER = "overlayfs"
SIZE_LABEL = "io.engine-py.layer.size"


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
        self._layer_sizes: dict[str, int] = {}  # layer digest -> dockerd's size of it
        self._lock = threading.Lock()
        self._sizing = threading.Lock()

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

    def layer_size(self, layer: Descriptor) -> int:
        """dockerd's size of a layer: the bytes of its files, a symlink counting its target's length
        and a hard link nothing (its graph driver's measure of the unpacked layer). Read once from
        the layer's content and kept on it as a label, so no restart reads it again."""
        with self._lock:
            known = self._layer_sizes.get(layer.digest)
        if known is not None:
            return known
        with self._sizing:  # one reading of a layer at a time: a second asker finds it done
            with self._lock:
                known = self._layer_sizes.get(layer.digest)
            if known is None:
                try:
                    known = self._stored_or_measured_size(layer.digest)
                except errors.NotFound:
                    return 0  # not fetched (yet)
                with self._lock:
                    self._layer_sizes[layer.digest] = known
        return known

    def _stored_or_measured_size(self, digest: str) -> int:
        content = self.client.content
        label = content.info(digest).labels.get(SIZE_LABEL, "")
        if label.isdigit():
            return int(label)
        size = 0
        with content.open(digest) as blob, tarfile.open(fileobj=decompress(blob), mode="r|") as tf:
            for member in tf:
                size += member.size if member.isreg() else len(member.linkname) if member.issym() else 0
        content.update(Info(digest, 0, labels={SIZE_LABEL: str(size)}), [f"labels.{SIZE_LABEL}"])
        return size

    def pull(self, registry: Registry, ref: Reference, progress: Progress) -> Image:
        """Fetches ref into the content store, records it under str(ref) and unpacks it."""
        return transfer_pull(self.client.backend, self.client.namespace, registry, ref, DEFAULT_PLATFORM,
                             self.snapshotter, progress)

    @staticmethod
    def resolve_remote(registry: Registry, ref: Reference) -> Descriptor:
        """What ref names in the registry now (NotFound when nothing)."""
        return registry.resolve(ref.repository, ref.object)

    def push(self, registry: Registry, ref: Reference, local_name: str, progress: Progress) -> Descriptor:
        """Pushes the image local_name (its linux/amd64 manifest) as ref; returns what ref now names."""
        return transfer_push(self.client.backend, self.client.namespace, registry, ref, local_name,
                             DEFAULT_PLATFORM, progress=progress)

    def source_repositories(self, host: str, digest: str) -> tuple[str, ...]:
        """The repositories of host the blob is known to be in (containerd's distribution.source label)."""
        key, _ = source_label(host, "")
        return tuple(r for r in self.client.content.info(digest).labels.get(key, "").split(",") if r)
