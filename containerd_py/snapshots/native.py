"""The `native` snapshotter: each snapshot is a full copy of its parent.

Works on any filesystem; costs a copy per snapshot. Mounts are bind mounts.
"""
import os
import subprocess

from .. import errors
from ..types import Mount
from .local import LocalSnapshotter
from .snapshotter import Kind
from .storage import Record


class NativeSnapshotter(LocalSnapshotter):
    name = "native"

    def _files(self, snapshot_id):
        return self._dir(snapshot_id)

    def _populate(self, record: Record) -> None:
        path = self._dir(record.id)
        if not record.parent_ids:
            os.chmod(path, 0o755)
            return
        # cp -a keeps owners, modes, times, xattrs, hard links and device nodes.
        parent = self._dir(record.parent_ids[0])
        result = subprocess.run(["cp", "-a", "--reflink=auto", f"{parent}/.", path],
                                stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if result.returncode != 0:
            raise errors.FailedPrecondition(f"copying parent snapshot: {result.stderr.strip()}")

    def _mounts(self, record: Record) -> list[Mount]:
        return [Mount("bind", self._dir(record.id), ["rbind", "ro" if record.info.kind == Kind.VIEW else "rw"])]
