"""containerd_py's client library, for containerd-py or containerd itself: a
proxy per service (proxies.py, content_proxy.py, tasks_proxy.py) taking and returning the
daemon's domain types, and `Client`, which holds the connection and the
namespace. `containerd-py-ctl` (cli/) and the engine are built on it; nothing
here imports the daemon's side."""
from .client import Client, ContainerOptions

__all__ = ["Client", "ContainerOptions"]
