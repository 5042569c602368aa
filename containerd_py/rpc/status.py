"""gRPC status codes, and the exceptions that end a call early."""
import enum


class StatusCode(enum.IntEnum):
    """The codes of grpc/status.proto, by the numbers that go on the wire."""
    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


class Termination(Exception):
    """Ends a call without a response: handlers' error handling lets it through."""


class Abort(Termination):
    """`context.abort(code, details)`: the call ends with this status."""

    def __init__(self, code: StatusCode, details: str):
        super().__init__(f"{code.name}: {details}")
        self.code, self.details = code, details


class Cancelled(Termination):
    """The client went away (RST_STREAM, connection closed) or the deadline passed."""
