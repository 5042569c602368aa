"""The composition root: builds the stores, the services and the API's
routes from the daemon's configuration. Nothing else constructs them."""
import functools
import os
from typing import Callable

from engine import init
from engine.api.routes import build as build_routes
from engine.api.routes import container_io as container_io_routes
from engine.api.routes import containers as container_routes
from engine.api.routes import exec as exec_routes
from engine.api.routes import images as image_routes
from engine.api.routes import logs as logs_routes
from engine.api.routes import networks as network_routes
from engine.api.routes import system as system_routes
from engine.api.routes import volumes as volume_routes
from engine.api.server import Router, Server
from engine.containerd import connect
from engine.containerd.exec import ContainerdExecs
from engine.containerd.images import ContainerdImages
from engine.containerd.layers import ContainerdLayers
from engine.containerd.tasks import ContainerdTasks, ImageForContainer
from engine.errors import EngineError
from engine.logs.sink import LoggerSink
from engine.network import netlink
from engine.network.bridge import BridgeDriver
from engine.network.dns import Resolver
from engine.network.firewall import Firewall, NoFirewall
from engine.network.ipam import routes_from_proc
from engine.network.portmap import PortAllocator
from engine.network.resolvconf import DnsSettings
from engine.services.commit import CommitService
from engine.services.container_fs import ContainerFiles
from engine.services.container_views import ContainerViews
from engine.services.container_network import ContainerNetworking
from engine.services.containers import ContainerService
from engine.services.network_connect import NetworkConnections
from engine.services.events import EventsService
from engine.services.exec import ExecService
from engine.services.health import ExecProbes, HealthMonitors
from engine.services.image_archive import ImageArchives
from engine.services.image_push import PushService
from engine.services.images import ImageService
from engine.services.info import InfoService, image_layers
from engine.services.logs import LogService
from engine.services.networks import DEFAULT_BRIDGE, NetworkService
from engine.services.registries import RegistryAccess
from engine.services.stats import StatsService
from engine.services.system import VERSION, SystemService
from engine.services.volumes import VolumeService
from engine.store import ContainerStore
from engine.store.networks import NetworkStore
from engine.store.volumes import VolumeStore
from engine.textfiles import read_or_empty


