"""One gRPC channel to a daemon (containerd-py or containerd), the metadata each
call carries, and the daemon's statuses turned back into domain errors.

The channel is ours (rpc/client_channel.py), not grpcio's: importing the
client library loads no grpc module, which keeps the engine ~20 MiB smaller."""
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import wraps

from google.protobuf import empty_pb2

from .. import errors
from ..api.containerd.services import version_pb2
from ..convert import LEASE_KEY, NAMESPACE_KEY
from ..rpc.client_channel import Channel, RpcError, Stub
from ..rpc.status import StatusCode

MESSAGE_LIMIT = 16 << 20

# The lease of the block a call is made in, as a Go client's context carries it:
# per thread of work (the transfer code copies it into its pools), not per client.
_leased: ContextVar[tuple["Connection", str] | None] = ContextVar("containerd_py.client.lease", default=None)

# The status each domain error class stands for; UNKNOWN, said by any daemon of its own failures,
# stays a DaemonError.
_CODES = {StatusCode[cls.code]: cls for cls in errors.Error.__subclasses__() if cls.code != "UNKNOWN"}


class DaemonError(errors.Error):
    """A status the daemon answered that has no domain error class; its message
    is the daemon's, whole (containerd's own ends with its code's text already:
    "OCI runtime exec failed: ...: unknown"), as containerd's Go client keeps it."""

    text = "daemon error"

    def __str__(self) -> str:
        return self.args[0] if self.args else self.text


def domain_error(e: RpcError) -> errors.Error:
    """The domain error a status stands for, its message as the daemon wrote it."""
    cls = _CODES.get(e.code, DaemonError)
    details = e.details
    suffix = f": {cls.text}"
    return cls(details[:-len(suffix)] if details.endswith(suffix) else details)


def mapped(fn: Callable) -> Callable:
    """A proxy method whose gRPC failures surface as domain errors."""
    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except RpcError as e:
            raise domain_error(e) from None
    return wrapper


class Connection:
    def __init__(self, address: str):
        self.address = address
        self.channel = Channel(address, max_receive=MESSAGE_LIMIT, max_send=MESSAGE_LIMIT)

    def stub(self, pb2_module, service: str) -> Stub:
        """A service's methods by name, as `pb2_module` describes it: `conn.stub(images_pb2, "Images").Get(...)`."""
        return Stub(self.channel, pb2_module.DESCRIPTOR.services_by_name[service])

    @contextmanager
    def leased(self, lease_id: str) -> Iterator[None]:
        """The block's namespaced calls on this connection carry the lease."""
        token = _leased.set((self, lease_id))
        try:
            yield
        finally:
            _leased.reset(token)

    def md(self, ns: str) -> list[tuple[str, str]]:
        held = _leased.get()
        return [(NAMESPACE_KEY, ns)] + ([(LEASE_KEY, held[1])] if held and held[0] is self else [])

    def ping(self, timeout: float) -> None:
        """Fails unless the daemon answers within timeout seconds."""
        try:
            self.stub(version_pb2, "Version").Version(empty_pb2.Empty(), timeout=timeout)
        except RpcError as e:
            raise errors.Unavailable(f"connecting to {self.address}: {e.details}") from None

    def close(self) -> None:
        self.channel.close()
