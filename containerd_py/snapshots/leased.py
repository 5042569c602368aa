"""A snapshotter that adds the snapshots a call creates to the call's lease,
and publishes /snapshot/prepare and /snapshot/commit for every caller (the
snapshots service, the daemon's own unpacking).

Creation and recording happen inside one metadata transaction, which the
garbage collector also runs in: it never sees a new snapshot unleased.
Removals publish in the snapshots service: the collector's publish nothing,
as containerd's don't.
"""
from ..api.containerd.events import snapshot_pb2 as events
from ..events.exchange import Exchange
from ..metadata import leasing
from ..metadata.db import Database
from ..metadata.store import LeaseStore, Resource
from .snapshotter import Snapshotter


class LeasedSnapshotter(Snapshotter):
    def __init__(self, inner: Snapshotter, db: Database, leases: LeaseStore, exchange: Exchange):
        self.inner, self.name, self.root = inner, inner.name, inner.root
        self._db, self._leases, self._exchange = db, leases, exchange

    def _creating(self, ns: str, key: str, create):
        with self._db.transaction():
            if lease := leasing.current():
                self._leases.add_resource(ns, lease, Resource(key, f"snapshots/{self.name}"))
            return create()

    def prepare(self, ns, key, parent="", labels=None):
        mounts = self._creating(ns, key, lambda: self.inner.prepare(ns, key, parent, labels))
        self._exchange.publish(ns, "/snapshot/prepare", events.SnapshotPrepare(key=key, parent=parent))
        return mounts

    def view(self, ns, key, parent="", labels=None):
        return self._creating(ns, key, lambda: self.inner.view(ns, key, parent, labels))

    def commit(self, ns, name, key, labels=None):
        self._creating(ns, name, lambda: self.inner.commit(ns, name, key, labels))
        self._exchange.publish(ns, "/snapshot/commit", events.SnapshotCommit(key=key, name=name))

    def stat(self, ns, key):
        return self.inner.stat(ns, key)

    def update(self, ns, info, paths):
        return self.inner.update(ns, info, paths)

    def usage(self, ns, key):
        return self.inner.usage(ns, key)

    def mounts(self, ns, key):
        return self.inner.mounts(ns, key)

    def remove(self, ns, key):
        self.inner.remove(ns, key)

    def walk(self, ns, filters=()):
        return self.inner.walk(ns, filters)

    def cleanup(self):
        self.inner.cleanup()

    def close(self):
        self.inner.close()
