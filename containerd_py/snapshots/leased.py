"""A snapshotter that adds the snapshots a call creates to the call's lease.

Creation and recording happen inside one metadata transaction, which the
garbage collector also runs in: it never sees a new snapshot unleased.
"""
from ..metadata import leasing
from ..metadata.db import Database
from ..metadata.store import LeaseStore, Resource
from .snapshotter import Snapshotter


class LeasedSnapshotter(Snapshotter):
    def __init__(self, inner: Snapshotter, db: Database, leases: LeaseStore):
        self.inner, self.name, self.root = inner, inner.name, inner.root
        self._db, self._leases = db, leases

    def _creating(self, ns: str, key: str, create):
        with self._db.transaction():
            if lease := leasing.current():
                self._leases.add_resource(ns, lease, Resource(key, f"snapshots/{self.name}"))
            return create()

    def prepare(self, ns, key, parent="", labels=None):
        return self._creating(ns, key, lambda: self.inner.prepare(ns, key, parent, labels))

    def view(self, ns, key, parent="", labels=None):
        return self._creating(ns, key, lambda: self.inner.view(ns, key, parent, labels))

    def commit(self, ns, name, key, labels=None):
        return self._creating(ns, name, lambda: self.inner.commit(ns, name, key, labels))

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
