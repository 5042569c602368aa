"""A container's networking, as dockerd's daemon/container_operations gives
it: the networks chosen at create, a sandbox (network namespace) with an
endpoint per network while it runs, its published ports and its names for
the embedded resolver; all of it recorded in the container's NetworkSettings
so that an engine restart finds it again, and all of it undone at exit."""
import ipaddress
import logging
import os
import threading
from typing import Callable, Iterable

from engine.errors import EngineError, Forbidden, InvalidParameter, NotFound, System
from engine.network import portmap, resolvconf
from engine.network.bridge import host_veth
from engine.network.resolvconf import DnsSettings
from engine.network.types import Endpoint, PortBinding
from engine.services.networks import PREDEFINED
from engine.store import Container
from engine.textfiles import read_or_empty

log = logging.getLogger(__name__)

_ENDPOINT_CLEARED = {"EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
                     "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "MacAddress": ""}


def joins_other(mode: str) -> bool:
    """Modes whose network namespace is not the container's own sandbox."""
    return mode in ("host", "none") or mode.startswith("container:")


class ContainerNetworking:
    """``networks``: the network service (records, IPAM); ``driver``: the
    bridge driver; ``ports``: the host port allocator; ``resolver``: the
    embedded DNS resolver; sandboxes live under ``<exec_root>/netns``."""

    def __init__(self, networks, driver, ports, resolver, exec_root: str, dns: DnsSettings = DnsSettings(),
                 host_resolv_conf: str = "/etc/resolv.conf",
                 publish: Callable[[str, str, dict], None] = lambda action, network_id, attributes: None):
        """``dns``: the daemon's --dns, --dns-search, --dns-opt (a container's
        own replace them); ``publish``: network events, dockerd's connect and
        disconnect at each endpoint's join and leave."""
        self.networks, self.driver, self.ports, self.resolver = networks, driver, ports, resolver
        self.publish = publish
        self.sandbox_dir = os.path.join(exec_root, "netns")
        self.dns, self.host_resolv_conf = dns, host_resolv_conf
        self._lock = threading.Lock()
        # network ID -> container ID -> (endpoint, DNS names): what the resolver answers from
        self._attached: dict[str, dict[str, tuple[Endpoint, tuple[str, ...]]]] = {}

    def sandbox_path(self, container_id: str) -> str:
        return os.path.join(self.sandbox_dir, container_id[:12])

    # -- create --------------------------------------------------------------------------

    def plan(self, container_id: str, host_config: dict, networking_config: dict | None) -> dict:
        """The NetworkSettings a new container starts with: its network
        (checked to exist) with the endpoint settings asked for, no
        addresses yet (what only user networks take is refused at start, as dockerd does)."""
        mode = host_config.get("NetworkMode") or "default"
        if mode.startswith("container:"):
            return {"Networks": {}, "Ports": {}}
        endpoints_config = (networking_config or {}).get("EndpointsConfig") or {}
        network = self.networks.find("bridge" if mode == "default" else mode)
        asked = endpoints_config.get(mode) or endpoints_config.get(network.name) or {}
        portmap.validate_port_bindings(host_config.get("PortBindings"))
        return {"Networks": {network.name: self._endpoint_settings(network, asked)}, "Ports": {}}

    @staticmethod
    def _endpoint_settings(network, asked: dict) -> dict:
        return {"IPAMConfig": asked.get("IPAMConfig") or None, "Links": asked.get("Links") or None,
                "Aliases": asked.get("Aliases") or None, "NetworkID": network.id, **_ENDPOINT_CLEARED,
                "DriverOpts": asked.get("DriverOpts") or None}

    def _network_of(self, name: str, settings: dict):
        """The network record an entry of NetworkSettings.Networks names (by ID, else by name)."""
        return self.networks.find(settings.get("NetworkID") or name)

    def _dns(self, record: Container) -> DnsSettings:
        hc = record.host_config
        return DnsSettings(tuple(hc.get("Dns") or ()) or self.dns.servers,
                           tuple(hc.get("DnsSearch") or ()) or self.dns.search,
                           tuple(hc.get("DnsOptions") or ()) or self.dns.options)

    def resolv_conf(self, record: Container) -> str:
        """The container's /etc/resolv.conf: on a user network the embedded
        resolver's, else the host's as dockerd filters it."""
        host_text = read_or_empty(self.host_resolv_conf)
        networks = record.network_settings.get("Networks") or {}
        if any(_user_defined(self._network_of(n, s)) for n, s in networks.items()):
            return resolvconf.embedded_resolv_conf(host_text, self._dns(record))
        host_network = (record.host_config.get("NetworkMode") or "") == "host"
        return resolvconf.resolv_conf(host_text, self._dns(record), host_network=host_network)

    def _upstreams(self, record: Container) -> list[str]:
        """Where the resolver forwards the container's other names: nowhere
        when its only way out would be internal networks (as dockerd)."""
        networks = [self._network_of(n, s) for n, s in (record.network_settings.get("Networks") or {}).items()]
        if networks and all(network.internal for network in networks):
            return []
        return resolvconf.upstreams(read_or_empty(self.host_resolv_conf), self._dns(record))

    def own_sandbox(self, record: Container) -> str | None:
        """The path the spec joins for the network namespace, or None when
        the mode decides it (host, none, container:<x>)."""
        mode = record.host_config.get("NetworkMode") or "default"
        return None if joins_other(mode) else self.sandbox_path(record.id)

    # -- start and exit ----------------------------------------------------------------

    def attach(self, record: Container) -> list[str]:
        """Before the task starts: the sandbox, an endpoint on each network,
        the published ports, the resolver. Returns the container's addresses
        (for its /etc/hosts). On failure nothing of it is left."""
        sandbox = self.own_sandbox(record)
        if sandbox is None:
            return []
        settings = record.network_settings
        if "Networks" not in settings:  # made by an engine without networks: the default's, as at create
            settings.update(self.plan(record.id, record.host_config, None))
        self.driver.create_sandbox(sandbox)
        joined: list = []
        try:
            for name, endpoint_settings in list((settings.get("Networks") or {}).items()):
                network = self._network_of(name, endpoint_settings)
                joined.append(network)
                self._join(record, network, sandbox, "eth%d" % (len(joined) - 1), gateway=len(joined) == 1)
            self._publish(record)
            settings.update(SandboxID=record.id, SandboxKey=sandbox)
            if any(_user_defined(network) for network in joined):
                self.resolver.attach(record.id, sandbox, self._upstreams(record))
        except BaseException:
            self._teardown(record, joined)
            raise
        return [endpoint["IPAddress"] for endpoint in settings["Networks"].values() if endpoint.get("IPAddress")]

    def _join(self, record: Container, network, sandbox: str, ifname: str, gateway: bool) -> None:
        settings = record.network_settings["Networks"][network.name]
        ipam = settings.get("IPAMConfig") or {}
        aliases = tuple(settings.get("Aliases") or ())
        if not _user_defined(network):
            if ipam.get("IPv4Address"):
                raise InvalidParameter("user specified IP address is supported on user defined networks only")
            if aliases:
                raise InvalidParameter("network-scoped alias is supported only for containers in user defined networks")
        if _user_defined(network):  # dockerd's updateNetworkConfig: the short ID, then a hostname of its own
            hostname = record.config.get("Hostname") or ""
            aliases += tuple(dict.fromkeys(a for a in (record.id[:12], hostname) if a and a not in aliases))
        endpoint = self.networks.allocate_endpoint(network.id, record.id, record.name.lstrip("/"), aliases,
                                                   ip=ipam.get("IPv4Address") or None,
                                                   mac=record.config.get("MacAddress") or None)
        try:
            self.driver.join(self.networks.bridge_network(network), endpoint, sandbox, ifname, gateway)
        except BaseException:
            self.networks.release_endpoint(network.id, record.id)
            raise
        settings.update(EndpointID=endpoint.endpoint_id, Gateway=str(endpoint.gateway),
                        IPAddress=str(endpoint.address.ip), IPPrefixLen=endpoint.address.network.prefixlen,
                        MacAddress=endpoint.mac, Aliases=list(aliases) if _user_defined(network) else settings.get("Aliases"))
        with self._lock:
            names = (record.name.lstrip("/"), *aliases)
            self._attached.setdefault(network.id, {})[record.id] = (endpoint, names)
        self._event("connect", network, record)

    def _publish(self, record: Container) -> None:
        """Host ports reserved (held as dockerd holds them) and NATed to the
        container's address on its first network."""
        exposed = record.config.get("ExposedPorts") or {}
        wanted = portmap.requested_ports(record.host_config.get("PortBindings"), exposed,
                                         bool(record.host_config.get("PublishAllPorts")))
        first = next(iter(record.network_settings["Networks"].values()), None)
        if first is None:  # disconnected from every network: only lo, nothing to publish to
            record.network_settings["Ports"] = {}
            return
        bridge = self.networks.bridge_network(self.networks.find(first["NetworkID"])).bridge
        shown: dict = {key: None for key in exposed}
        bindings = []
        try:
            for asked in wanted:
                port = self.ports.allocate(asked.proto, asked.host_ip, asked.host_start, asked.host_end)
                bindings.append(PortBinding(asked.proto, asked.host_ip, port, first["IPAddress"],
                                            asked.container_port, bridge))
                key = f"{asked.container_port}/{asked.proto}"
                shown[key] = (shown.get(key) or []) + [{"HostIp": asked.host_ip or "0.0.0.0", "HostPort": str(port)}]
            if bindings:
                self.driver.publish(record.id, bindings)
        except BaseException as err:
            for binding in bindings:
                self.ports.release(binding.proto, binding.host_ip, binding.host_port)
            if isinstance(err, EngineError):
                raise System(f"driver failed programming external connectivity on endpoint {record.name.lstrip('/')} "
                             f"({first['EndpointID']}): {err}") from None
            raise
        record.network_settings["Ports"] = shown

    def detach(self, record: Container) -> None:
        """At exit: everything attach made, released; the NetworkSettings keep
        the networks without addresses, as dockerd's."""
        if self.own_sandbox(record) is None:
            return
        networks = []
        for name, settings in (record.network_settings.get("Networks") or {}).items():
            try:
                networks.append(self._network_of(name, settings))
            except NotFound:
                continue  # removed with --force meanwhile
        self._teardown(record, networks)

    def _teardown(self, record: Container, networks: list) -> None:
        settings = record.network_settings
        self.resolver.detach(record.id)
        self.driver.unpublish(record.id)
        for key, bindings in (settings.get("Ports") or {}).items():
            for binding in bindings or ():
                self.ports.release(key.partition("/")[2], _host_ip(binding), int(binding["HostPort"]))
        try:  # its veths go with it, in the kernel's own time (deleting each would wait ~25 ms)
            self.driver.delete_sandbox(self.sandbox_path(record.id))
        except OSError as err:
            log.error("removing the network namespace of %s: %s", record.id, err)
        for network in networks:
            endpoint = (settings.get("Networks") or {}).get(network.name) or {}
            self._forget(network.id, record.id)
            if endpoint.get("EndpointID"):
                self._event("disconnect", network, record)
            self.networks.release_endpoint(network.id, record.id)
            endpoint.update(_ENDPOINT_CLEARED)
        settings["Ports"] = {}

    def _leave(self, veth: str) -> None:
        try:
            self.driver.leave(veth)
        except OSError as err:
            log.error("removing %s: %s", veth, err)

    # -- connect and disconnect --------------------------------------------------------

    def connect(self, record: Container, network_ref: str, endpoint_config: dict | None) -> None:
        """``docker network connect``: recorded for a stopped container (wired
        at its start), wired at once for a running one."""
        mode = record.host_config.get("NetworkMode") or "default"
        if joins_other(mode):
            raise Forbidden("container sharing network namespace with another container or host "
                            "cannot be connected to any other network")
        network = self.networks.find(network_ref)
        asked = endpoint_config or {}
        if not _user_defined(network) and (asked.get("IPAMConfig") or {}).get("IPv4Address"):
            raise InvalidParameter("user specified IP address is supported on user defined networks only")
        networks = record.network_settings.setdefault("Networks", {})
        if network.name in networks:
            raise Forbidden(f"endpoint with name {record.name.lstrip('/')} already exists in network {network.name}")
        had_dns = self._on_user_network(record)
        networks[network.name] = self._endpoint_settings(network, asked)
        if not record.state.running:
            return
        try:
            sandbox = self.sandbox_path(record.id)
            self._join(record, network, sandbox, f"eth{len(networks) - 1}", gateway=False)
            if _user_defined(network) and not had_dns:
                self.resolver.attach(record.id, sandbox, self._upstreams(record))
        except BaseException:
            del networks[network.name]
            raise

    def disconnect(self, record: Container, network_ref: str) -> None:
        network = self.networks.find(network_ref)
        networks = record.network_settings.get("Networks") or {}
        if network.name not in networks:
            the = "" if record.state.running else "the "
            raise Forbidden(f"container {record.id} is not connected to {the}network {network.name}")
        endpoint = networks.pop(network.name)
        if record.state.running:
            self._forget(network.id, record.id)
            if endpoint.get("EndpointID"):
                self._leave(host_veth(endpoint["EndpointID"]))
                self._event("disconnect", network, record)
            self.networks.release_endpoint(network.id, record.id)
            if not self._on_user_network(record):
                self.resolver.detach(record.id)
        self._event("disconnect", network, record)  # dockerd's DisconnectFromNetwork logs one of its own too

    def _event(self, action: str, network, record: Container) -> None:
        self.publish(action, network.id, {"container": record.id, "name": network.name, "type": network.driver})

    def _forget(self, network_id: str, container_id: str) -> None:
        with self._lock:
            members = self._attached.get(network_id, {})
            members.pop(container_id, None)
            if not members:
                self._attached.pop(network_id, None)

    def _on_user_network(self, record: Container) -> bool:
        """Whether the resolver serves the container (it is on a user network)."""
        with self._lock:
            joined = [network_id for network_id, members in self._attached.items() if record.id in members]
        return any(_user_defined(self.networks.find(network_id)) for network_id in joined)

    # -- engine start ------------------------------------------------------------------

    def restore(self, records: Iterable[Container]) -> None:
        """After an engine restart: running containers' ports held again,
        their names served, the driver's rules applied from the records;
        sandboxes of containers that no longer run (a crash mid-start) removed."""
        ports, running = {}, {}
        for record in records:
            if not record.state.running or self.own_sandbox(record) is None:
                continue
            running[record.id] = record
            try:
                ports[record.id] = self._restored(record)
            except (EngineError, OSError) as err:
                log.error("restoring the networking of %s: %s", record.id, err)
        self.driver.restore(self.networks.bridge_networks(), ports)
        for network in self.networks.store.all():
            for container_id, endpoint in list(network.endpoints.items()):
                if not self._recorded(running.get(container_id), network.name, endpoint):
                    log.info("releasing %s's address on %s: the container no longer has it", container_id,
                             network.name)
                    if container_id in running:  # a connect the engine died in: its veth is in a live sandbox
                        self._leave(host_veth(endpoint["EndpointID"]))
                    self.networks.release_endpoint(network.id, container_id)
        kept = {self.sandbox_path(container_id) for container_id in running}
        for left in self.driver.sandboxes(self.sandbox_dir):
            if left not in kept:
                log.info("removing the network namespace %s of a container that no longer runs", left)
                self.driver.delete_sandbox(left)

    @staticmethod
    def _recorded(record: Container | None, network_name: str, endpoint: dict) -> bool:
        """Whether a running container's settings hold this endpoint (a crash
        between the allocation and the container's record leaves one that do not)."""
        settings = ((record.network_settings.get("Networks") or {}).get(network_name) or {}) if record else {}
        return bool(settings) and settings.get("EndpointID") == endpoint.get("EndpointID")

    def _restored(self, record: Container) -> list[PortBinding]:
        """A running container's endpoints known again and its resolver
        serving; the published ports to apply."""
        ports = self._held_again(record)
        for name, settings in (record.network_settings.get("Networks") or {}).items():
            try:
                network = self._network_of(name, settings)
            except NotFound:
                continue
            endpoint = _endpoint_from(record.id, settings)
            if endpoint is not None:
                names = (record.name.lstrip("/"), *(settings.get("Aliases") or ()))
                self._attached.setdefault(network.id, {})[record.id] = (endpoint, names)
        if self._on_user_network(record):
            self.resolver.attach(record.id, self.sandbox_path(record.id), self._upstreams(record))
        return ports

    def _held_again(self, record: Container) -> list[PortBinding]:
        ports = record.network_settings.get("Ports") or {}
        if not any(ports.values()):
            return []
        first = next(iter((record.network_settings.get("Networks") or {}).values()), {})
        bridge = self.networks.bridge_network(self.networks.find(first.get("NetworkID"))).bridge
        bindings = []
        for key, shown in ports.items():
            port, _, proto = key.partition("/")
            for binding in shown or ():
                host_ip, host_port = _host_ip(binding), int(binding["HostPort"])
                try:
                    self.ports.allocate(proto, host_ip, host_port, host_port)
                except EngineError as err:
                    log.error("holding %s's published port %s again: %s", record.id, binding["HostPort"], err)
                bindings.append(PortBinding(proto, host_ip, host_port, first.get("IPAddress", ""), int(port), bridge))
        return bindings

    # -- the resolver's answers ----------------------------------------------------------

    def lookup(self, container_id: str, name: str) -> list[str]:
        """IPv4s of the containers named (or aliased) ``name`` on the networks
        the asking container is on."""
        name = name.rstrip(".").lower()
        found = []
        with self._lock:
            for members in self._attached.values():
                if container_id not in members:
                    continue
                found += [str(endpoint.address.ip) for endpoint, names in members.values()
                          if name in (n.lower() for n in names)]
        return found

    def reverse(self, container_id: str, ip: str) -> str | None:
        with self._lock:
            for network_id, members in self._attached.items():
                if container_id not in members:
                    continue
                for endpoint, names in members.values():
                    if str(endpoint.address.ip) == ip:
                        return f"{names[0]}.{self.networks.find(network_id).name}"
        return None


def _user_defined(network) -> bool:
    """Networks other than dockerd's predefined three (which take no aliases, no --ip, no DNS)."""
    return network.name not in PREDEFINED


def _host_ip(shown: dict) -> str:
    """A Ports entry's HostIp as the allocator holds it ("" for every address)."""
    return "" if shown["HostIp"] == "0.0.0.0" else shown["HostIp"]


def _endpoint_from(container_id: str, settings: dict) -> Endpoint | None:
    """The endpoint a running container's NetworkSettings describe."""
    if not settings.get("EndpointID") or not settings.get("IPAddress"):
        return None
    address = ipaddress.IPv4Interface(f"{settings['IPAddress']}/{settings.get('IPPrefixLen') or 32}")
    gateway = ipaddress.IPv4Address(settings["Gateway"]) if settings.get("Gateway") else address.network.network_address
    return Endpoint(settings["EndpointID"], settings.get("NetworkID", ""), container_id, address, gateway,
                    settings.get("MacAddress", ""), host_veth(settings["EndpointID"]),
                    tuple(settings.get("Aliases") or ()))


class NoNetworking:
    """What a container service without networks does (unit tests over fakes):
    no settings recorded, the runtime makes a network namespace with only lo."""

    def plan(self, container_id: str, host_config: dict, networking_config: dict | None) -> dict:
        return {}

    def own_sandbox(self, record: Container) -> None:
        return None

    def attach(self, record: Container) -> list[str]:
        return []

    def detach(self, record: Container) -> None:
        pass

    def resolv_conf(self, record: Container) -> str:
        return resolvconf.resolv_conf(read_or_empty("/etc/resolv.conf"),
                                      host_network=record.host_config.get("NetworkMode") == "host")
