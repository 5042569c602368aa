"""The `walking` differ: applies layer blobs from the content store onto mounts."""
from .. import errors
from ..content.heap import release_freed_memory
from ..content.store import ContentStore
from ..mount import temp_mount
from ..types import Descriptor, Mount
from .applier import Applier
from .layer import apply_layer

MEDIA_TYPE_LAYER = "application/vnd.oci.image.layer.v1.tar"

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


def overlay_dirs(mount: Mount) -> tuple[str, list[str]]:
    """The upper and lower directories of an overlay mount, which layers are written into directly."""
    options = dict(o.split("=", 1) for o in mount.options if "=" in o)
    if "upperdir" not in options:
        raise errors.InvalidArgument("overlay mount has no upperdir to apply a layer to")
    return options["upperdir"], options.get("lowerdir", "").split(":") if options.get("lowerdir") else []
