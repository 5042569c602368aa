"""Progress of a transfer, per object, for a display to show (or not)."""
from .. import mediatypes as mt
from ..types import Descriptor

# Statuses an object goes through; the display words them.
WAITING, EXISTS, DOWNLOADING, DOWNLOADED, EXTRACTING, UNPACKED = (
    "waiting", "exists", "downloading", "downloaded", "extracting", "unpacked")
UPLOADING, PUSHED, MOUNTED, ALREADY_PUSHED = "uploading", "pushed", "mounted", "already pushed"


class Progress:
    """Receives updates from several threads at once; this base ignores them."""

    def update(self, kind: str, desc: Descriptor, status: str, current: int = 0) -> None:
        """kind is index, manifest, config or layer; current counts bytes done."""


def kind_of(desc: Descriptor) -> str:
    if desc.media_type in mt.INDEXES:
        return "index"
    if desc.media_type in mt.MANIFESTS:
        return "manifest"
    if desc.media_type in mt.CONFIGS:
        return "config"
    return "layer"
