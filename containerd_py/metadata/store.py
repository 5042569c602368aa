"""Interfaces of the namespace, image and lease stores, and what they hold; every call names its namespace
(containers have theirs in containerd_py/containers.py)."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

from ..types import Descriptor


@dataclass
class Namespace:
    name: str
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class Image:
    name: str
    target: Descriptor
    labels: dict[str, str] = field(default_factory=dict)
    created_at: int = 0  # nanoseconds since the epoch
    updated_at: int = 0


@dataclass
class Lease:
    id: str
    labels: dict[str, str] = field(default_factory=dict)
    created_at: int = 0


@dataclass(frozen=True)
class Resource:
    """Something a lease holds: type is `content`, `ingests` or `snapshots/<snapshotter>`."""

    id: str
    type: str


class NamespaceStore(ABC):
    @abstractmethod
    def create(self, name: str, labels: dict[str, str]) -> Namespace: ...

    @abstractmethod
    def ensure(self, name: str) -> None:
        """Creates the namespace if missing: objects made in a namespace make it exist."""

    @abstractmethod
    def get(self, name: str) -> Namespace: ...

    @abstractmethod
    def list(self) -> list[Namespace]: ...

    @abstractmethod
    def update(self, namespace: Namespace, paths: list[str]) -> Namespace: ...

    @abstractmethod
    def delete(self, name: str) -> None:
        """Refuses (FailedPrecondition) while any registered resource kind is in use."""

    @abstractmethod
    def register_resource(self, kind: str, in_use: Callable[[str], bool]) -> None:
        """Lets another store veto deleting a namespace that still holds its objects."""


class ImageStore(ABC):
    @abstractmethod
    def get(self, ns: str, name: str) -> Image: ...

    @abstractmethod
    def list(self, ns: str, filters: list[str]) -> list[Image]: ...

    @abstractmethod
    def create(self, ns: str, image: Image) -> Image: ...

    @abstractmethod
    def update(self, ns: str, image: Image, paths: list[str]) -> Image: ...

    @abstractmethod
    def delete(self, ns: str, name: str) -> None: ...


class LeaseStore(ABC):
    @abstractmethod
    def create(self, ns: str, lease_id: str, labels: dict[str, str]) -> Lease: ...

    @abstractmethod
    def delete(self, ns: str, lease_id: str) -> None: ...

    @abstractmethod
    def list(self, ns: str, filters: list[str]) -> list[Lease]: ...

    @abstractmethod
    def add_resource(self, ns: str, lease_id: str, resource: Resource) -> None: ...

    @abstractmethod
    def delete_resource(self, ns: str, lease_id: str, resource: Resource) -> None: ...

    @abstractmethod
    def list_resources(self, ns: str, lease_id: str) -> list[Resource]: ...
