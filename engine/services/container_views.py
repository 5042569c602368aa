"""What clients read about containers: ``docker inspect`` and ``docker ps``,
from the records in memory (no disk, no containerd), with the image names
the image service knows. Apart from services/containers.py, which changes
containers; this only looks."""
from collections.abc import Callable

from engine.services.inspect_shape import config_shown, host_config_shown
from engine.store import ContainerStore
from engine.store.summary import mounts_shown, summary


class ContainerViews:
    def __init__(self, store: ContainerStore, exec_ids: Callable[[str], list[str]] = lambda container_id: [],
                 resolve_ancestors: Callable[[str], set[str]] | None = None,
                 container_size: Callable[[str], int] = lambda container_id: 0,
                 image_sizes: Callable[[], dict[str, int]] = dict, cgroup_version: int = 1):
        """``exec_ids(id)``: the container's exec instances (the exec service's);
        ``resolve_ancestors(ref)``: image IDs for the ancestor filter;
        ``container_size(id)``: the bytes of its writable layer, and
        ``image_sizes()`` each image's size by ID, for ``size=1``; ``cgroup_version``
        the host's (the default cgroup namespace mode follows it)."""
        self.store, self.exec_ids, self.resolve_ancestors = store, exec_ids, resolve_ancestors
        self.cgroup_version = cgroup_version
        self.container_size, self.image_sizes = container_size, image_sizes

    def inspect(self, ref: str, size: bool = False) -> dict:
        record = self.store.get(ref)
        shown = record.inspect(mounts=mounts_shown(record.mount_points), exec_ids=self.exec_ids(record.id))
        shown.update(HostConfig=host_config_shown(record.host_config, self.cgroup_version),
                     Config=config_shown(record.config))
        if size:
            shown["SizeRw"], shown["SizeRootFs"] = self._sizes(record, self.image_sizes())
        return shown

    def _sizes(self, record, image_sizes: dict[str, int]) -> tuple[int, int]:
        writable = self.container_size(record.id)
        return writable, writable + image_sizes.get(record.image, 0)

    def list(self, all: bool = False, limit: int = -1, filters: str | None = None, since: str = "",
             before: str = "", size: bool = False) -> list[dict]:
        records = self.store.list_containers(all=all, limit=limit, filters_param=filters, since=since,
                                             before=before, resolve_ancestors=self.resolve_ancestors)
        image_sizes = self.image_sizes() if size and records else {}
        return [summary(record, sizes=self._sizes(record, image_sizes) if size else None) for record in records]
