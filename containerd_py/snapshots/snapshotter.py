"""Interface of a snapshotter: layered filesystems by key, handed out as mounts.

Kinds follow containerd: Prepare makes an ACTIVE (writable) snapshot, View a
read-only VIEW, and Commit turns an active snapshot into a COMMITTED one
that can be a parent. Every call names its namespace.
"""
import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from ..types import Mount


class Kind(enum.IntEnum):
    UNKNOWN = 0
    VIEW = 1
    ACTIVE = 2
    COMMITTED = 3


@dataclass
class Info:
    name: str
    parent: str = ""
    kind: Kind = Kind.UNKNOWN
    created_at: int = 0  # nanoseconds since the epoch
    updated_at: int = 0
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class Usage:
    size: int = 0  # bytes of disk used by this snapshot alone (not its parents)
    inodes: int = 0


class Snapshotter(ABC):
    name: str
    root: str

    @abstractmethod
    def stat(self, ns: str, key: str) -> Info: ...

    @abstractmethod
    def update(self, ns: str, info: Info, paths: list[str]) -> Info:
        """Only labels are mutable; an empty path list replaces them all."""

    @abstractmethod
    def usage(self, ns: str, key: str) -> Usage: ...

    @abstractmethod
    def mounts(self, ns: str, key: str) -> list[Mount]:
        """Mounts of an active or view snapshot."""

    @abstractmethod
    def prepare(self, ns: str, key: str, parent: str = "", labels: dict[str, str] | None = None) -> list[Mount]: ...

    @abstractmethod
    def view(self, ns: str, key: str, parent: str = "", labels: dict[str, str] | None = None) -> list[Mount]: ...

    @abstractmethod
    def commit(self, ns: str, name: str, key: str, labels: dict[str, str] | None = None) -> None: ...

    @abstractmethod
    def remove(self, ns: str, key: str) -> None:
        """Refuses (FailedPrecondition) while the snapshot has children."""

    @abstractmethod
    def walk(self, ns: str, filters: list[str] = ()) -> list[Info]: ...

    @abstractmethod
    def cleanup(self) -> None:
        """Removes directories no snapshot owns (left by a crash mid-remove)."""

    @abstractmethod
    def close(self) -> None: ...
