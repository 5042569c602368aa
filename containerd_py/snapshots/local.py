"""What both local snapshotters share: records in SQLite, one directory per
snapshot id under `<root>/snapshots`, usage by walking that directory."""
import os
import shutil
from abc import abstractmethod

from .. import errors
from ..filters import Filter, adaptor
from ..types import Mount
from .snapshotter import Kind, Snapshotter, Usage
from .storage import MetaStore, Record


def disk_usage(path: str) -> Usage:
    """Blocks and inodes used under path, each hard-linked inode counted once."""
    seen = set()
    size = 0
    for dirpath, dirnames, filenames in os.walk(path):
        for name in [dirpath] + [os.path.join(dirpath, n) for n in dirnames + filenames]:
            st = os.lstat(name)
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                size += st.st_blocks * 512
    return Usage(size, len(seen))


class LocalSnapshotter(Snapshotter):
    def __init__(self, root: str):
        self.root = root
        self._snapshots = os.path.join(root, "snapshots")
        os.makedirs(self._snapshots, mode=0o700, exist_ok=True)
        self._meta = MetaStore(os.path.join(root, "metadata.db"))

    def _dir(self, snapshot_id: int) -> str:
        return os.path.join(self._snapshots, str(snapshot_id))

    @abstractmethod
    def _populate(self, record: Record) -> None:
        """Fills the new, empty directory of a snapshot."""

    @abstractmethod
    def _mounts(self, record: Record) -> list[Mount]: ...

    @abstractmethod
    def _files(self, snapshot_id: int) -> str:
        """The directory holding the snapshot's own files."""

    def in_use(self, ns: str) -> bool:
        with self._meta.db.transaction() as conn:
            return bool(self._meta.walk(conn, ns))

    def stat(self, ns, key):
        with self._meta.db.transaction() as conn:
            return self._meta.get(conn, ns, key).info

    def update(self, ns, info, paths):
        with self._meta.db.transaction() as conn:
            return self._meta.update(conn, ns, info, paths)

    def usage(self, ns, key):
        with self._meta.db.transaction() as conn:
            record = self._meta.get(conn, ns, key)
        if record.info.kind == Kind.ACTIVE:
            return disk_usage(self._files(record.id))
        return record.usage

    def mounts(self, ns, key):
        with self._meta.db.transaction() as conn:
            record = self._meta.get(conn, ns, key)
        if record.info.kind not in (Kind.ACTIVE, Kind.VIEW):
            raise errors.FailedPrecondition(f"requested snapshot {key} not active or view")
        return self._mounts(record)

    def prepare(self, ns, key, parent="", labels=None):
        return self._create(ns, key, parent, Kind.ACTIVE, labels or {})

    def view(self, ns, key, parent="", labels=None):
        return self._create(ns, key, parent, Kind.VIEW, labels or {})

    def _create(self, ns: str, key: str, parent: str, kind: Kind, labels: dict[str, str]) -> list[Mount]:
        with self._meta.db.transaction() as conn:
            record = self._meta.create(conn, ns, key, parent, kind, labels)
            path = self._dir(record.id)
            os.mkdir(path, 0o700)
            try:
                self._populate(record)
            except BaseException:
                shutil.rmtree(path, ignore_errors=True)
                raise
            return self._mounts(record)

    def commit(self, ns, name, key, labels=None):
        with self._meta.db.transaction() as conn:
            record = self._meta.get(conn, ns, key)
            if record.info.kind != Kind.ACTIVE:
                raise errors.FailedPrecondition(f"snapshot {key} is not active")
            self._meta.commit(conn, ns, key, name, labels or {}, disk_usage(self._files(record.id)))

    def remove(self, ns, key):
        with self._meta.db.transaction() as conn:
            record = self._meta.remove(conn, ns, key)
            # Renamed inside the transaction: a crash leaves an orphan that cleanup() removes.
            doomed = os.path.join(self._snapshots, f"rm-{record.id}")
            os.rename(self._dir(record.id), doomed)
        shutil.rmtree(doomed)

    def walk(self, ns, filters=()):
        selector = Filter(list(filters))
        with self._meta.db.transaction() as conn:
            infos = self._meta.walk(conn, ns)
        return [i for i in infos if selector.match(adaptor(
            {"name": i.name, "parent": i.parent, "kind": i.kind.name.lower()}, i.labels))]

    def cleanup(self):
        with self._meta.db.transaction() as conn:
            known = {str(i) for i in self._meta.ids(conn)}
        for name in os.listdir(self._snapshots):
            if name not in known:
                shutil.rmtree(os.path.join(self._snapshots, name))

    def close(self):
        self._meta.db.close()

