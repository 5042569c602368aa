"""The `walking` differ: applies layer blobs from the content store onto
mounts, and compares two mounted trees into a new layer blob."""
import gzip
import os
from contextlib import closing

from .. import errors
from ..content.heap import release_freed_memory
from ..content.store import ContentStore
from ..mount import readonly, temp_mount
from ..types import Descriptor, Mount
from .applier import Applier
from .changes import changes, overlay_changes, overlay_features_off, write_layer
from .layer import apply_layer

MEDIA_TYPE_LAYER = "application/vnd.oci.image.layer.v1.tar"
MEDIA_TYPE_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
UNCOMPRESSED_LABEL = "containerd.io/uncompressed"
_GZIP_TYPES = frozenset({MEDIA_TYPE_LAYER_GZIP, "application/vnd.docker.image.rootfs.diff.tar.gzip"})
_PLAIN_TYPES = frozenset({MEDIA_TYPE_LAYER, "application/vnd.docker.image.rootfs.diff.tar"})

# Compression is detected from the bytes; the media type only has to be a layer.
LAYER_MEDIA_TYPES = frozenset({
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
})


class WalkingDiffer(Applier):
    def __init__(self, content: ContentStore, mount_dir: str):
        self._content = content
        self._mount_dir = mount_dir

    def apply(self, ns: str, desc: Descriptor, mounts: list[Mount]) -> Descriptor:
        if desc.media_type not in LAYER_MEDIA_TYPES:
            raise errors.Unimplemented(f"unsupported diff media type: {desc.media_type}")
        if not mounts:
            raise errors.InvalidArgument("no mounts to apply the layer to")
        try:
            with self._content.open(ns, desc.digest) as blob:
                if len(mounts) == 1 and mounts[0].type == "overlay":
                    upper, lowers = overlay_dirs(mounts[0])
                    digest, size = apply_layer(upper, blob, lowers)
                else:
                    with temp_mount(mounts, self._mount_dir) as root:
                        digest, size = apply_layer(root, blob)
        finally:
            release_freed_memory()  # decompression and tar buffers
        return Descriptor(MEDIA_TYPE_LAYER, digest, size)

    def compare(self, ns: str, lower: list[Mount], upper: list[Mount], media_type: str = "", ref: str = "",
                labels: dict[str, str] | None = None) -> Descriptor:
        """The changes from lower to upper as a layer blob in the content store
        (gzip unless an uncompressed type is asked for), labelled with its diff
        ID; both sets are mounted read-only, so a running container's can be."""
        media_type = media_type or MEDIA_TYPE_LAYER_GZIP
        if media_type not in _GZIP_TYPES | _PLAIN_TYPES:
            raise errors.Unimplemented(f"unsupported diff media type: {media_type}")
        ref = ref or f"diff-{os.urandom(16).hex()}"  # not secrets: its hmac maps libcrypto
        upper_dir = _upper_over(upper, lower)
        with temp_mount(readonly(lower), self._mount_dir) as old, \
                temp_mount(readonly(upper), self._mount_dir) as new:
            found = overlay_changes(upper_dir, old) if upper_dir else changes(new, old)
            with closing(self._content.writer(ns, ref)) as writer:
                if writer.status().offset:
                    writer.truncate(0)
                sink = _LayerSink(writer, media_type in _GZIP_TYPES)
                write_layer(new, found, sink)
                sink.close()
                labels = {**(labels or {}), UNCOMPRESSED_LABEL: "sha256:" + sink.diff_id.hexdigest()}
                try:
                    digest = writer.commit(sink.size, "", labels)
                except errors.AlreadyExists:
                    digest = writer.digest()
        return Descriptor(media_type, digest, sink.size)


class _Counted:
    """The content writer as a file, counting what it is given."""

    def __init__(self, writer):
        self._writer, self.size = writer, 0

    def write(self, data) -> int:
        self._writer.write(bytes(data))
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        pass


class _LayerSink:
    """Where the layer's tar goes: hashed as it is (the diff ID), then
    compressed or not on its way to the content writer."""

    def __init__(self, writer, compress: bool):
        self._out = _Counted(writer)
        from hashlib import sha256  # OpenSSL's: loaded by the first layer made

        self.diff_id = sha256()
        self._target = gzip.GzipFile(fileobj=self._out, mode="wb", mtime=0) if compress else self._out

    @property
    def size(self) -> int:
        return self._out.size

    def write(self, data) -> int:
        self.diff_id.update(data)
        return self._target.write(data)

    def close(self) -> None:
        if self._target is not self._out:
            self._target.close()


def _upper_over(upper: list[Mount], lower: list[Mount]) -> str:
    """The upper directory of an overlay whose lower layers are exactly the
    lower tree's (a container's or a snapshot's over its parent): its changes
    are that directory's entries; "" when the trees must be walked side by side."""
    if len(upper) != 1 or upper[0].type != "overlay" or len(lower) != 1:
        return ""
    options = dict(o.split("=", 1) for o in upper[0].options if "=" in o)
    lower_options = dict(o.split("=", 1) for o in lower[0].options if "=" in o)
    if lower[0].type == "overlay":
        lower_dirs = lower_options.get("lowerdir", "")
    elif lower[0].type == "bind" and "upperdir" not in lower_options:
        lower_dirs = lower[0].source
    else:
        return ""
    if "upperdir" not in options or "upperdir" in lower_options or options.get("lowerdir") != lower_dirs \
            or not overlay_features_off(upper[0].options):
        return ""
    return options["upperdir"]


def overlay_dirs(mount: Mount) -> tuple[str, list[str]]:
    """The upper and lower directories of an overlay mount, which layers are written into directly."""
    options = dict(o.split("=", 1) for o in mount.options if "=" in o)
    if "upperdir" not in options:
        raise errors.InvalidArgument("overlay mount has no upperdir to apply a layer to")
    return options["upperdir"], options.get("lowerdir", "").split(":") if options.get("lowerdir") else []
