"""SQLite implementations of the metadata stores (one shared Database)."""
from __future__ import annotations

import json
import time
from collections.abc import Callable

from .. import digest as digests
from .. import errors, identifiers, labels as labelutil
from ..api.containerd.events import image_pb2 as events
from ..errors import q
from ..events.exchange import Exchange
from ..filters import Filter, adaptor
from ..types import Descriptor
from .db import Database
from .store import Image, ImageStore, Lease, LeaseStore, Namespace, NamespaceStore, Resource

SCHEMA = """
CREATE TABLE IF NOT EXISTS namespaces (
    name TEXT PRIMARY KEY, labels TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS images (
    namespace TEXT NOT NULL, name TEXT NOT NULL, labels TEXT NOT NULL,
    media_type TEXT NOT NULL, digest TEXT NOT NULL, size INTEGER NOT NULL, annotations TEXT NOT NULL,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, PRIMARY KEY (namespace, name));
CREATE TABLE IF NOT EXISTS leases (
    namespace TEXT NOT NULL, id TEXT NOT NULL, labels TEXT NOT NULL, created_at INTEGER NOT NULL,
    PRIMARY KEY (namespace, id));
CREATE TABLE IF NOT EXISTS lease_resources (
    namespace TEXT NOT NULL, lease TEXT NOT NULL, type TEXT NOT NULL, id TEXT NOT NULL,
    PRIMARY KEY (namespace, lease, type, id))
"""


class SQLiteNamespaceStore(NamespaceStore):
    def __init__(self, db: Database):
        self._db = db
        db.create_schema(SCHEMA)
        self._resources: list[tuple[str, Callable[[str], bool]]] = []

    def register_resource(self, kind, in_use):
        self._resources.append((kind, in_use))

    def create(self, name, labels):
        identifiers.validate(name)
        labels = labelutil.clean(labels)
        with self._db.transaction() as conn:
            if conn.execute("SELECT 1 FROM namespaces WHERE name=?", (name,)).fetchone():
                raise errors.AlreadyExists(f"namespace {q(name)}")
            conn.execute("INSERT INTO namespaces VALUES (?,?,?)", (name, json.dumps(labels), time.time_ns()))
        return Namespace(name, labels)

    def ensure(self, name):
        identifiers.validate(name)
        with self._db.transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO namespaces VALUES (?,?,?)", (name, "{}", time.time_ns()))

    def get(self, name):
        with self._db.transaction() as conn:
            row = conn.execute("SELECT labels FROM namespaces WHERE name=?", (name,)).fetchone()
        if not row:
            raise errors.NotFound(f"namespace {q(name)}")
        return Namespace(name, json.loads(row[0]))

    def list(self):
        with self._db.transaction() as conn:
            rows = conn.execute("SELECT name, labels FROM namespaces ORDER BY name").fetchall()
        return [Namespace(n, json.loads(l)) for n, l in rows]

    def update(self, namespace, paths):
        with self._db.transaction() as conn:
            current = self.get(namespace.name)
            new_labels = labelutil.update(current.labels, namespace.labels, paths, f"namespace {q(namespace.name)}")
            conn.execute("UPDATE namespaces SET labels=? WHERE name=?", (json.dumps(new_labels), namespace.name))
        return Namespace(namespace.name, new_labels)

    def delete(self, name):
        with self._db.transaction() as conn:
            self.get(name)
            used = [kind for kind, in_use in self._resources if in_use(name)]
            if used:
                raise errors.FailedPrecondition(f"namespace {q(name)} must be empty, but it still has {', '.join(used)}")
            conn.execute("DELETE FROM namespaces WHERE name=?", (name,))


