"""Domain errors, one class per gRPC status code that containerd uses.

The service layer raises these; assembly.py turns them into gRPC statuses, so
the services stay usable (and testable) without gRPC. Messages read like
containerd's: the subject first, then the code text (`image "x": not found`).
"""


class Error(Exception):
    """Base of all errors a client is meant to see."""

    text = "unknown"

    def __str__(self) -> str:
        return f"{self.args[0]}: {self.text}" if self.args else self.text


class NotFound(Error):
    text = "not found"


class AlreadyExists(Error):
    text = "already exists"


class FailedPrecondition(Error):
    text = "failed precondition"


class InvalidArgument(Error):
    text = "invalid argument"


class Unavailable(Error):
    """A resource is held by someone else for now (e.g. a locked ingest ref); retry."""

    text = "unavailable"


class OutOfRange(Error):
    text = "out of range"


class Unauthenticated(Error):
    """A registry refused the credentials (or asked for some and none were given)."""

    text = "unauthorized"


class PermissionDenied(Error):
    text = "permission denied"


class Unimplemented(Error):
    text = "not implemented"


class Unknown(Error):
    """A lower layer failed for its own reasons (the OCI runtime refusing a verb)."""

    text = "unknown"


def q(value: str) -> str:
    """Quotes like Go's %q, so messages match containerd's (`image "x"`)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
