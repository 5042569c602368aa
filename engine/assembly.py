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
    def __init__(self, config, own_containerd: bool):
        """`own_containerd`: the engine runs containerd-py itself (another containerd's
        version is known once the engine talks to it)."""
        self.config = config
        self.system = SystemService(config.runtimes[config.default_runtime],
                                    _containerd_py_version if own_containerd else (lambda: ("", "")))
        self.router = Router()
        system_routes.add_routes(self.router, self.system)

    def server(self) -> Server:
        return Server(self.router, server_header=f"engine-py/{VERSION} (linux)")