class SQLiteImageStore(ImageStore):
    """Publishes /images/create, update and delete: every change, in-process (a pull
    by the daemon itself) or through the images service, passes here."""

    def __init__(self, db: Database, namespaces: NamespaceStore, exchange: Exchange):
        self._db = db
        self._namespaces = namespaces
        self._exchange = exchange
        db.create_schema(SCHEMA)
        namespaces.register_resource("images", self._in_use)

    def _in_use(self, ns):
        with self._db.transaction() as conn:
            return conn.execute("SELECT 1 FROM images WHERE namespace=? LIMIT 1", (ns,)).fetchone() is not None

    @staticmethod
    def _row_to_image(row) -> Image:
        name, labels, media_type, dgst, size, annotations, created, updated = row
        return Image(name, Descriptor(media_type, dgst, size, json.loads(annotations)), json.loads(labels), created, updated)

    _COLUMNS = "name, labels, media_type, digest, size, annotations, created_at, updated_at"

    @staticmethod
    def _validate(image: Image) -> Image:
        if not image.name:
            raise errors.InvalidArgument("image name must not be empty")
        labels = labelutil.clean(image.labels)
        target = image.target
        try:
            digests.validate(target.digest)
        except errors.InvalidArgument as e:
            raise errors.InvalidArgument(f"Target.Digest {q(target.digest)} invalid: {e.args[0]}") from None
        if target.size <= 0:
            raise errors.InvalidArgument("Target.Size must be greater than zero")
        if not target.media_type:
            raise errors.InvalidArgument("Target.MediaType must be set")
        return Image(image.name, target, labels, image.created_at, image.updated_at)

    def get(self, ns, name):
        with self._db.transaction() as conn:
            row = conn.execute(f"SELECT {self._COLUMNS} FROM images WHERE namespace=? AND name=?", (ns, name)).fetchone()
        if not row:
            raise errors.NotFound(f"image {q(name)}")
        return self._row_to_image(row)

    def list(self, ns, filters):
        selector = Filter(filters)
        with self._db.transaction() as conn:
            rows = conn.execute(f"SELECT {self._COLUMNS} FROM images WHERE namespace=? ORDER BY name", (ns,)).fetchall()
        images = [self._row_to_image(r) for r in rows]
        return [i for i in images if selector.match(adaptor(
            {"name": i.name, "target.digest": i.target.digest, "target.mediatype": i.target.media_type},
            i.labels))]

    def create(self, ns, image):
        image = self._validate(image)
        now = time.time_ns()
        with self._db.transaction() as conn:
            self._namespaces.ensure(ns)
            if conn.execute("SELECT 1 FROM images WHERE namespace=? AND name=?", (ns, image.name)).fetchone():
                raise errors.AlreadyExists(f"image {q(image.name)}")
            t = image.target
            conn.execute("INSERT INTO images VALUES (?,?,?,?,?,?,?,?,?)",
                         (ns, image.name, json.dumps(image.labels), t.media_type, t.digest, t.size,
                          json.dumps(t.annotations), now, now))
        self._exchange.publish(ns, "/images/create", events.ImageCreate(name=image.name, labels=image.labels))
        return Image(image.name, t, image.labels, now, now)

    def update(self, ns, image, paths):
        if not image.name:
            raise errors.InvalidArgument("image name must not be empty")
        with self._db.transaction() as conn:
            current = self.get(ns, image.name)
            updated = Image(current.name, current.target, current.labels, current.created_at)
            if paths:
                updated.labels, rest = labelutil.merge(current.labels, image.labels, paths)
                for path in rest:
                    if path == "target":
                        updated.target = image.target
                    elif path == "annotations":
                        updated.target = Descriptor(updated.target.media_type, updated.target.digest,
                                                    updated.target.size, dict(image.target.annotations))
                    elif path.startswith("annotations."):
                        key = path[len("annotations."):]
                        annotations = dict(updated.target.annotations)
                        if image.target.annotations.get(key):
                            annotations[key] = image.target.annotations[key]
                        else:
                            annotations.pop(key, None)
                        updated.target = Descriptor(updated.target.media_type, updated.target.digest,
                                                    updated.target.size, annotations)
                    else:
                        raise errors.InvalidArgument(f"cannot update {q(path)} field on image {q(image.name)}")
            else:
                updated.labels, updated.target = image.labels, image.target
            updated = self._validate(updated)
            updated.updated_at = time.time_ns()
            t = updated.target
            conn.execute("UPDATE images SET labels=?, media_type=?, digest=?, size=?, annotations=?, updated_at=?"
                         " WHERE namespace=? AND name=?",
                         (json.dumps(updated.labels), t.media_type, t.digest, t.size, json.dumps(t.annotations),
                          updated.updated_at, ns, image.name))
        self._exchange.publish(ns, "/images/update", events.ImageUpdate(name=updated.name, labels=updated.labels))
        return updated

    def delete(self, ns, name):
        with self._db.transaction() as conn:
            if conn.execute("DELETE FROM images WHERE namespace=? AND name=?", (ns, name)).rowcount == 0:
                raise errors.NotFound(f"image {q(name)}")
        self._exchange.publish(ns, "/images/delete", events.ImageDelete(name=name))


