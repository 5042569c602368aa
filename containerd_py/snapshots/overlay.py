"""The `overlayfs` snapshotter: each snapshot is an overlay upper directory.

Mounts mirror containerd's: a bind mount while there is nothing to stack
(no parent, or a view of a single parent), an overlay mount otherwise.
"""
import os
import tempfile

from .. import mount as mountlib
from ..types import Mount
from .local import LocalSnapshotter
from .snapshotter import Kind
from .storage import Record


def supported(root: str) -> None:
    """Raises OSError unless overlayfs can be mounted with upper and work dirs on root's filesystem."""
    os.makedirs(root, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="overlay-check-", dir=root) as td:
        for d in ("lower", "upper", "work", "merged"):
            os.mkdir(os.path.join(td, d))
        options = [f"lowerdir={td}/lower", f"upperdir={td}/upper", f"workdir={td}/work"]
        merged = os.path.join(td, "merged")
        mountlib.mount(Mount("overlay", "overlay", options), merged)
        mountlib.unmount(merged)


class OverlaySnapshotter(LocalSnapshotter):
    name = "overlayfs"

    def __init__(self, root: str):
        super().__init__(root)
        # index=off lets an upper dir be reused under other lowers, as containerd does.
        self._options = ["index=off"] if os.path.exists("/sys/module/overlay/parameters/index") else []

    def _files(self, snapshot_id):
        return os.path.join(self._dir(snapshot_id), "fs")

    def _populate(self, record: Record) -> None:
        fs = self._files(record.id)
        os.mkdir(fs, 0o755)
        if record.info.kind == Kind.ACTIVE:
            os.mkdir(os.path.join(self._dir(record.id), "work"), 0o711)
        if record.parent_ids:
            # The container's root directory takes its owner from the layer below.
            st = os.stat(self._files(record.parent_ids[0]))
            os.lchown(fs, st.st_uid, st.st_gid)

    def _mounts(self, record: Record) -> list[Mount]:
        parents = record.parent_ids
        view = record.info.kind == Kind.VIEW
        if not parents:
            return [Mount("bind", self._files(record.id), ["ro" if view else "rw", "rbind"])]
        if view and len(parents) == 1:
            return [Mount("bind", self._files(parents[0]), ["ro", "rbind"])]
        options = [] if view else [f"workdir={os.path.join(self._dir(record.id), 'work')}",
                                   f"upperdir={self._files(record.id)}"]
        options.append("lowerdir=" + ":".join(self._files(p) for p in parents))
        return [Mount("overlay", "overlay", self._options + options)]
