"""The containers service layer: the store, plus the events and collections each change causes."""
from __future__ import annotations

from collections.abc import Callable

from . import errors
from .errors import q
from .api.containerd.events import container_pb2 as events
from .events.exchange import Exchange
from .gc.scheduler import Scheduler
from .metadata.store import Container, ContainerStore


class Containers:
    def __init__(self, store: ContainerStore, exchange: Exchange, gc: Scheduler):
        self.store, self._exchange, self._gc = store, exchange, gc
        self._busy: list[Callable[[str, str], bool]] = []

    def register_user(self, in_use: Callable[[str, str], bool]) -> None:
        """Lets a user of containers (the task manager) veto deleting one it runs."""
        self._busy.append(in_use)

    def get(self, ns: str, container_id: str) -> Container:
        return self.store.get(ns, container_id)

    def list(self, ns: str, filters: list[str]) -> list[Container]:
        return self.store.list(ns, filters)

    def create(self, ns: str, container: Container) -> Container:
        created = self.store.create(ns, container)
        options = created.runtime_options
        runtime = events.ContainerCreate.Runtime(name=created.runtime)
        if options is not None:
            runtime.options.type_url, runtime.options.value = options.type_url, options.value
        self._exchange.publish(ns, "/containers/create",
                               events.ContainerCreate(id=created.id, image=created.image, runtime=runtime))
        return created

    def update(self, ns: str, container: Container, paths: list[str]) -> Container:
        updated = self.store.update(ns, container, paths)
        self._exchange.publish(ns, "/containers/update", events.ContainerUpdate(
            id=updated.id, image=updated.image, labels=updated.labels, snapshot_key=updated.snapshot_key))
        return updated

    def delete(self, ns: str, container_id: str) -> None:
        if any(in_use(ns, container_id) for in_use in self._busy):
            raise errors.FailedPrecondition(f"container {q(container_id)} has a task")
        self.store.delete(ns, container_id)
        self._exchange.publish(ns, "/containers/delete", events.ContainerDelete(id=container_id))
        self._gc.deleted()

