"""Networks as dockerd 20.10 keeps them: create (its name, driver and IPAM
checks in its order), list with its filters, inspect, remove, prune; the
predefined ``bridge``, ``host`` and ``none`` from the start; and the
endpoints the container lifecycle asks for (an address from IPAM and a MAC
made from it), recorded so that nothing is handed out twice.

The kernel side of a bridge network goes through ``driver``
(``create_network(BridgeNetwork)``, ``delete_network(BridgeNetwork)``);
records reach the disk only once the driver made the network, and a failed
save undoes it, so a failure leaves nothing half-made.
"""
import ipaddress
import logging
import os
import threading
from collections.abc import Callable, Iterable

from engine import filters, timestamps
from engine.errors import Conflict, EngineError, Forbidden, InvalidParameter, NotFound, System
from engine.network import ipam
from engine.network.bridge import host_veth
from engine.network.types import BridgeNetwork, Endpoint
from engine.store.networks import NetworkRecord, NetworkStore
from engine.store.record import new_id, parse_go_time

log = logging.getLogger(__name__)

PREDEFINED = ("bridge", "host", "none", "default")  # runconfig.IsPreDefinedNetwork (and "ingress", swarm's)
DEFAULT_BRIDGE = "engine-py0"
_BRIDGE_OPTION = "com.docker.network.bridge."
_BOOL_OPTIONS = {_BRIDGE_OPTION + "enable_icc": "icc", _BRIDGE_OPTION + "enable_ip_masquerade": "masquerade"}
_MTU_OPTION = "com.docker.network.driver.mtu"
_BODY_KINDS = {"Name": str, "CheckDuplicate": bool, "Driver": str, "Scope": str, "EnableIPv6": bool, "IPAM": dict,
               "Internal": bool, "Attachable": bool, "Ingress": bool, "ConfigOnly": bool, "Options": dict,
               "Labels": dict}
_GO_KIND = {str: "string", bool: "bool", dict: "object", list: "array", int: "number", float: "number"}


def _go_bool(text: str) -> bool:
    """Go's strconv.ParseBool."""
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError(f'strconv.ParseBool: parsing "{text}": invalid syntax')


def _go_text(value: bool) -> str:
    return "true" if value else "false"


def _go_int(text: str) -> int:
    """Go's strconv.Atoi."""
    if not text.lstrip("+-").isdigit() or text.count("-") + text.count("+") > 1:
        raise ValueError(f'strconv.Atoi: parsing "{text}": invalid syntax')
    return int(text)


def _checked_body(body) -> dict:
    """The create request, typed as Go's decoder would insist."""
    if body is None:
        raise InvalidParameter("got EOF while reading request body")
    if not isinstance(body, dict):
        kind = _GO_KIND.get(type(body), "null")
        raise InvalidParameter(f"json: cannot unmarshal {kind} into Go value of type types.NetworkCreateRequest")
    for key, kind in _BODY_KINDS.items():
        value = body.get(key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool) != (kind is bool)):
            raise InvalidParameter(f"json: cannot unmarshal {_GO_KIND.get(type(value), 'value')} into Go struct "
                                   f"field NetworkCreateRequest.{key} of type {_GO_KIND[kind]}")
    for key in ("Options", "Labels"):
        if not all(isinstance(value, str) for value in (body.get(key) or {}).values()):
            raise InvalidParameter(f"json: cannot unmarshal value into Go struct field NetworkCreateRequest.{key} "
                                   "of type string")
    if not isinstance((body.get("IPAM") or {}).get("Config") or [], list):
        raise InvalidParameter("json: cannot unmarshal value into Go struct field IPAM.IPAM.Config "
                               "of type []network.IPAMConfig")
    return body


def _cidr(text: str, flag: str) -> ipaddress.IPv4Interface:
    """A daemon flag's "address/prefix"."""
    try:
        ipam.parse_cidr(text)  # Go's form: address/prefix
        return ipaddress.IPv4Interface(text)
    except ValueError:
        raise InvalidParameter(f"invalid {flag} {text}: invalid CIDR address: {text}") from None


def _endpoint_id() -> str:
    return os.urandom(32).hex()


