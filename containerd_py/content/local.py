"""A content store keeping blobs as files under a root directory.

Blobs are shared by all namespaces (`blobs/sha256/<hex>`); which namespace
holds which blob, with its labels, is metadata in SQLite. A blob is written
into its ingest directory, fsynced, verified, then renamed into place, so a
blob file never exists half-written.
"""
from __future__ import annotations

import json
import os
import shutil
import threading
import time
from typing import BinaryIO

from .. import digest as digests
from .. import errors, labels as labelutil
from ..errors import q
from ..filters import Filter, adaptor
from ..metadata import leasing
from ..metadata.db import Database
from ..metadata.store import LeaseStore, NamespaceStore, Resource
from .heap import release_freed_memory
from .store import ContentStore, Info, Status, Writer

SCHEMA = """
CREATE TABLE IF NOT EXISTS content (
    namespace TEXT NOT NULL, digest TEXT NOT NULL, size INTEGER NOT NULL, labels TEXT NOT NULL,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, PRIMARY KEY (namespace, digest))
"""

_CHUNK = 1 << 20
_TRIM_AFTER = 4 << 20  # blobs at least this big give freed heap memory back on commit


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalContentStore(ContentStore):
    def __init__(self, root: str, db: Database, namespaces: NamespaceStore, leases: LeaseStore):
        self.root = root
        self._db = db
        self._namespaces = namespaces
        self._leases = leases
        self._blobs = os.path.join(root, "blobs", "sha256")
        self._ingests = os.path.join(root, "ingest")
        os.makedirs(self._blobs, exist_ok=True)
        os.makedirs(self._ingests, exist_ok=True)
        db.create_schema(SCHEMA)
        namespaces.register_resource("blobs", self._in_use)
        self._locked: set[tuple[str, str]] = set()
        self._locks_guard = threading.Lock()

    def _in_use(self, ns: str) -> bool:
        with self._db.transaction() as conn:
            return conn.execute("SELECT 1 FROM content WHERE namespace=? LIMIT 1", (ns,)).fetchone() is not None

    def blob_path(self, digest: str) -> str:
        return os.path.join(self._blobs, digests.hex_of(digest))

    def _ingest_dir(self, ns: str, ref: str) -> str:
        return os.path.join(self._ingests, digests.small_sha256(f"{ns}\0{ref}".encode()).hexdigest())

    # -- committed content -------------------------------------------------

    def _row(self, conn, ns: str, digest: str):
        return conn.execute("SELECT size, created_at, updated_at, labels FROM content WHERE namespace=? AND digest=?",
                            (ns, digest)).fetchone()

    def info(self, ns, digest):
        digests.validate(digest)
        with self._db.transaction() as conn:
            row = self._row(conn, ns, digest)
        if not row:
            raise errors.NotFound(f"content digest {digest}")
        return Info(digest, row[0], row[1], row[2], json.loads(row[3]))

    def update(self, ns, info, paths):
        with self._db.transaction() as conn:
            current = self.info(ns, info.digest)
            new_labels = labelutil.update(current.labels, info.labels, paths, f"content info {q(info.digest)}")
            now = time.time_ns()
            conn.execute("UPDATE content SET labels=?, updated_at=? WHERE namespace=? AND digest=?",
                         (json.dumps(new_labels), now, ns, info.digest))
        return Info(current.digest, current.size, current.created_at, now, new_labels)

    def list(self, ns, filters):
        selector = Filter(filters)
        with self._db.transaction() as conn:
            rows = conn.execute("SELECT digest, size, created_at, updated_at, labels FROM content"
                                " WHERE namespace=? ORDER BY digest", (ns,)).fetchall()
        infos = [Info(d, s, c, u, json.loads(l)) for d, s, c, u, l in rows]
        return [i for i in infos if selector.match(adaptor({"digest": i.digest, "size": str(i.size)}, i.labels))]

    def delete(self, ns, digest):
        digests.validate(digest)
        with self._db.transaction() as conn:
            if conn.execute("DELETE FROM content WHERE namespace=? AND digest=?", (ns, digest)).rowcount == 0:
                raise errors.NotFound(f"content digest {digest}")
            if not conn.execute("SELECT 1 FROM content WHERE digest=? LIMIT 1", (digest,)).fetchone():
                try:
                    os.unlink(self.blob_path(digest))
                except FileNotFoundError:
                    pass

    def open(self, ns, digest) -> BinaryIO:
        self.info(ns, digest)
        try:
            return open(self.blob_path(digest), "rb")
        except FileNotFoundError:
            raise errors.NotFound(f"content digest {digest}: blob missing from disk") from None

    # -- ingests -----------------------------------------------------------

    def _track(self, ns: str, resource: Resource) -> None:
        """Adds what the call creates to its lease (NotFound for an unknown lease)."""
        if lease := leasing.current():
            self._leases.add_resource(ns, lease, resource)

    def writer(self, ns, ref, total=0, expected=""):
        if not ref:
            raise errors.InvalidArgument("ref must not be empty")
        self._track(ns, Resource(ref, "ingests"))
        if expected:
            digests.validate(expected)
            with self._db.transaction() as conn:
                if self._row(conn, ns, expected):
                    raise errors.AlreadyExists(f"content {expected}")
        with self._locks_guard:
            if (ns, ref) in self._locked:
                raise errors.Unavailable(f"ref {ref} locked")
            self._locked.add((ns, ref))
        try:
            return _LocalWriter(self, ns, ref, self._ingest_dir(ns, ref), total, expected)
        except BaseException:
            self._unlock(ns, ref)
            raise

    def _unlock(self, ns: str, ref: str) -> None:
        with self._locks_guard:
            self._locked.discard((ns, ref))

    @staticmethod
    def _read_status(path: str) -> tuple[dict, Status]:
        with open(os.path.join(path, "meta.json")) as f:
            meta = json.load(f)
        st = os.stat(os.path.join(path, "data"))
        return meta, Status(meta["ref"], st.st_size, meta["total"], meta["expected"], meta["started_at"],
                            st.st_mtime_ns)

    def status(self, ns, ref):
        try:
            return self._read_status(self._ingest_dir(ns, ref))[1]
        except FileNotFoundError:
            raise errors.NotFound(f"ingest ref {q(ref)}") from None

    def list_statuses(self, ns, filters):
        selector = Filter(filters)
        result = []
        for name in sorted(os.listdir(self._ingests)):
            try:
                meta, status = self._read_status(os.path.join(self._ingests, name))
            except (FileNotFoundError, ValueError, KeyError):
                continue  # being created or aborted right now
            if meta["namespace"] == ns and selector.match(adaptor({"ref": status.ref})):
                result.append(status)
        return sorted(result, key=lambda s: s.ref)

    def abort(self, ns, ref):
        path = self._ingest_dir(ns, ref)
        if not os.path.isdir(path):
            raise errors.NotFound(f"ingest ref {q(ref)}")
        shutil.rmtree(path)

    def _commit(self, ns: str, data_path: str, digest: str, size: int, labels: dict[str, str]) -> None:
        """Moves a verified ingest file into place and records it in the namespace."""
        with self._db.transaction() as conn:
            if self._row(conn, ns, digest):
                raise errors.AlreadyExists(f"content {digest}")
            target = self.blob_path(digest)
            if not os.path.exists(target):
                os.chmod(data_path, 0o444)
                os.rename(data_path, target)
                _fsync_dir(self._blobs)
            self._namespaces.ensure(ns)
            now = time.time_ns()
            conn.execute("INSERT INTO content VALUES (?,?,?,?,?,?)", (ns, digest, size, json.dumps(labels), now, now))
            self._track(ns, Resource(digest, "content"))


