"""SQLite implementation of the container store, with containerd's validation and update rules."""
from __future__ import annotations

import base64
import json
import time

from .. import errors, identifiers, labels as labelutil
from ..api.containerd.events import container_pb2 as events
from ..containers import Container, ContainerStore
from ..errors import q
from ..events.exchange import Exchange
from ..filters import Filter, adaptor
from ..types import AnyValue
from .db import Database
from .store import NamespaceStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS containers (
    namespace TEXT NOT NULL, id TEXT NOT NULL, labels TEXT NOT NULL, image TEXT NOT NULL,
    runtime TEXT NOT NULL, runtime_options TEXT, spec TEXT, snapshotter TEXT NOT NULL, snapshot_key TEXT NOT NULL,
    extensions TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, PRIMARY KEY (namespace, id))
"""
_COLUMNS = ("id, labels, image, runtime, runtime_options, spec, snapshotter, snapshot_key, extensions, "
            "created_at, updated_at")
# Fields an update without a mask replaces, and the mask names containerd accepts for them.
_MUTABLE = {"labels": "labels", "spec": "spec", "extensions": "extensions", "image": "image",
            "snapshotkey": "snapshot_key"}  # labels: by labelutil.merge


def _any_to_json(value: AnyValue | None):
    return None if value is None else [value.type_url, base64.b64encode(value.value).decode()]


def _any_from_json(value) -> AnyValue | None:
    return None if value is None else AnyValue(value[0], base64.b64decode(value[1]))


def _validate(c: Container) -> Container:
    try:
        identifiers.validate(c.id)
    except errors.InvalidArgument as e:
        raise errors.InvalidArgument(f"container.ID: {e.args[0]}") from None
    if any(not k for k in c.extensions):
        raise errors.InvalidArgument("container.Extension keys must not be zero-length")
    try:
        c.labels = labelutil.clean(c.labels)
    except errors.InvalidArgument as e:
        raise errors.InvalidArgument(f"containers.Labels: {e.args[0]}") from None
    if not c.runtime:
        raise errors.InvalidArgument("must specify a runtime name")
    if c.spec is None:
        raise errors.InvalidArgument("must specify a spec")
    if c.snapshot_key and not c.snapshotter:
        raise errors.InvalidArgument("must set snapshotter when snapshot key is set")
    return c


class SQLiteContainerStore(ContainerStore):
    """Publishes /containers/create, update and delete: every change passes here."""

    def __init__(self, db: Database, namespaces: NamespaceStore, exchange: Exchange):
        self._db, self._namespaces, self._exchange = db, namespaces, exchange
        db.create_schema(SCHEMA)
        namespaces.register_resource("containers", self._in_use)

    def _in_use(self, ns):
        with self._db.transaction() as conn:
            return conn.execute("SELECT 1 FROM containers WHERE namespace=? LIMIT 1", (ns,)).fetchone() is not None

    @staticmethod
    def _from_row(row) -> Container:
        cid, labels, image, runtime, options, spec, snapshotter, key, extensions, created, updated = row
        return Container(cid, runtime, _any_from_json(json.loads(options)), _any_from_json(json.loads(spec)), image,
                         snapshotter, key, json.loads(labels),
                         {k: _any_from_json(v) for k, v in json.loads(extensions).items()}, created, updated)

    def _write(self, conn, ns: str, c: Container) -> None:
        conn.execute("INSERT OR REPLACE INTO containers VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                     (ns, c.id, json.dumps(c.labels), c.image, c.runtime, json.dumps(_any_to_json(c.runtime_options)),
                      json.dumps(_any_to_json(c.spec)), c.snapshotter, c.snapshot_key,
                      json.dumps({k: _any_to_json(v) for k, v in c.extensions.items()}), c.created_at, c.updated_at))

    def get(self, ns, container_id):
        with self._db.transaction() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM containers WHERE namespace=? AND id=?",
                               (ns, container_id)).fetchone()
        if not row:
            raise errors.NotFound(f"container {q(container_id)} in namespace {q(ns)}")
        return self._from_row(row)

    def list(self, ns, filters):
        selector = Filter(filters)
        with self._db.transaction() as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM containers WHERE namespace=? ORDER BY id", (ns,)).fetchall()
        found = [self._from_row(r) for r in rows]
        return [c for c in found if selector.match(adaptor(
            {k: v for k, v in {"id": c.id, "image": c.image, "runtime.name": c.runtime}.items() if v}, c.labels))]

    def create(self, ns, container):
        c = _validate(container)
        c.created_at = c.updated_at = time.time_ns()
        with self._db.transaction() as conn:
            self._namespaces.ensure(ns)
            if conn.execute("SELECT 1 FROM containers WHERE namespace=? AND id=?", (ns, c.id)).fetchone():
                raise errors.AlreadyExists(f"container {q(c.id)}")
            self._write(conn, ns, c)
        runtime = events.ContainerCreate.Runtime(name=c.runtime)
        if c.runtime_options is not None:
            runtime.options.type_url, runtime.options.value = c.runtime_options.type_url, c.runtime_options.value
        self._exchange.publish(ns, "/containers/create", events.ContainerCreate(id=c.id, image=c.image,
                                                                                runtime=runtime))
        return c

    def update(self, ns, container, paths):
        if not container.id:
            raise errors.InvalidArgument("must specify a container id")
        with self._db.transaction() as conn:
            updated = self.get(ns, container.id)
            if not paths:
                if container.runtime != updated.runtime:
                    raise errors.InvalidArgument("container.Runtime.Name field is immutable")
                if container.snapshotter != updated.snapshotter:
                    raise errors.InvalidArgument("container.Snapshotter field is immutable")
                paths = list(_MUTABLE)
            updated.labels, paths = labelutil.merge(updated.labels, container.labels, paths)
            for path in paths:
                if path.startswith("extensions."):
                    key = path[len("extensions."):]
                    if key in container.extensions:
                        updated.extensions[key] = container.extensions[key]
                    else:
                        updated.extensions.pop(key, None)
                elif path in _MUTABLE:
                    value = getattr(container, _MUTABLE[path])
                    setattr(updated, _MUTABLE[path], dict(value) if isinstance(value, dict) else value)
                else:
                    raise errors.InvalidArgument(f"cannot update {q(path)} field on {q(container.id)}")
            updated = _validate(updated)
            updated.updated_at = time.time_ns()
            self._write(conn, ns, updated)
        self._exchange.publish(ns, "/containers/update", events.ContainerUpdate(
            id=updated.id, image=updated.image, labels=updated.labels, snapshot_key=updated.snapshot_key))
        return updated

    def delete(self, ns, container_id):
        with self._db.transaction() as conn:
            if conn.execute("DELETE FROM containers WHERE namespace=? AND id=?", (ns, container_id)).rowcount == 0:
                raise errors.NotFound(f"cannot delete container {q(container_id)} in namespace {q(ns)}")
        self._exchange.publish(ns, "/containers/delete", events.ContainerDelete(id=container_id))
