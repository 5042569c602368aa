"""The composition root: builds the services and the API's routes from the
daemon's configuration. Nothing else constructs them."""
from typing import Callable

from engine.api.routes import system as system_routes
from engine.api.server import Router, Server
from engine.services.system import VERSION, SystemService


class Assembly:
    def __init__(self, config, containerd_version: Callable[[], tuple[str, str]]):
        """`containerd_version()`: (version, revision) of the containerd the engine uses."""
        self.config = config
        self.system = SystemService(config.runtimes[config.default_runtime], containerd_version)
        self.router = Router()
        system_routes.add_routes(self.router, self.system)

    def server(self) -> Server:
        return Server(self.router, server_header=f"engine-py/{VERSION} (linux)")