class SQLiteLeaseStore(LeaseStore):
    def __init__(self, db: Database, namespaces: NamespaceStore):
        self._db = db
        self._namespaces = namespaces
        db.create_schema(SCHEMA)
        namespaces.register_resource("leases", self._in_use)

    def _in_use(self, ns):
        with self._db.transaction() as conn:
            return conn.execute("SELECT 1 FROM leases WHERE namespace=? LIMIT 1", (ns,)).fetchone() is not None

    def _require(self, conn, ns, lease_id):
        if not conn.execute("SELECT 1 FROM leases WHERE namespace=? AND id=?", (ns, lease_id)).fetchone():
            raise errors.NotFound(f"lease {q(lease_id)}")

    def create(self, ns, lease_id, labels):
        # Not an identifier: clients make lease ids with base64 (`-`, `_` anywhere).
        if not lease_id:
            raise errors.InvalidArgument("lease id must be provided")
        labels = labelutil.clean(labels)
        now = time.time_ns()
        with self._db.transaction() as conn:
            self._namespaces.ensure(ns)
            if conn.execute("SELECT 1 FROM leases WHERE namespace=? AND id=?", (ns, lease_id)).fetchone():
                raise errors.AlreadyExists(f"lease {q(lease_id)}")
            conn.execute("INSERT INTO leases VALUES (?,?,?,?)", (ns, lease_id, json.dumps(labels), now))
        return Lease(lease_id, labels, now)

    def delete(self, ns, lease_id):
        with self._db.transaction() as conn:
            self._require(conn, ns, lease_id)
            conn.execute("DELETE FROM lease_resources WHERE namespace=? AND lease=?", (ns, lease_id))
            conn.execute("DELETE FROM leases WHERE namespace=? AND id=?", (ns, lease_id))

    def list(self, ns, filters):
        selector = Filter(filters)
        with self._db.transaction() as conn:
            rows = conn.execute("SELECT id, labels, created_at FROM leases WHERE namespace=? ORDER BY id",
                                (ns,)).fetchall()
        leases = [Lease(i, json.loads(l), c) for i, l, c in rows]
        return [l for l in leases if selector.match(adaptor({"id": l.id}, l.labels))]

    @staticmethod
    def _validate_resource(resource: Resource) -> None:
        if resource.type == "content":
            digests.validate(resource.id)
        elif resource.type == "ingests" or resource.type.startswith("snapshots/"):
            if not resource.id:
                raise errors.InvalidArgument("resource id must not be empty")
        else:
            raise errors.InvalidArgument(f"unsupported resource type {q(resource.type)}")

    def add_resource(self, ns, lease_id, resource):
        self._validate_resource(resource)
        with self._db.transaction() as conn:
            self._require(conn, ns, lease_id)
            conn.execute("INSERT OR IGNORE INTO lease_resources VALUES (?,?,?,?)",
                         (ns, lease_id, resource.type, resource.id))

    def delete_resource(self, ns, lease_id, resource):
        self._validate_resource(resource)
        with self._db.transaction() as conn:
            self._require(conn, ns, lease_id)
            conn.execute("DELETE FROM lease_resources WHERE namespace=? AND lease=? AND type=? AND id=?",
                         (ns, lease_id, resource.type, resource.id))

    def list_resources(self, ns, lease_id):
        with self._db.transaction() as conn:
            self._require(conn, ns, lease_id)
            rows = conn.execute("SELECT id, type FROM lease_resources WHERE namespace=? AND lease=? ORDER BY type, id",
                                (ns, lease_id)).fetchall()
        return [Resource(i, t) for i, t in rows]
