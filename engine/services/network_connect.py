"""``docker network connect`` and ``disconnect``: a container's change of
networks, under the container's lock, recorded, and reported as dockerd's
network events."""
from typing import Callable

from engine.services.container_network import ContainerNetworking
from engine.services.containers import ContainerService


class NetworkConnections:
    """``publish(action, network_id, attributes)``: the network events."""

    def __init__(self, containers: ContainerService, networking: ContainerNetworking,
                 publish: Callable[[str, str, dict], None]):
        self.containers, self.networking, self.publish = containers, networking, publish

    def connect(self, network_ref: str, container_ref: str, endpoint_config: dict | None = None) -> None:
        self._change(network_ref, container_ref, "connect",
                     lambda record: self.networking.connect(record, network_ref, endpoint_config))

    def disconnect(self, network_ref: str, container_ref: str) -> None:
        self._change(network_ref, container_ref, "disconnect",
                     lambda record: self.networking.disconnect(record, network_ref))

    def _change(self, network_ref: str, container_ref: str, action: str, change) -> None:
        record = self.containers.store.get(container_ref)
        network = self.networking.networks.find(network_ref)
        with self.containers.locked(record.id):
            change(record)
            self.containers.store.save(record)
        self.publish(action, network.id, {"container": record.id, "name": network.name, "type": network.driver})
