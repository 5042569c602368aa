"""The containers service layer: the store, vetoed by the containers' users, and the collections a delete causes."""
from __future__ import annotations

from collections.abc import Callable

from . import errors
from .errors import q
from .gc.scheduler import Scheduler
from .metadata.store import Container, ContainerStore


class Containers:
    def __init__(self, store: ContainerStore, gc: Scheduler):
        self.store, self._gc = store, gc
        self._busy: list[Callable[[str, str], bool]] = []

    def register_user(self, in_use: Callable[[str, str], bool]) -> None:
        """Lets a user of containers (the task manager) veto deleting one it runs."""
        self._busy.append(in_use)

    def get(self, ns: str, container_id: str) -> Container:
        return self.store.get(ns, container_id)

    def list(self, ns: str, filters: list[str]) -> list[Container]:
        return self.store.list(ns, filters)

    def create(self, ns: str, container: Container) -> Container:
        return self.store.create(ns, container)

    def update(self, ns: str, container: Container, paths: list[str]) -> Container:
        return self.store.update(ns, container, paths)

    def delete(self, ns: str, container_id: str) -> None:
        if any(in_use(ns, container_id) for in_use in self._busy):
            raise errors.FailedPrecondition(f"container {q(container_id)} has a task")
        self.store.delete(ns, container_id)
        self._gc.deleted()

