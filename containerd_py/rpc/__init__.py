"""The daemon's gRPC server, and the client library's channel
(client_channel.py): HTTP/2 framing by the `h2` library, gRPC's message
framing (wire.py), status trailers and routing here.

Not grpcio, for memory: importing grpcio alone takes ~20 MiB of resident
memory (its C core, and asyncio and ssl that it imports), about half of
what all of containerd uses, or of the engine; `h2` and this package take
~2 MiB. Only the tests still use grpcio's client, and the generated
*_pb2_grpc modules are theirs; both ends here go by the services'
protobuf descriptors.

The accept loop and connection multiplexing under it (listener.py) know no
protocol: the engine's HTTP/1.1 server uses them too, and imports them
without h2 or protobuf, which load only when Server is first used.
"""
from .status import Abort, Cancelled, StatusCode, Termination


def __getattr__(name: str):
    if name == "Server":
        from .server import Server
        return Server
    if name == "ServicerContext":
        from .call import ServicerContext
        return ServicerContext
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Abort", "Cancelled", "Server", "ServicerContext", "StatusCode", "Termination"]
