"""SQLite records of snapshots (key, kind, parent chain, labels, usage).

Both local snapshotters keep one such database in their root, as
containerd's do; the directories of a snapshot are named by its numeric id
so that committing (a rename of the key) moves no files.
"""
import json
import time
from dataclasses import dataclass, field

from .. import errors, labels as labelutil
from ..errors import q
from ..metadata.db import Database
from .snapshotter import Info, Kind, Usage

SCHEMA = """
CREATE TABLE IF NOT EXISTS snapshots (
    id INTEGER PRIMARY KEY AUTOINCREMENT, namespace TEXT NOT NULL, key TEXT NOT NULL,
    parent INTEGER REFERENCES snapshots(id), kind INTEGER NOT NULL, labels TEXT NOT NULL,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
    size INTEGER NOT NULL DEFAULT 0, inodes INTEGER NOT NULL DEFAULT 0,
    UNIQUE (namespace, key))
"""

_SELECT = """SELECT s.id, s.key, p.key, s.kind, s.labels, s.created_at, s.updated_at, s.size, s.inodes, s.parent
             FROM snapshots s LEFT JOIN snapshots p ON s.parent = p.id"""


@dataclass
class Record:
    id: int
    info: Info
    usage: Usage
    parent_ids: list[int] = field(default_factory=list)  # nearest parent first


class MetaStore:
    def __init__(self, path: str):
        self.db = Database(path)
        self.db.create_schema(SCHEMA)

    def _record(self, conn, row) -> Record:
        sid, key, parent_key, kind, labels, created, updated, size, inodes, parent = row
        parents = []
        while parent is not None:
            parents.append(parent)
            parent = conn.execute("SELECT parent FROM snapshots WHERE id=?", (parent,)).fetchone()[0]
        return Record(sid, Info(key, parent_key or "", Kind(kind), created, updated, json.loads(labels)),
                      Usage(size, inodes), parents)

    def get(self, conn, ns: str, key: str) -> Record:
        row = conn.execute(_SELECT + " WHERE s.namespace=? AND s.key=?", (ns, key)).fetchone()
        if not row:
            raise errors.NotFound(f"snapshot {key} does not exist")
        return self._record(conn, row)

    def create(self, conn, ns: str, key: str, parent: str, kind: Kind, labels: dict[str, str]) -> Record:
        if not key:
            raise errors.InvalidArgument("snapshot key must not be empty")
        labels = labelutil.clean(labels)
        if conn.execute("SELECT 1 FROM snapshots WHERE namespace=? AND key=?", (ns, key)).fetchone():
            raise errors.AlreadyExists(f"snapshot {key}")
        parent_id = None
        if parent:
            row = conn.execute("SELECT id, kind FROM snapshots WHERE namespace=? AND key=?", (ns, parent)).fetchone()
            if not row:
                raise errors.NotFound(f"parent snapshot {parent} does not exist")
            if row[1] != Kind.COMMITTED:
                raise errors.InvalidArgument(f"parent {q(parent)} is not committed snapshot")
            parent_id = row[0]
        now = time.time_ns()
        conn.execute("INSERT INTO snapshots (namespace, key, parent, kind, labels, created_at, updated_at)"
                     " VALUES (?,?,?,?,?,?,?)", (ns, key, parent_id, int(kind), json.dumps(labels), now, now))
        return self.get(conn, ns, key)

    def commit(self, conn, ns: str, key: str, name: str, labels: dict[str, str], usage: Usage) -> None:
        labels = labelutil.clean(labels)
        if not name:
            raise errors.InvalidArgument("snapshot name must not be empty")
        if conn.execute("SELECT 1 FROM snapshots WHERE namespace=? AND key=?", (ns, name)).fetchone():
            raise errors.AlreadyExists(f"snapshot {name}")
        now = time.time_ns()
        conn.execute("UPDATE snapshots SET key=?, kind=?, labels=?, created_at=?, updated_at=?, size=?, inodes=?"
                     " WHERE namespace=? AND key=?",
                     (name, int(Kind.COMMITTED), json.dumps(labels), now, now, usage.size, usage.inodes, ns, key))

    def remove(self, conn, ns: str, key: str) -> Record:
        record = self.get(conn, ns, key)
        if conn.execute("SELECT 1 FROM snapshots WHERE parent=? LIMIT 1", (record.id,)).fetchone():
            raise errors.FailedPrecondition(f"cannot remove snapshot {key} with child")
        conn.execute("DELETE FROM snapshots WHERE id=?", (record.id,))
        return record

    def update(self, conn, ns: str, info: Info, paths: list[str]) -> Info:
        current = self.get(conn, ns, info.name).info
        new_labels = labelutil.update(current.labels, info.labels, paths, f"snapshot {q(info.name)}")
        now = time.time_ns()
        conn.execute("UPDATE snapshots SET labels=?, updated_at=? WHERE namespace=? AND key=?",
                     (json.dumps(new_labels), now, ns, info.name))
        return Info(current.name, current.parent, current.kind, current.created_at, now, new_labels)

    def walk(self, conn, ns: str) -> list[Info]:
        rows = conn.execute(_SELECT + " WHERE s.namespace=? ORDER BY s.key", (ns,)).fetchall()
        return [self._record(conn, row).info for row in rows]

    def ids(self, conn) -> set[int]:
        return {row[0] for row in conn.execute("SELECT id FROM snapshots")}
