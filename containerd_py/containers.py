"""Containers as the daemon's parts share them: what one is (its record), the
interface of their store (metadata/sqlite_containers.py implements it), and
the service over the store that the containers servicer and the task manager
use, as containerd's `containers` package and its containers service."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

from . import errors
from .errors import q
from .types import AnyValue


@dataclass
class Container:
    """A container's metadata; a task (if any) runs it."""

    id: str
    runtime: str = ""
    runtime_options: AnyValue | None = None
    spec: AnyValue | None = None
    image: str = ""
    snapshotter: str = ""
    snapshot_key: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, AnyValue] = field(default_factory=dict)
    created_at: int = 0
    updated_at: int = 0


class ContainerStore(ABC):
    @abstractmethod
    def get(self, ns: str, container_id: str) -> Container: ...

    @abstractmethod
    def list(self, ns: str, filters: list[str]) -> list[Container]: ...

    @abstractmethod
    def create(self, ns: str, container: Container) -> Container: ...

    @abstractmethod
    def update(self, ns: str, container: Container, paths: list[str]) -> Container:
        """Without paths, replaces labels, spec, extensions, image and snapshot key;
        runtime and snapshotter are fixed."""

    @abstractmethod
    def delete(self, ns: str, container_id: str) -> None: ...


class Containers:
    """The store, vetoed by the containers' users, and the collection a delete calls for."""

    def __init__(self, store: ContainerStore, deleted: Callable[[], None]):
        self.store, self._deleted = store, deleted
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
        self._deleted()