class NetworkService:
    """Every network of the engine; one lock orders all changes."""

    def __init__(self, store: NetworkStore, driver, address_pools: Iterable[tuple[str, int]] | None = None,
                 bip: str | None = None, fixed_cidr: str | None = None, default_bridge: bool = True,
                 host_routes: Callable[[], Iterable[ipaddress.IPv4Network]] = list,
                 publish: Callable[[str, str, dict], None] | None = None, icc: bool = True, ip_masq: bool = True,
                 mtu: int = 1500, bridge_name: str = DEFAULT_BRIDGE):
        """``bip`` ("172.20.0.1/16") and ``fixed_cidr`` are dockerd's flags for
        the default bridge, and ``icc``, ``ip_masq``, ``mtu`` and ``bridge_name``
        (-b) its options at every start; ``default_bridge`` False is ``--bridge none``;
        ``host_routes()`` are the destinations a chosen subnet must avoid;
        ``publish(action, network_id, attributes)`` reports network events."""
        self.store, self.driver, self.bridge_name = store, driver, bridge_name
        self.candidates = ipam.address_pools(address_pools or ipam.DEFAULT_ADDRESS_POOLS)
        self.host_routes, self.publish = host_routes, publish or (lambda action, network_id, attributes: None)
        self.lock = threading.RLock()
        self.pools: dict[str, ipam.Pool] = {}
        store.load()
        for record in store.all():
            if record.subnet:
                self.pools[record.id] = self._pool_of(record)
        self._ensure_predefined(bip, fixed_cidr, default_bridge)
        self._default_bridge_options({_BRIDGE_OPTION + "enable_icc": _go_text(icc),
                                      _BRIDGE_OPTION + "enable_ip_masquerade": _go_text(ip_masq),
                                      _MTU_OPTION: str(mtu)})
        for record in store.all():
            if record.bridge:
                driver.create_network(self.bridge_network(record))

    @staticmethod
    def _pool_of(record: NetworkRecord) -> ipam.Pool:
        return ipam.Pool.new(ipaddress.IPv4Network(record.subnet),
                             ipaddress.IPv4Network(record.ip_range) if record.ip_range else None, record.allocated)

    # -- the predefined networks

    def _ensure_predefined(self, bip: str | None, fixed_cidr: str | None, default_bridge: bool) -> None:
        have = {record.name: record for record in self.store.all() if record.name in PREDEFINED}
        for name, driver in (("none", "null"), ("host", "host")):
            if name not in have:
                self.store.save(NetworkRecord(new_id(), name, driver))
        bridge = have.get("bridge")
        if bridge is not None and not (default_bridge and bridge.bridge == self.bridge_name
                                       and self._bridge_as_asked(bridge, bip, fixed_cidr)):
            if bridge.endpoints:  # containers still on it: it stays until they are gone
                log.warning("the default bridge network keeps %s: containers are attached to it", bridge.subnet)
            else:
                self.store.delete(bridge.id)
                self.pools.pop(bridge.id, None)
                bridge = None
        if bridge is None and default_bridge:
            self._create_default_bridge(bip, fixed_cidr)

    def _default_bridge_options(self, options: dict) -> None:
        """The daemon's --icc, --ip-masq and --mtu on the default bridge, as dockerd sets them at each start."""
        bridge = next((record for record in self.store.all() if record.name == "bridge"), None)
        if bridge is not None and any(bridge.options.get(key) != value for key, value in options.items()):
            bridge.options.update(options)
            self.store.save(bridge)

    @staticmethod
    def _bridge_as_asked(record: NetworkRecord, bip: str | None, fixed_cidr: str | None) -> bool:
        """The default bridge made at an earlier start is what --bip and --fixed-cidr ask now."""
        if (record.ip_range or None) != (str(_cidr(fixed_cidr, "--fixed-cidr").network) if fixed_cidr else None):
            return False
        if not bip:
            return True
        address = _cidr(bip, "--bip")
        return record.subnet == str(address.network) and record.gateway == str(address.ip)

    def _create_default_bridge(self, bip: str | None, fixed_cidr: str | None) -> None:
        """dockerd's default bridge: ``--bip``'s subnet and address, or the
        first default pool that overlaps nothing on the host."""
        taken = [pool.subnet for pool in self.pools.values()]
        if bip:
            address = _cidr(bip, "--bip")
            subnet, gateway = address.network, address.ip
        else:
            subnet = ipam.choose_subnet(self.candidates, taken, self.host_routes())
            gateway = subnet.network_address + 1
        ip_range = _cidr(fixed_cidr, "--fixed-cidr").network if fixed_cidr else None
        pool = ipam.Pool.new(subnet, ip_range)
        pool.request(gateway)
        config = {"Subnet": str(subnet)}  # the gateway shown only when --bip named it, as dockerd shows it
        if ip_range is not None:
            config["IPRange"] = str(ip_range)
        if bip:
            config["Gateway"] = str(gateway)
        record = NetworkRecord(
            new_id(), "bridge", "bridge", ipam_config=[config], bridge=self.bridge_name, subnet=str(subnet),
            gateway=str(gateway), ip_range=str(ip_range) if ip_range else "", allocated=[str(gateway)],
            options={_BRIDGE_OPTION + "default_bridge": "true", _BRIDGE_OPTION + "enable_icc": "true",
                     _BRIDGE_OPTION + "enable_ip_masquerade": "true",
                     _BRIDGE_OPTION + "host_binding_ipv4": "0.0.0.0", _BRIDGE_OPTION + "name": self.bridge_name,
                     _MTU_OPTION: "1500"})
        self.store.save(record)
        self.pools[record.id] = pool

    # -- lookups

    def find(self, ref: str, for_inspect: bool = False) -> NetworkRecord:
        """dockerd's FindNetwork: full ID, then exact name, then an ID prefix."""
        by_name, by_prefix = [], []
        for record in self.store.all():
            if record.id == ref:
                return record
            if record.name == ref:
                by_name.append(record)
            if ref and record.id.startswith(ref):
                by_prefix.append(record)
        for found, basis in ((by_name, "name"), (by_prefix, "ID prefix")):
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                if for_inspect:  # the inspect route words it its own way
                    raise InvalidParameter(f"{len(found)} matches found based on {basis}: network {ref} is ambiguous")
                raise InvalidParameter(f"network {ref} is ambiguous ({len(found)} matches found based on {basis})")
        raise NotFound(f"network {ref} not found")

    def bridge_network(self, record: NetworkRecord) -> BridgeNetwork:
        """What the driver needs of a bridge network's record."""
        settings = self._bridge_options(record.options)
        return BridgeNetwork(record.id, record.bridge, ipaddress.IPv4Network(record.subnet),
                             ipaddress.IPv4Address(record.gateway), internal=record.internal, **settings)

    @staticmethod
    def _bridge_options(options: dict) -> dict:
        """The driver options the bridge takes, parsed with dockerd's errors."""
        settings = {}
        for key, value in options.items():
            try:
                if key in _BOOL_OPTIONS:
                    settings[_BOOL_OPTIONS[key]] = _go_bool(value)
                elif key == _MTU_OPTION:
                    settings["mtu"] = _go_int(value)
            except ValueError as e:
                raise System(f"failed to parse {key} value: {value} ({e})") from None
        return settings

    # -- create, remove, prune

    def create(self, body) -> dict:
        """``POST /networks/create``: ``{"Id", "Warning"}``."""
        body = _checked_body(body)
        name = body.get("Name") or ""
        with self.lock:
            if name in PREDEFINED:
                raise Forbidden(f"operation is not permitted on predefined {name} network ")
            warning = ""
            same = next((record for record in self.store.all() if record.name == name), None)
            if same is not None:
                if body.get("CheckDuplicate"):
                    raise Conflict(f"network with name {name} already exists")
                warning = f"Network with name {name} (id : {same.id}) already exists"
            driver = body.get("Driver") or "bridge"
            if driver == "overlay":
                raise System('This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" '
                             "to connect this node to swarm and try again.")
            ipam_body = body.get("IPAM") or {}
            configs = ipam_body.get("Config") or []
            for config in configs:
                ipam.check_config(config)
            if not name:
                raise System("invalid name: ")
            if body.get("Scope") in ("swarm", "global"):
                raise Forbidden("cannot create a swarm scoped network when swarm is not active")
            if body.get("ConfigOnly"):
                record = self._config_only_record(name, body)
                self.store.save(record)
            else:
                self._check_drivers(driver, ipam_body.get("Driver") or "default")
                record = self._new_bridge_record(name, body, configs)
                self._make(record)
        self.publish("create", record.id, {"name": name, "type": record.driver})
        return {"Id": record.id, "Warning": warning}

    @staticmethod
    def _check_drivers(driver: str, ipam_driver: str) -> None:
        """The network and IPAM drivers this engine has: bridge and default."""
        if driver in ("host", "null"):
            raise Forbidden(f'only one instance of "{driver}" network is allowed')
        if driver != "bridge":
            raise NotFound(f'plugin "{driver}" not found')
        if ipam_driver != "default":
            raise NotFound(f'plugin "{ipam_driver}" not found')

    @staticmethod
    def _config_only_record(name: str, body: dict) -> NetworkRecord:
        """A ConfigOnly network: an IPAM config for others to use, with
        dockerd's "null" driver; no bridge, nothing allocated."""
        ipam_body = body.get("IPAM") or {}
        return NetworkRecord(new_id(), name, "null", ipam_options=ipam_body.get("Options"),
                             ipam_config=[ipam.shown_config(config) for config in ipam_body.get("Config") or []],
                             config_only=True, options=body.get("Options") or {}, labels=body.get("Labels") or {})

    def _new_bridge_record(self, name: str, body: dict, configs: list) -> NetworkRecord:
        taken = [pool.subnet for pool in self.pools.values()]
        allocation = ipam.allocate_network(name, configs, taken, self.candidates,
                                           self.host_routes() if not configs else ())
        if body.get("EnableIPv6"):
            raise NotFound("could not find an available, non-overlapping IPv6 address pool among the defaults "
                           "to assign to the network")
        options = body.get("Options") or {}
        self._bridge_options(options)
        if len(configs) > 1:
            raise Forbidden("bridge driver doesn't support multiple subnets")
        network_id = new_id()
        bridge = options.get(_BRIDGE_OPTION + "name") or f"br-{network_id[:12]}"
        holder = next((record for record in self.store.all() if record.bridge == bridge), None)
        if holder is not None:
            raise Forbidden(f"cannot create network {network_id} ({bridge}): conflicts with network {holder.id} "
                            f"({bridge}): networks have same bridge name")
        ipam_body = body.get("IPAM") or {}
        return NetworkRecord(
            network_id, name, "bridge", ipam_options=ipam_body.get("Options"), ipam_config=[allocation.shown],
            internal=bool(body.get("Internal")), attachable=bool(body.get("Attachable")),
            ingress=bool(body.get("Ingress")), config_only=bool(body.get("ConfigOnly")), options=options,
            labels=body.get("Labels") or {}, bridge=bridge,
            subnet=str(allocation.subnet), gateway=str(allocation.gateway),
            ip_range=str(allocation.ip_range) if allocation.ip_range else "", allocated=allocation.reserved)

    def _make(self, record: NetworkRecord) -> None:
        """The kernel's network, then its record; a failed save undoes the first."""
        network = self.bridge_network(record)
        self.driver.create_network(network)
        try:
            self.store.save(record)
        except BaseException:
            self.driver.delete_network(network)
            raise
        self.pools[record.id] = self._pool_of(record)

    def remove(self, ref: str) -> None:
        """``DELETE /networks/{id}``."""
        with self.lock:
            record = self.find(ref)
            if record.name in PREDEFINED:
                raise Forbidden(f"{record.name} is a pre-defined network and cannot be removed")
            if record.endpoints:
                raise Forbidden(f"error while removing network: network {record.name} id {record.id} "
                                "has active endpoints")
            self.store.delete(record.id)
            self.pools.pop(record.id, None)
            if record.bridge:
                self.driver.delete_network(self.bridge_network(record))
        self.publish("destroy", record.id, {"name": record.name, "type": record.driver})

    def prune(self, filters_param: str | None) -> dict:
        """``POST /networks/prune``: every unused user network the filters keep."""
        wanted = filters.Filters.parse(filters_param).validate(filters.NETWORK_PRUNE_FILTERS)
        until = min((timestamps.timestamp_ns(value) for value in wanted.get("until")), default=None)
        deleted = []
        for record in self.store.all():
            if record.name in PREDEFINED or record.endpoints or not wanted.match_labels(record.labels):
                continue
            if until is not None and parse_go_time(record.created) >= until:
                continue
            try:
                self.remove(record.id)
            except EngineError:
                continue
            deleted.append(record.name)
        self.publish("prune", "", {"reclaimed": "0"})  # dockerd's, after each one's "destroy"
        return {"NetworksDeleted": deleted or None}

    # -- views

    def inspect(self, ref: str) -> dict:
        """``GET /networks/{id}``."""
        with self.lock:
            return self._view(self.find(ref, for_inspect=True), with_containers=True)

    def list(self, filters_param: str | None = None) -> list[dict]:
        """``GET /networks``: as 20.10 lists them, without their containers
        (so ``dangling`` tells the predefined networks from the others only)."""
        wanted = filters.Filters.parse(filters_param).validate(filters.NETWORK_FILTERS)
        dangling = wanted.get("dangling")
        if len(dangling) > 1:
            raise InvalidParameter('got more than one value for filter key "dangling"')
        if dangling and dangling[0] not in ("0", "false", "1", "true"):
            raise InvalidParameter('invalid value for filter \'dangling\', must be "true" (or "1"), '
                                   'or "false" (or "0")')
        for kind in wanted.get("type"):
            if kind not in ("custom", "builtin"):
                raise System(f"invalid filter: 'type'='{kind}'")
        shown = []
        with self.lock:
            records = sorted(self.store.all(), key=lambda r: parse_go_time(r.created))
        for record in records:
            builtin = record.name in PREDEFINED
            if not (wanted.exact_match("driver", record.driver) and wanted.match("name", record.name)
                    and wanted.match("id", record.id) and wanted.match_kv_list("label", record.labels)
                    and wanted.exact_match("scope", record.scope)):
                continue
            if dangling and (dangling[0] in ("1", "true")) == builtin:
                continue
            if wanted.contains("type") and not wanted.exact_match("type", "builtin" if builtin else "custom"):
                continue
            shown.append(self._view(record, with_containers=False))
        return shown

    @staticmethod
    def _view(record: NetworkRecord, with_containers: bool) -> dict:
        containers = {}
        if with_containers:
            containers = {container_id: {key: endpoint[key] for key in ("Name", "EndpointID", "MacAddress",
                                                                         "IPv4Address", "IPv6Address")}
                          for container_id, endpoint in record.endpoints.items()}
        return {"Name": record.name, "Id": record.id, "Created": record.created, "Scope": record.scope,
                "Driver": record.driver, "EnableIPv6": record.enable_ipv6,
                "IPAM": {"Driver": record.ipam_driver, "Options": record.ipam_options,
                         "Config": record.ipam_config},
                "Internal": record.internal, "Attachable": record.attachable, "Ingress": record.ingress,
                "ConfigFrom": {"Network": record.config_from}, "ConfigOnly": record.config_only,
                "Containers": containers, "Options": record.options, "Labels": record.labels}

    def bridge_networks(self) -> "list[BridgeNetwork]":
        """Every bridge network as the driver and the firewall see them."""
        return [self.bridge_network(record) for record in self.store.all() if record.bridge]

    # -- endpoints (the container lifecycle's)

    def allocate_endpoint(self, network: str, container_id: str, name: str, aliases: Iterable[str] = (),
                          ip: str | None = None, mac: str | None = None) -> Endpoint:
        """The container's endpoint on ``network`` (a name or ID): ``ip`` or
        the lowest free address, a MAC made from it unless given; recorded
        before it is returned."""
        with self.lock:
            record = self.find(network)
            if container_id in record.endpoints:
                raise Forbidden(f"container {container_id} is already attached to network {record.name}")
            pool = self.pools.get(record.id)
            if pool is None:
                raise Forbidden(f"network {record.name} has no addresses to give")
            address = self._request(record, pool, ip)
            try:
                endpoint_id = _endpoint_id()
                endpoint = Endpoint(endpoint_id, record.id, container_id,
                                    ipaddress.IPv4Interface(f"{address}/{pool.subnet.prefixlen}"),
                                    ipaddress.IPv4Address(record.gateway), mac or ipam.mac_address(address),
                                    host_veth(endpoint_id), tuple(aliases))
                record.endpoints[container_id] = {
                    "Name": name, "EndpointID": endpoint_id, "MacAddress": endpoint.mac,
                    "IPv4Address": str(endpoint.address), "IPv6Address": "", "Aliases": list(aliases),
                    "HostVeth": endpoint.host_veth}
                record.allocated.append(str(address))
                self.store.save(record)
            except BaseException:
                record.endpoints.pop(container_id, None)
                if str(address) in record.allocated:
                    record.allocated.remove(str(address))
                pool.release(address)
                raise
            return endpoint

    @staticmethod
    def _request(record: NetworkRecord, pool: ipam.Pool, ip: str | None) -> ipaddress.IPv4Address:
        """dockerd's endpoint address errors (libnetwork's assignAddress)."""
        wanted = None
        if ip:
            try:
                wanted = ipaddress.IPv4Address(ip)
            except ValueError:
                raise InvalidParameter(f"invalid IPv4 address: {ip}") from None
            if wanted not in pool.subnet:
                raise System(f"Invalid address {ip}: It does not belong to any of this network's subnets")
        try:
            return pool.request(wanted)
        except ipam.AddressError as e:
            if wanted is not None:
                raise Forbidden(str(e)) from None
            raise System(f"no available IPv4 addresses on this network's address pools: "
                         f"{record.name} ({record.id})") from None

    def release_endpoint(self, network: str, container_id: str) -> None:
        """Forgets the container's endpoint and frees its address (none: no error)."""
        with self.lock:
            record = self.find(network)
            endpoint = record.endpoints.pop(container_id, None)
            if endpoint is None:
                return
            address = ipaddress.IPv4Interface(endpoint["IPv4Address"]).ip
            if str(address) in record.allocated:
                record.allocated.remove(str(address))
            self.store.save(record)
            self.pools[record.id].release(address)