class _LocalWriter(Writer):
    def __init__(self, store: LocalContentStore, ns: str, ref: str, path: str, total: int, expected: str):
        self._store, self._ns, self._ref, self._path = store, ns, ref, path
        self._data = os.path.join(path, "data")
        meta_path = os.path.join(path, "meta.json")
        if os.path.isdir(path):
            with open(meta_path) as f:
                self._meta = json.load(f)
        else:
            os.makedirs(path)
            self._meta = {"namespace": ns, "ref": ref, "total": 0, "expected": "", "started_at": time.time_ns()}
        if total > 0:
            self._meta["total"] = total
        if expected:
            self._meta["expected"] = expected
        tmp = meta_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self._meta, f)
        os.rename(tmp, meta_path)
        self._fd = os.open(self._data, os.O_RDWR | os.O_CREAT, 0o644)
        self._rehash(os.fstat(self._fd).st_size)

    def _rehash(self, size: int) -> None:
        """Resuming: digest state is rebuilt from what is already on disk."""
        from hashlib import sha256  # OpenSSL's (~4 MiB of libcrypto): loaded by the first blob written

        self._hash = sha256()
        os.lseek(self._fd, 0, os.SEEK_SET)
        left = size
        while left:
            chunk = os.read(self._fd, min(_CHUNK, left))
            if not chunk:
                break
            self._hash.update(chunk)
            left -= len(chunk)
        self._offset = size - left
        os.lseek(self._fd, self._offset, os.SEEK_SET)

    def status(self):
        return Status(self._ref, self._offset, self._meta["total"], self._meta["expected"], self._meta["started_at"],
                      os.fstat(self._fd).st_mtime_ns)

    def digest(self):
        return "sha256:" + self._hash.hexdigest()

    def write(self, data):
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        self._hash.update(data)
        self._offset += len(data)

    def truncate(self, size):
        os.ftruncate(self._fd, size)
        self._rehash(size)

    def commit(self, size, expected, labels):
        labels = labelutil.clean(labels)
        if not os.path.exists(self._data):
            raise errors.NotFound(f"ingest ref {q(self._ref)}: aborted")
        os.fsync(self._fd)
        if size > 0 and size != self._offset:
            raise errors.FailedPrecondition(f"unexpected commit size {self._offset}, expected {size}")
        actual = self.digest()
        if expected and expected != actual:
            raise errors.FailedPrecondition(f"unexpected commit digest {actual}, expected {expected}")
        try:
            self._store._commit(self._ns, self._data, actual, self._offset, labels)
        finally:
            shutil.rmtree(self._path, ignore_errors=True)
        if self._offset >= _TRIM_AFTER:
            release_freed_memory()  # the buffers that carried a big blob here
        return actual

    def close(self):
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            self._store._unlock(self._ns, self._ref)
