"""What clients read about containers: ``docker inspect`` and ``docker ps``,
from the records in memory (no disk, no containerd), with the image names
the image service knows. Apart from services/containers.py, which changes
containers; this only looks."""
from collections.abc import Callable

from engine.store import ContainerStore
from engine.store.summary import mounts_shown, summary


class ContainerViews:
    def __init__(self, store: ContainerStore, exec_ids: Callable[[str], list[str]] = lambda container_id: [],
                 resolve_ancestors: Callable[[str], set[str]] | None = None):
        """``exec_ids(id)``: the container's exec instances (the exec service's);
        ``resolve_ancestors(ref)``: image IDs for the ancestor filter."""
        self.store, self.exec_ids, self.resolve_ancestors = store, exec_ids, resolve_ancestors

    def inspect(self, ref: str) -> dict:
        record = self.store.get(ref)
        return record.inspect(mounts=mounts_shown(record.mount_points), exec_ids=self.exec_ids(record.id))

    def list(self, all: bool = False, limit: int = -1, filters: str | None = None, since: str = "",
             before: str = "", size: bool = False) -> list[dict]:
        records = self.store.list_containers(all=all, limit=limit, filters_param=filters, since=since,
                                             before=before, resolve_ancestors=self.resolve_ancestors)
        return [summary(record, sizes=(0, 0) if size else None) for record in records]