class Assembly:
    """Everything the API serves, over one containerd connection; ``close()``
    stops watching containerd and leaves the containers running."""

    def __init__(self, config, containerd_version: Callable[[], tuple[str, str]] | None = None):
        """``containerd_version()``: (version, revision) of the containerd the
        engine runs; another containerd is asked over its Version service."""
        self.config = config
        self.client = connect(config.containerd, config.containerd_namespace)
        self.store = ContainerStore(os.path.join(config.data_root, "containers"))
        self.store.load()
        self.events = EventsService()
        self._assemble_networks(config)
        volume_store = VolumeStore(os.path.join(config.data_root, "volumes"))
        volume_store.load()
        self.volumes = VolumeService(volume_store, self._volume_users, functools.partial(self.events.log, "volume"))
        self.images = ImageService(ContainerdImages(self.client), in_use=self._image_users, publish=self._image_event,
                                   insecure_registries=tuple(config.insecure_registries),
                                   mirrors=tuple(config.registry_mirrors))
        self.health = HealthMonitors(self.store.save, self.events.container)
        self.log_sink = LoggerSink(self.store.root, config.exec_root, config.log_driver, config.log_opts)
        self.containers = ContainerService(self.store, ContainerdTasks(self.client), config.data_root,
                                           log_sink=self.log_sink,
                                           runtimes=config.runtimes, default_runtime=config.default_runtime,
                                           cgroup_parent=config.cgroup_parent, init_path=config.init_path or init.BINARY,
                                           resolve_image=self._image_for_container, publish=self._container_event,
                                           network=self.container_network, volumes=self.volumes)
        self.containers.reconcile()
        self.container_network.restore(self.store.all())
        self.containers.start_by_restart_policy()
        self.execs = ExecService(self.containers, ContainerdExecs(self.client), os.path.join(config.exec_root, "exec"))
        self.health.begin(ExecProbes(self.execs), self.containers.locked, self.store.all())
        self.views = ContainerViews(self.store, exec_ids=self.execs.ids_of,
                                    container_size=self.containers.tasks.snapshot_usage,
                                    image_sizes=lambda: {image["Id"]: image["Size"] for image in self.images.list()},
                                    cgroup_version=self.containers.host.cgroup_version)
        self.system = SystemService(config.runtimes[config.default_runtime],
                                    containerd_version or self._containerd_version)
        self.info = InfoService(config, self.system, self.images.door.snapshotter, self.store.all, self.images.list,
                                lambda: image_layers(self.images), lambda: self.views.list(all=True, size=True),
                                lambda: self.events.listeners)

        self.router = Router()
        system_routes.add_routes(self.router, self.system, self.info, self.events)
        container_routes.add_routes(self.router, self.containers, self.views)
        layers = ContainerdLayers(self.client, os.path.join(config.data_root, "tmp"))
        container_io_routes.add_routes(
            self.router, StatsService(self.store, config.cgroup_parent, self.containers.host.cgroup_version,
                                      publish=self.events.container),
            ContainerFiles(self.store, layers, self.events.container),
            CommitService(self.containers, layers, self.images.door))
        logs = LogService(self.containers, self.log_sink)
        logs_routes.add_routes(self.router, logs)
        exec_routes.add_routes(self.router, self.execs)
        volume_routes.add_routes(self.router, self.volumes)
        network_routes.add_routes(self.router, self.networks, NetworkConnections(self.containers,
                                                                                 self.container_network))
        image_routes.add_routes(self.router, self.images, ImageArchives(self.images), PushService(self.images),
                                RegistryAccess(tuple(config.insecure_registries), tuple(config.registry_mirrors)))
        self._logs, self._layers = logs, layers
        build_routes.add_routes(self.router, lambda: self.builds)

    @functools.cached_property
    def builds(self):
        """The build service, made at the first build: the builder's modules are
        ~1.2 MiB of an idle engine's memory otherwise."""
        from engine.services.build import BuildService
        from engine.services.build_backend import EngineBuildBackend
        return BuildService(EngineBuildBackend(self.images, self.containers, self._logs, self._layers), self.images,
                            os.path.join(self.config.data_root, "tmp"))

    def _assemble_networks(self, config) -> None:
        """The networks service over the bridge driver (netlink, and the
        engine's nftables table unless --iptables=false), the host port
        allocator and the embedded resolver, for the containers' networking."""
        driver = BridgeDriver(netlink, Firewall() if config.iptables else NoFirewall())
        self.networks = NetworkService(NetworkStore(os.path.join(config.data_root, "network")), driver,
                                       address_pools=[(p["base"], p["size"]) for p in config.default_address_pools],
                                       bip=config.bip or None, fixed_cidr=config.fixed_cidr or None,
                                       default_bridge=config.bridge != "none", icc=config.icc,
                                       ip_masq=config.ip_masq, mtu=config.mtu,
                                       bridge_name=config.bridge if config.bridge not in ("", "none") else DEFAULT_BRIDGE,
                                       host_routes=lambda: routes_from_proc(read_or_empty("/proc/net/route")),
                                       publish=self._network_event)
        self.resolver = Resolver(lambda key, name: self.container_network.lookup(key, name),
                                 lambda key, ip: self.container_network.reverse(key, ip))
        self.container_network = ContainerNetworking(
            self.networks, driver, PortAllocator(), self.resolver, config.exec_root,
            DnsSettings(tuple(config.dns), tuple(config.dns_search), tuple(config.dns_opts)),
            publish=self._network_event)

    def _container_event(self, record, action: str, attributes: dict | None = None) -> None:
        """A container's event on the bus; its health monitor follows its starts, pauses and exits."""
        self.events.container(record, action, attributes)
        self.health.container_event(record, action)

    def _network_event(self, action: str, network_id: str, attributes: dict) -> None:
        self.events.log("network", action, network_id, attributes)

    def _image_for_container(self, ref: str) -> ImageForContainer:
        """A create's image as the image service finds it (name, ID, ID prefix or digest)."""
        view = self.images.get(ref)
        chain = view.resolved.chain_ids
        return ImageForContainer(view.names[0] if view.names else ref, view.id,
                                 view.config.get("config") or {}, chain[-1] if chain else "")

    def _containerd_version(self) -> tuple[str, str]:
        version = self.client.version.version()
        return version.version, version.revision

    def _image_event(self, action: str, image_id: str, name: str) -> None:
        """An image event with the image's labels, while it exists (dockerd's LogImageEvent)."""
        try:
            labels = (self.images.get(image_id).config.get("config") or {}).get("Labels")
        except EngineError:
            labels = None
        self.events.image(action, image_id, name, labels)

    def _image_users(self, image_id: str) -> list[tuple[str, bool]]:
        return [(record.id, record.state.running) for record in self.store.all() if record.image == image_id]

    def _volume_users(self, name: str) -> list[str]:
        return [record.id for record in self.store.all()
                if any(point.get("Name") == name for point in record.mount_points.values())]

    def server(self) -> Server:
        return Server(self.router, server_header=f"engine-py/{VERSION} (linux)")

    def close(self) -> None:
        self.health.close()
        self.containers.close()
        self.resolver.close()
        self.client.close()
