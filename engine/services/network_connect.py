"""``docker network connect`` and ``disconnect``: a container's change of
networks, under the container's lock, and recorded (the networking reports
the endpoints' events)."""
from engine.services.container_network import ContainerNetworking
from engine.services.containers import ContainerService


class NetworkConnections:
    def __init__(self, containers: ContainerService, networking: ContainerNetworking):
        self.containers, self.networking = containers, networking

    def connect(self, network_ref: str, container_ref: str, endpoint_config: dict | None = None) -> None:
        self._change(container_ref, lambda record: self.networking.connect(record, network_ref, endpoint_config))

    def disconnect(self, network_ref: str, container_ref: str) -> None:
        self._change(container_ref, lambda record: self.networking.disconnect(record, network_ref))

    def _change(self, container_ref: str, change) -> None:
        record = self.containers.store.get(container_ref)
        with self.containers.locked(record.id):
            change(record)
            self.containers.store.save(record)
