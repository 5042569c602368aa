#!/usr/bin/env python3
"""make-busybox-image.py OUT.tar [--name REF]

Writes a one-layer busybox image as an OCI image layout tarball (what `ctr
images export` writes and `ctr images import` reads), built from Debian's
busybox-static through make-busybox-bundle.sh's rootfs: there is no registry
to pull one from here. The same input gives the same bytes (fixed times and
owners), so every run of the tests or the demo imports the same image.
Standard library only.
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_NAME = "docker.io/library/busybox:latest"
MTIME = 1_600_000_000
ENV = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]


def _json(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _layer(rootfs: str) -> bytes:
    """The rootfs as a tar, sorted, with fixed times (owners as on disk)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for top, dirs, files in os.walk(rootfs):
            dirs.sort()
            for name in sorted(dirs + files):
                path = os.path.join(top, name)
                info = tf.gettarinfo(path, os.path.relpath(path, rootfs))
                info.mtime, info.uname, info.gname = MTIME, "", ""
                if info.isreg():
                    with open(path, "rb") as f:
                        tf.addfile(info, f)
                else:
                    tf.addfile(info)
    return buf.getvalue()


def build(out: str, name: str) -> None:
    with tempfile.TemporaryDirectory(prefix="busybox-image-") as tmp:
        subprocess.run(["bash", os.path.join(HERE, "make-busybox-bundle.sh"), tmp], check=True,
                       stdout=subprocess.DEVNULL)
        raw = _layer(os.path.join(tmp, "rootfs"))
    layer = gzip.compress(raw, mtime=0)
    config = _json({"architecture": "amd64", "os": "linux", "created": "2020-09-13T12:26:40Z",
                    "config": {"Env": ENV, "Cmd": ["sh"]},
                    "rootfs": {"type": "layers", "diff_ids": [_digest(raw)]}})
    manifest = _json({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                 "digest": _digest(config), "size": len(config)},
                      "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                  "digest": _digest(layer), "size": len(layer)}]})
    tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else "latest"
    index = _json({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                   "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                  "digest": _digest(manifest), "size": len(manifest),
                                  "annotations": {"io.containerd.image.name": name,
                                                  "org.opencontainers.image.ref.name": tag}}]})
    entries = [("oci-layout", _json({"imageLayoutVersion": "1.0.0"})), ("index.json", index)]
    entries += [(f"blobs/sha256/{_digest(b)[7:]}", b) for b in (config, manifest, layer)]
    with tarfile.open(out + ".tmp", "w") as tf:
        for path, data in entries:
            info = tarfile.TarInfo(path)
            info.size, info.mtime, info.mode = len(data), MTIME, 0o644
            tf.addfile(info, io.BytesIO(data))
    os.rename(out + ".tmp", out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[2])
    p.add_argument("out", help="the tarball to write")
    p.add_argument("--name", default=DEFAULT_NAME, help=f"the image's reference (default {DEFAULT_NAME})")
    args = p.parse_args()
    build(args.out, args.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
