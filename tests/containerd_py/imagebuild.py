"""Builds small image layers and OCI / docker archives for tests, deterministically."""
import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field

import zstandard

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
MTIME = 1_600_000_000


@dataclass
class Entry:
    """One tar entry; type is a tarfile type constant."""

    name: str
    type: bytes = tarfile.REGTYPE
    data: bytes = b""
    mode: int = 0o644
    linkname: str = ""
    uid: int = 0
    gid: int = 0
    devmajor: int = 0
    devminor: int = 0
    mtime: int = MTIME
    pax: dict = field(default_factory=dict)


def dir_(name, mode=0o755, **kw):
    return Entry(name, tarfile.DIRTYPE, mode=mode, **kw)


def file_(name, data=b"", mode=0o644, **kw):
    return Entry(name, tarfile.REGTYPE, data, mode, **kw)


def symlink(name, target, **kw):
    return Entry(name, tarfile.SYMTYPE, mode=0o777, linkname=target, **kw)


def hardlink(name, target, **kw):
    return Entry(name, tarfile.LNKTYPE, linkname=target, **kw)


def layer_tar(entries: list[Entry]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.type, info.mode, info.uid, info.gid, info.mtime = e.type, e.mode, e.uid, e.gid, e.mtime
            info.linkname, info.devmajor, info.devminor = e.linkname, e.devmajor, e.devminor
            info.pax_headers = dict(e.pax)
            if e.type == tarfile.REGTYPE:
                info.size = len(e.data)
                tf.addfile(info, io.BytesIO(e.data))
            else:
                tf.addfile(info)
    return buf.getvalue()


def compress(data: bytes, compression: str) -> bytes:
    if compression == "gzip":
        return gzip.compress(data, mtime=0)
    if compression == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    return data


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Image:
    """An image's blobs, by digest, and the descriptors that tie them together."""

    blobs: dict[str, bytes]
    manifest: dict  # descriptor of the manifest
    config_digest: str
    layer_digests: list[str]
    diff_ids: list[str]


def _json(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def build_image(layers: list[list[Entry]], compression: str = "gzip", arch: str = "amd64") -> Image:
    blobs, layer_descs, diff_ids = {}, [], []
    suffix = {"gzip": "+gzip", "zstd": "+zstd", "none": ""}[compression]
    for entries in layers:
        raw = layer_tar(entries)
        blob = compress(raw, compression)
        blobs[digest(blob)] = blob
        diff_ids.append(digest(raw))
        layer_descs.append({"mediaType": OCI_LAYER + suffix, "digest": digest(blob), "size": len(blob)})
    config = _json({"architecture": arch, "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                    "rootfs": {"type": "layers", "diff_ids": diff_ids}})
    blobs[digest(config)] = config
    manifest = _json({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                      "config": {"mediaType": OCI_CONFIG, "digest": digest(config), "size": len(config)},
                      "layers": layer_descs})
    blobs[digest(manifest)] = manifest
    return Image(blobs, {"mediaType": OCI_MANIFEST, "digest": digest(manifest), "size": len(manifest)},
                 digest(config), [d["digest"] for d in layer_descs], diff_ids)


def _add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), MTIME, 0o644
    tf.addfile(info, io.BytesIO(data))


def oci_archive(image: Image, name: str) -> bytes:
    """An OCI image layout tarball, as `ctr images export` writes it."""
    tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else "latest"
    manifest = dict(image.manifest, annotations={"io.containerd.image.name": name,
                                                 "org.opencontainers.image.ref.name": tag})
    index = _json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [manifest]})
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        _add(tf, "oci-layout", _json({"imageLayoutVersion": "1.0.0"}))
        _add(tf, "index.json", index)
        for d, blob in sorted(image.blobs.items()):
            _add(tf, f"blobs/sha256/{d.split(':')[1]}", blob)
    return buf.getvalue()


def docker_archive(image: Image, name: str) -> bytes:
    """A `docker save` tarball (manifest.json, <config>.json, <id>/layer.tar)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        config_name = image.config_digest.split(":")[1] + ".json"
        _add(tf, config_name, image.blobs[image.config_digest])
        layer_names = []
        for d in image.layer_digests:
            layer_name = f"{d.split(':')[1]}/layer.tar"
            _add(tf, layer_name, image.blobs[d])
            layer_names.append(layer_name)
        _add(tf, "manifest.json", _json([{"Config": config_name, "RepoTags": [name], "Layers": layer_names}]))
    return buf.getvalue()
