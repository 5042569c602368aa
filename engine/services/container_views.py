"""What clients read about containers: ``docker inspect`` and ``docker ps``,
from the records in memory (no disk, no containerd), with the image names
the image service knows. Apart from services/containers.py, which changes
containers; this only looks."""
from collections.abc import Callable

from engine.errors import InvalidParameter, NotFound
from engine.store import ContainerStore
from engine.store.summary import encoded_list, mounts_shown, summary


class ContainerViews:
    def __init__(self, store: ContainerStore, exec_ids: Callable[[str], list[str]] = lambda container_id: [],
                 resolve_ancestors: Callable[[str], set[str]] | None = None,
                 container_size: Callable[[str], int] = lambda container_id: 0,
                 image_sizes: Callable[[], dict[str, int]] = dict):
        """``exec_ids(id)``: the container's exec instances (the exec service's);
        ``resolve_ancestors(ref)``: image IDs for the ancestor filter;
        ``container_size(id)``: the bytes of its writable layer, and
        ``image_sizes()`` each image's size by ID, for ``size=1``."""
        self.store, self.exec_ids, self.resolve_ancestors = store, exec_ids, resolve_ancestors
        self.container_size, self.image_sizes = container_size, image_sizes

    def inspect(self, ref: str, size: bool = False) -> dict:
        record = self.store.get(ref)
        shown = record.inspect(mounts=mounts_shown(record.mount_points), exec_ids=self.exec_ids(record.id))
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

    def list_encoded(self, all: bool = False, limit: int = -1, filters: str | None = None, since: str = "",
                     before: str = "") -> bytes:
        """list()'s answer (without sizes) as the JSON the API sends."""
        return encoded_list(self.store.list_containers(all=all, limit=limit, filters_param=filters, since=since,
                                                       before=before, resolve_ancestors=self.resolve_ancestors))


def image_family(catalog, ref: str) -> set[str] | None:
    """The IDs of the image ``ref`` names and of every image built on it
    (``catalog``: the image service's), for ps's ancestor filter, as dockerd
    walks its children; None when there is no such image."""
    try:
        todo = [catalog.find(ref).id]
    except (NotFound, InvalidParameter):
        return None
    family: set[str] = set()
    while todo:
        image_id = todo.pop()
        if image_id not in family:
            family.add(image_id)
            todo += catalog.children.get(image_id, [])
    return family
