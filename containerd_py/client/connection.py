"""One gRPC channel to a daemon (containerd-py or containerd), the metadata each
call carries, and the daemon's statuses turned back into domain errors."""
from collections.abc import Callable
from functools import wraps

import grpc
from google.protobuf import empty_pb2

from .. import errors
from ..api.containerd.services import version_pb2_grpc
from ..convert import LEASE_KEY, NAMESPACE_KEY

MESSAGE_LIMIT = 16 << 20

_CODES = {
    grpc.StatusCode.NOT_FOUND: errors.NotFound, grpc.StatusCode.ALREADY_EXISTS: errors.AlreadyExists,
    grpc.StatusCode.FAILED_PRECONDITION: errors.FailedPrecondition,
    grpc.StatusCode.INVALID_ARGUMENT: errors.InvalidArgument, grpc.StatusCode.UNAVAILABLE: errors.Unavailable,
    grpc.StatusCode.OUT_OF_RANGE: errors.OutOfRange, grpc.StatusCode.UNIMPLEMENTED: errors.Unimplemented,
    grpc.StatusCode.UNAUTHENTICATED: errors.Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: errors.PermissionDenied,
}


class DaemonError(errors.Error):
    """A status the daemon answered that has no domain error class."""

    text = "daemon error"


def domain_error(e: grpc.RpcError) -> errors.Error:
    """The domain error a status stands for, its message as the daemon wrote it."""
    cls = _CODES.get(e.code(), DaemonError)
    details = e.details() or ""
    suffix = f": {cls.text}"
    return cls(details[:-len(suffix)] if details.endswith(suffix) else details)


def mapped(fn: Callable) -> Callable:
    """A proxy method whose gRPC failures surface as domain errors."""
    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except grpc.RpcError as e:
            raise domain_error(e) from None
    return wrapper


class Connection:
    """A channel to the daemon; `lease`, while set, goes with every namespaced call."""

    def __init__(self, address: str):
        self.address = address
        self.channel = grpc.insecure_channel(f"unix:{address}", options=[
            ("grpc.max_receive_message_length", MESSAGE_LIMIT), ("grpc.max_send_message_length", MESSAGE_LIMIT)])
        self.lease: str | None = None

    def md(self, ns: str) -> list[tuple[str, str]]:
        return [(NAMESPACE_KEY, ns)] + ([(LEASE_KEY, self.lease)] if self.lease else [])

    def ping(self, timeout: float) -> None:
        """Fails unless the daemon answers within timeout seconds."""
        try:
            version_pb2_grpc.VersionStub(self.channel).Version(empty_pb2.Empty(), timeout=timeout)
        except grpc.RpcError as e:
            raise errors.Unavailable(f"connecting to {self.address}: {e.details()}") from None

    def close(self) -> None:
        self.channel.close()
