"""The daemon's own stores as a transfer Backend (in-process, no gRPC)."""
import os
from collections.abc import Iterator
from contextlib import contextmanager

from .. import errors
from ..content.store import ContentStore
from ..diff.applier import Applier
from ..gc.collector import Collector
from ..gc.scheduler import Scheduler
from ..metadata import leasing
from ..metadata.store import ImageStore, LeaseStore
from ..snapshots.snapshotter import Snapshotter
from .backend import Backend, expiry_label

class LocalBackend(Backend):
    def __init__(self, content: ContentStore, images: ImageStore, snapshotters: dict[str, Snapshotter],
                 applier: Applier, leases: LeaseStore, collector: Collector, gc: Scheduler):
        self.content, self.images, self.applier = content, images, applier
        self._snapshotters, self._leases, self._collector, self._gc = snapshotters, leases, collector, gc

    def snapshotter(self, name):
        try:
            return self._snapshotters[name]
        except KeyError:
            raise errors.InvalidArgument(f"snapshotter not loaded: {name}") from None

    @contextmanager
    def leased(self, ns: str) -> Iterator[str]:
        lease_id = f"transfer-{os.urandom(8).hex()}"
        self._leases.create(ns, lease_id, expiry_label())
        failed = True
        try:
            with leasing.using(lease_id):
                yield lease_id
            failed = False
        finally:
            self._collector.end_lease(ns, lease_id)
            self._gc.deleted(sync=failed)  # a failure's leftovers are gone when it is reported
