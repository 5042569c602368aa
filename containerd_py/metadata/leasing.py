"""The lease a call works under, as containerd carries it in its context.

A gRPC call names it in the `containerd-lease` metadata; the stores add
what the call creates (content, ingests, snapshots) to that lease, so the
garbage collector keeps them until the lease ends.
"""
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_current: ContextVar[str | None] = ContextVar("lease", default=None)


def current() -> str | None:
    return _current.get()


@contextmanager
def using(lease_id: str | None) -> Iterator[None]:
    token = _current.set(lease_id)
    try:
        yield
    finally:
        try:
            _current.reset(token)
        except ValueError:  # a streaming call's generator closed from another context
            _current.set(None)
