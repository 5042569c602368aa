"""What a transfer works on: content, images, snapshotters, a layer applier and leases."""
import datetime
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager

from ..content.store import ContentStore
from ..diff.applier import Applier
from ..metadata.store import ImageStore
from ..snapshots.snapshotter import Snapshotter


class Backend(ABC):
    content: ContentStore
    images: ImageStore
    applier: Applier

    @abstractmethod
    def snapshotter(self, name: str) -> Snapshotter: ...

    @abstractmethod
    def leased(self, ns: str) -> AbstractContextManager[str]:
        """A temporary lease for the block: what the block writes survives garbage
        collection until it is referenced (by an image), and is collected if the
        block fails before that."""


LEASE_EXPIRY = datetime.timedelta(hours=24)


def expiry_label(after: datetime.timedelta = LEASE_EXPIRY) -> dict[str, str]:
    """The label that ends a lease even if its owner dies (a transfer's: 24 hours, as ctr's)."""
    expires = datetime.datetime.now(datetime.timezone.utc) + after
    return {"containerd.io/gc.expire": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}
