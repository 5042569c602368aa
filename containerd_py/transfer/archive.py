"""Import and export of image archives: the OCI image layout as a tar (what
`ctr images export` and skopeo's oci-archive write) and docker save's layout
(manifest.json, `<config>.json`, `<layer>/layer.tar`).

Imports stream the tar once: every blob goes into the content store as it
passes (verified against its name in an OCI layout), the small JSON files
that tie them together are kept and read at the end.
"""
import io
import json
import tarfile
from contextlib import closing
from typing import BinaryIO

from .. import errors
from .. import mediatypes as mt
from ..content.store import ContentStore, Info
from ..errors import q
from ..metadata.store import Image
from ..plugins import Platform
from ..reference import parse as parse_reference
from ..types import Descriptor
from .backend import Backend
from .manifests import (children, descriptor, format_platform, gc_labels, platform_matches, read_json,
                        resolve_manifest, to_json)
from .pull import store_image
from .unpack import unpack

IMAGE_NAME = "io.containerd.image.name"
REF_NAME = "org.opencontainers.image.ref.name"
_METADATA = {"oci-layout", "index.json", "manifest.json", "repositories"}
_MAX_METADATA = 4 << 20
_GZIP_MAGIC = b"\x1f\x8b"


def _json(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def import_archive(backend: Backend, ns: str, stream: BinaryIO, platform: Platform | None,
                   snapshotter: str | None) -> list[Image]:
    """Imports every named image of the archive; unpacks each for platform into snapshotter."""
    with backend.leased(ns):
        files, small = _ingest(backend.content, ns, stream)
        if "index.json" in small:
            named = _oci_images(backend.content, ns, small["index.json"])
        elif "manifest.json" in small:
            named = _docker_images(backend.content, ns, files, small["manifest.json"])
        else:
            raise errors.InvalidArgument("not an image archive: it has neither index.json nor manifest.json")
        if not named:
            raise errors.InvalidArgument("the archive names no image")
        images = []
        for name, target in named:
            _label_tree(backend.content, ns, target)
            images.append(store_image(backend.images, ns, name, target))
        if snapshotter and platform is not None:
            for image in images:
                unpack(backend, ns, image.target, platform, snapshotter)
    return images


def _ingest(content: ContentStore, ns: str, stream: BinaryIO) -> tuple[dict[str, Descriptor], dict[str, dict]]:
    """Stores each regular file as a blob; returns them by path, and the metadata files parsed."""
    files: dict[str, Descriptor] = {}
    small: dict[str, dict] = {}
    try:
        with tarfile.open(fileobj=stream, mode="r|*") as tf:
            for member in tf:
                name = member.name[2:] if member.name.startswith("./") else member.name
                if not member.isreg():
                    continue
                data = tf.extractfile(member)
                if name in _METADATA or name.endswith("/json") or name.endswith("/VERSION"):
                    if member.size > _MAX_METADATA:
                        raise errors.InvalidArgument(f"archive file {q(name)} is too large")
                    raw = data.read()
                    if name in ("index.json", "manifest.json"):
                        small[name] = _parse(name, raw)
                    continue
                expected = ""
                if name.startswith("blobs/"):
                    algorithm, _, hexpart = name[len("blobs/"):].partition("/")
                    expected = f"{algorithm}:{hexpart}"
                files[name] = _store(content, ns, data, member.size, expected, name)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise errors.InvalidArgument(f"reading the archive: {e}") from None
    return files, small


def _parse(name: str, raw: bytes):
    try:
        return json.loads(raw)
    except ValueError:
        raise errors.InvalidArgument(f"archive file {name} is not JSON") from None


def _store(content: ContentStore, ns: str, data: BinaryIO, size: int, expected: str, name: str) -> Descriptor:
    media_type = "application/octet-stream"
    try:
        writer = content.writer(ns, f"import-{name}", size, expected)
    except errors.AlreadyExists:
        return Descriptor(media_type, expected, size)
    with closing(writer):
        if writer.status().offset:
            writer.truncate(0)
        while chunk := data.read(1 << 20):
            writer.write(chunk)
        try:
            digest = writer.commit(size, expected, {})
        except errors.AlreadyExists:
            digest = writer.digest()
        except errors.FailedPrecondition as e:
            raise errors.InvalidArgument(f"archive file {q(name)}: {e.args[0]}") from None
    return Descriptor(media_type, digest, size)


def _oci_images(content: ContentStore, ns: str, index: dict) -> list[tuple[str, Descriptor]]:
    named = []
    for raw in index.get("manifests") or []:
        desc = descriptor(raw)
        name = desc.annotations.get(IMAGE_NAME) or desc.annotations.get(REF_NAME, "")
        if "/" in name or ":" in name:  # a bare tag names no image
            named.append((name, Descriptor(desc.media_type, desc.digest, desc.size)))
    return named


def _docker_images(content: ContentStore, ns: str, files: dict[str, Descriptor],
                   manifest: list) -> list[tuple[str, Descriptor]]:
    """Writes a docker v2 manifest for each entry of docker's manifest.json."""
    named = []
    if not isinstance(manifest, list):
        raise errors.InvalidArgument("manifest.json is not a list")
    for entry in manifest:
        try:
            config = files[entry["Config"]]
            layers = [files[path] for path in entry["Layers"]]
        except (KeyError, TypeError) as e:
            raise errors.InvalidArgument(f"manifest.json names a file the archive lacks: {e}") from None
        body = _json({"schemaVersion": 2, "mediaType": mt.DOCKER_MANIFEST,
                      "config": to_json(Descriptor(mt.DOCKER_CONFIG, config.digest, config.size)),
                      "layers": [to_json(Descriptor(_docker_layer_type(content, ns, l), l.digest, l.size))
                                 for l in layers]})
        desc = _store(content, ns, io.BytesIO(body), len(body), "", "manifest")
        target = Descriptor(mt.DOCKER_MANIFEST, desc.digest, desc.size)
        for tag in entry.get("RepoTags") or []:
            named.append((str(parse_reference(tag)), target))
    return named


def _docker_layer_type(content: ContentStore, ns: str, layer: Descriptor) -> str:
    with content.open(ns, layer.digest) as f:
        return mt.DOCKER_LAYER_GZIP if f.read(2) == _GZIP_MAGIC else mt.DOCKER_LAYER


def _label_tree(content: ContentStore, ns: str, desc: Descriptor) -> None:
    """Sets the gc labels on the indexes and manifests present under desc."""
    if desc.media_type not in mt.INDEXES and desc.media_type not in mt.MANIFESTS:
        return
    kids = [k for k in children(desc, read_json(content, ns, desc)) if _present(content, ns, k)]
    for kid in kids:
        _label_tree(content, ns, kid)
    labels = gc_labels(desc, kids)
    content.update(ns, Info(desc.digest, 0, labels=labels), [f"labels.{k}" for k in labels])


def _present(content: ContentStore, ns: str, desc: Descriptor) -> bool:
    try:
        content.info(ns, desc.digest)
    except errors.NotFound:
        return False
    return True


# -- export ------------------------------------------------------------------

def _tree(content: ContentStore, ns: str, desc: Descriptor, platform: Platform | None, out: dict) -> None:
    """Collects desc and what it needs: of an index, the manifests present (or platform's)."""
    out[desc.digest] = desc
    if desc.media_type not in mt.INDEXES and desc.media_type not in mt.MANIFESTS:
        return
    obj = read_json(content, ns, desc)
    kids = children(desc, obj)
    if desc.media_type in mt.INDEXES:
        kids = [k for k, raw in zip(kids, obj["manifests"]) if _present(content, ns, k) and
                (platform is None or platform_matches(platform, raw.get("platform")))]
    for kid in kids:
        _tree(content, ns, kid, platform, out)


def _add_bytes(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    tf.addfile(info, io.BytesIO(data))


def _add_blob(tf: tarfile.TarFile, content: ContentStore, ns: str, name: str, desc: Descriptor) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = desc.size, 0o444
    try:
        with content.open(ns, desc.digest) as blob:
            tf.addfile(info, blob)
    except errors.NotFound:
        raise errors.NotFound(f"{desc.media_type} {desc.digest}: not in the content store") from None


def export_archive(backend: Backend, ns: str, out: BinaryIO, names: list[str], fmt: str,
                   platform: Platform | None) -> None:
    """Writes the images as an OCI layout ("oci") or docker save ("docker") tar."""
    content = backend.content
    images = [backend.images.get(ns, name) for name in names]
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        if fmt == "docker":
            entries = []
            for image in images:
                m = resolve_manifest(content, ns, image.target, platform or Platform("linux", "amd64"))
                config_name = m.config.digest.split(":")[1] + ".json"
                _add_blob(tf, content, ns, config_name, m.config)
                layer_names = []
                for layer in m.layers:
                    layer_names.append(layer.digest.split(":")[1] + "/layer.tar")
                    _add_blob(tf, content, ns, layer_names[-1], layer)
                entries.append({"Config": config_name, "RepoTags": [image.name], "Layers": layer_names})
            _add_bytes(tf, "manifest.json", _json(entries))
            return
        blobs: dict[str, Descriptor] = {}
        for image in images:
            _tree(content, ns, image.target, platform, blobs)
        _add_bytes(tf, "oci-layout", _json({"imageLayoutVersion": "1.0.0"}))
        for digest, desc in sorted(blobs.items()):
            _add_blob(tf, content, ns, "blobs/" + digest.replace(":", "/"), desc)
        manifests = []
        for image in images:
            ref = parse_reference(image.name) if "/" in image.name or ":" in image.name else None
            annotations = {IMAGE_NAME: image.name, **({REF_NAME: ref.tag} if ref and ref.tag else {})}
            manifests.append(to_json(Descriptor(image.target.media_type, image.target.digest, image.target.size,
                                                annotations)))
        _add_bytes(tf, "index.json", _json({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": manifests}))


def image_summary(content: ContentStore, ns: str, target: Descriptor) -> tuple[int, list[Platform]]:
    """Bytes of the image's content present, and the platforms it names (for listings)."""
    found: dict[str, Descriptor] = {}
    _tree(content, ns, target, None, found)
    size = sum(d.size for d in found.values() if _present(content, ns, d))
    platforms = []
    for desc in found.values():
        if desc.media_type in mt.CONFIGS:
            config = read_json(content, ns, desc)
            platforms.append(Platform(config.get("os", ""), config.get("architecture", ""), config.get("variant", "")))
    return size, sorted(set(platforms), key=format_platform)
