"""Interface of a namespaced, content-addressed blob store with resumable ingests."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import BinaryIO


@dataclass
class Info:
    digest: str
    size: int
    created_at: int = 0  # nanoseconds since the epoch
    updated_at: int = 0
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class Status:
    """Progress of one ingest (an unfinished write under a client-chosen ref)."""

    ref: str
    offset: int
    total: int
    expected: str
    started_at: int
    updated_at: int


class Writer(ABC):
    """An open ingest; holds the ref's lock until closed."""

    @abstractmethod
    def status(self) -> Status: ...

    @abstractmethod
    def digest(self) -> str:
        """Digest of the bytes written so far."""

    @abstractmethod
    def write(self, data: bytes) -> None:
        """Appends at the current offset."""

    @abstractmethod
    def truncate(self, size: int) -> None: ...

    @abstractmethod
    def commit(self, size: int, expected: str, labels: dict[str, str]) -> str:
        """Verifies size and digest when given, stores the blob and ends the ingest.

        Returns the digest. AlreadyExists when the namespace already has it.
        """

    @abstractmethod
    def close(self) -> None:
        """Releases the ref; an uncommitted ingest stays for a later resume."""


class ContentStore(ABC):
    @abstractmethod
    def info(self, ns: str, digest: str) -> Info: ...

    @abstractmethod
    def update(self, ns: str, info: Info, paths: list[str]) -> Info:
        """Only labels are mutable; an empty path list replaces them all."""

    @abstractmethod
    def list(self, ns: str, filters: list[str]) -> list[Info]: ...

    @abstractmethod
    def delete(self, ns: str, digest: str) -> None: ...

    @abstractmethod
    def open(self, ns: str, digest: str) -> BinaryIO:
        """A seekable reader of a committed blob."""

    @abstractmethod
    def writer(self, ns: str, ref: str, total: int = 0, expected: str = "") -> Writer:
        """Opens or resumes the ingest `ref`.

        Unavailable while another writer holds the ref; AlreadyExists when
        `expected` is already in the namespace.
        """

    @abstractmethod
    def status(self, ns: str, ref: str) -> Status: ...

    @abstractmethod
    def list_statuses(self, ns: str, filters: list[str]) -> list[Status]: ...

    @abstractmethod
    def abort(self, ns: str, ref: str) -> None: ...
