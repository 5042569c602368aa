"""Domain errors, one class per gRPC status code that containerd uses.

The service layer raises these; assembly.py turns them into gRPC statuses (by
their `code`), so the services stay usable (and testable) without gRPC, and
the client library turns the statuses back. Messages read like
containerd's: the subject first, then the code text (`image "x": not found`).
"""


class Error(Exception):
    """Base of all errors a client is meant to see."""

    text = "unknown"
    code = "UNKNOWN"  # the gRPC status code's name, by which it crosses the wire both ways

    def __str__(self) -> str:
        return f"{self.args[0]}: {self.text}" if self.args else self.text


class NotFound(Error):
    text = "not found"
    code = "NOT_FOUND"


class AlreadyExists(Error):
    text = "already exists"
    code = "ALREADY_EXISTS"


class FailedPrecondition(Error):
    text = "failed precondition"
    code = "FAILED_PRECONDITION"


class InvalidArgument(Error):
    text = "invalid argument"
    code = "INVALID_ARGUMENT"


class Unavailable(Error):
    """A resource is held by someone else for now (e.g. a locked ingest ref); retry."""

    text = "unavailable"
    code = "UNAVAILABLE"


class OutOfRange(Error):
    text = "out of range"
    code = "OUT_OF_RANGE"


class Unauthenticated(Error):
    """A registry refused the credentials (or asked for some and none were given)."""

    text = "unauthorized"
    code = "UNAUTHENTICATED"


class PermissionDenied(Error):
    text = "permission denied"
    code = "PERMISSION_DENIED"


class Unimplemented(Error):
    text = "not implemented"
    code = "UNIMPLEMENTED"


class Unknown(Error):
    """A lower layer failed for its own reasons (the OCI runtime refusing a verb)."""

    text = "unknown"
    code = "UNKNOWN"


def q(value: str) -> str:
    """Quotes like Go's %q, so messages match containerd's (`image "x"`)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
