"""The daemon's gRPC server: HTTP/2 framing by the `h2` library, gRPC's
message framing, status trailers and routing here.

Not grpcio's server, for memory: importing grpcio alone takes ~20 MiB of
resident memory (its C core, and asyncio and ssl that it imports), about
half of what all of containerd uses; `h2` and this module take ~2 MiB.
Clients (containerd-py-ctl, the tests) still use grpcio's client, and the
generated *_pb2_grpc modules are theirs; the server routes by the services'
protobuf descriptors.
"""
from .call import ServicerContext
from .server import Server
from .status import Abort, Cancelled, StatusCode, Termination

__all__ = ["Abort", "Cancelled", "Server", "ServicerContext", "StatusCode", "Termination"]
