"""Image archives on the engine's side of containerd: what `docker load`
reads (docker-archive and OCI archive), the blobs `docker save` writes, and
the blobs an imported root filesystem becomes. Everything goes through the
client's content and image services, under a lease until an image names it.

Unlike containerd_py's own import (transfer.archive), an image the archive
gives no name is kept: dockerd loads it as `Loaded image ID: sha256:...`.
"""
import io
import os
import tarfile
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from dataclasses import dataclass
from typing import BinaryIO

from containerd_py import digest as digests, errors
from containerd_py import mediatypes as mt
from containerd_py.client import Client
from containerd_py.content.store import Info
from containerd_py.diff.compression import GZIP_MAGIC, ZSTD_MAGIC, decompress
from containerd_py.reference import parse as parse_reference
from containerd_py.transfer.archive import IMAGE_NAME, REF_NAME, _ingest, _label_tree
from containerd_py.transfer.manifests import DEFAULT_PLATFORM, descriptor, gc_labels, to_json
from containerd_py.transfer.progress import Progress
from containerd_py.transfer.unpack import unpack
from containerd_py.types import Descriptor

from engine import gojson

_CHUNK = 1 << 20


@dataclass
class Archived:
    """One image an archive holds: its names as written there (full references, maybe none)."""
    names: list[str]
    target: Descriptor


def leased(client: Client) -> AbstractContextManager[str]:
    """A temporary lease: what the block writes stays until an image names it, and goes if it fails."""
    return client.backend.leased(client.namespace)


def write_blob(client: Client, chunks: Iterable[bytes], small: bool = False) -> tuple[str, int]:
    """Stores the bytes as one blob; returns (digest, size). Call inside a lease.
    A layer is hashed by OpenSSL, loaded at the first one; a small blob is not
    (containerd_py.digest.small_sha256)."""
    if small:
        sha256 = digests.small_sha256
    else:
        from hashlib import sha256
    content, ref = client.content, f"engine-{os.urandom(8).hex()}"
    writer = content.writer(ref, 0, "")
    hasher, size = sha256(), 0
    committed = False
    try:
        with closing(writer):
            for chunk in chunks:
                if chunk:
                    writer.write(chunk)
                    hasher.update(chunk)
                    size += len(chunk)
            digest = "sha256:" + hasher.hexdigest()
            try:
                writer.commit(size, digest, {})
            except errors.AlreadyExists:
                pass
            committed = True
    finally:
        if not committed:
            try:
                content.abort(ref)
            except errors.Error:
                pass
    return digest, size


def write_json(client: Client, obj, media_type: str) -> Descriptor:
    return Descriptor(media_type, *write_blob(client, [gojson.encode(obj)], small=True))


def write_manifest(client: Client, config: Descriptor, layers: list[Descriptor]) -> Descriptor:
    """A docker v2 manifest over config and layers, labelled so that it keeps them from the collector."""
    body = {"schemaVersion": 2, "mediaType": mt.DOCKER_MANIFEST, "config": to_json(config),
            "layers": [to_json(layer) for layer in layers]}
    manifest = Descriptor(mt.DOCKER_MANIFEST, *write_blob(client, [gojson.encode(body)], small=True))
    labels = gc_labels(manifest, [config, *layers])
    client.content.update(Info(manifest.digest, 0, labels=labels), [f"labels.{k}" for k in labels])
    return manifest


def read_chunks(stream: BinaryIO) -> Iterator[bytes]:
    while chunk := stream.read(_CHUNK):
        yield chunk


def read_archive(client: Client, stream: BinaryIO) -> list[Archived]:
    """Stores an archive's blobs and returns its images; call inside a lease (the caller names
    them before it ends). docker-archive (manifest.json) or OCI layout (index.json)."""
    files, small = _ingest(client.backend.content, client.namespace, stream)
    if "manifest.json" in small:
        found = _docker_archive(client, files, small["manifest.json"])
    elif "index.json" in small:
        found = _oci_archive(small["index.json"])
    else:
        raise errors.InvalidArgument("the archive has neither manifest.json nor index.json")
    for image in found:
        _label_tree(client.backend.content, client.namespace, image.target)
    return found


def _docker_archive(client: Client, files: dict[str, Descriptor], entries) -> list[Archived]:
    if not isinstance(entries, list):
        raise errors.InvalidArgument("manifest.json is not a list")
    found = []
    for entry in entries:
        try:
            config = files[entry["Config"]]
            layers = [files[path] for path in entry["Layers"]]
            tags = list(entry.get("RepoTags") or [])
        except (KeyError, TypeError) as e:
            raise errors.InvalidArgument(f"manifest.json names a file the archive lacks: {e}") from None
        config = Descriptor(mt.DOCKER_CONFIG, config.digest, config.size)
        layers = [Descriptor(_layer_type(client, layer), layer.digest, layer.size) for layer in layers]
        manifest = write_manifest(client, config, layers)
        found.append(Archived([str(parse_reference(tag)) for tag in tags], manifest))
    return found


def _layer_type(client: Client, layer: Descriptor) -> str:
    with client.content.open(layer.digest) as f:
        head = f.read(4)
    if head.startswith(GZIP_MAGIC):
        return mt.DOCKER_LAYER_GZIP
    if head.startswith(ZSTD_MAGIC):
        return "application/vnd.oci.image.layer.v1.tar+zstd"
    return mt.DOCKER_LAYER


def _oci_archive(index: dict) -> list[Archived]:
    found = []
    for raw in index.get("manifests") or []:
        desc = descriptor(raw)
        name = desc.annotations.get(IMAGE_NAME) or desc.annotations.get(REF_NAME, "")
        names = [str(parse_reference(name))] if "/" in name or ":" in name else []  # a bare tag names nothing
        found.append(Archived(names, Descriptor(desc.media_type, desc.digest, desc.size)))
    return found


def unpack_image(client: Client, target: Descriptor, snapshotter: str, progress: Progress = Progress()) -> None:
    unpack(client.backend, client.namespace, target, DEFAULT_PLATFORM, snapshotter, progress)


def write_layer(client: Client, stream: BinaryIO) -> tuple[Descriptor, str]:
    """A root filesystem tar (plain, gzip or zstd) as an uncompressed layer blob; returns it and
    its diff ID (the same digest, as the blob is the uncompressed tar). Call inside a lease."""
    try:
        raw = decompress(stream)
        digest, size = write_blob(client, read_chunks(raw))
    except (OSError, EOFError) as e:
        raise errors.InvalidArgument(f"reading the layer: {e}") from None
    _check_tar(client, digest)
    return Descriptor(mt.DOCKER_LAYER, digest, size), digest


def _check_tar(client: Client, digest: str) -> None:
    """The layer must be a tar: dockerd's layer store refuses anything else on import."""
    try:
        with client.content.open(digest) as blob, tarfile.open(fileobj=blob, mode="r|") as tf:
            for _ in tf:
                pass
    except tarfile.TarError as e:
        raise errors.InvalidArgument(f"archive/tar: {e}") from None


@contextmanager
def open_uncompressed(client: Client, layer: Descriptor) -> Iterator[BinaryIO]:
    """A layer's tar, decompressed as it is read."""
    with client.content.open(layer.digest) as blob:
        yield decompress(blob)


class Readable(io.RawIOBase):
    """A file over a `read(n)` function (a request's body), for readers that want one."""

    def __init__(self, read):
        self._read = read

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def read_blob(client: Client, digest: str) -> bytes:
    with client.content.open(digest) as f:
        return f.read()
