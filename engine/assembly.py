"""The composition root: builds the services and the API's routes from the
daemon's configuration. Nothing else constructs them."""
from engine.api.routes import system as system_routes
from engine.api.server import Router, Server
from engine.services.system import VERSION, SystemService


def _containerd_py_version() -> tuple[str, str]:
    """The containerd-py the engine runs (until it asks containerd itself, over its Version service)."""
    from containerd_py import __version__
    from containerd_py.assembly import VERSION as containerd_version
    return containerd_version, __version__


class Assembly:
    def __init__(self, config):
        self.config = config
        external = bool(config.containerd)  # its version is known once the engine talks to it
        self.system = SystemService(config.runtimes[config.default_runtime],
                                    (lambda: ("", "")) if external else _containerd_py_version)
        self.router = Router()
        system_routes.add_routes(self.router, self.system)

    def server(self) -> Server:
        return Server(self.router, server_header=f"engine-py/{VERSION} (linux)")
