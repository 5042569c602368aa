"""The engine's only door to containerd (containerd-py or containerd itself):
a containerd_py client library connection in the engine's own namespace, as
dockerd keeps its containers in containerd's "moby" namespace. The parts
(tasks.py for containers and their tasks, images.py for images) are built on
the one client this opens."""
from containerd_py import errors
from containerd_py.client import Client

from engine.errors import Unavailable

DEFAULT_NAMESPACE = "moby"


def connect(address: str, namespace: str = DEFAULT_NAMESPACE, timeout: float = 10) -> Client:
    """A client of the daemon at ``address`` working in ``namespace``; 503
    when the daemon does not answer within ``timeout`` seconds."""
    try:
        return Client(address, namespace, timeout)
    except errors.Error as err:
        raise Unavailable(f"failed to connect to containerd at {address}: {err}") from None
