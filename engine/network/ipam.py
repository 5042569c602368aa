"""IP address management as dockerd 20.10's default IPAM (libnetwork's
ipam/allocator.go) does it for local bridge networks: pools cut from the
default address pools, a network's subnet checked against the others, and
addresses handed out lowest-free-first (not serially: an address freed by a
removed container is the next one given, as dockerd does, measured).

The errors are dockerd's words and statuses (measured against 20.10; where
libnetwork's error carries no errdefs kind dockerd answers 500, and so do we).
"""
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from engine.errors import Forbidden, InvalidParameter, NotFound, System, Unimplemented

# libnetwork's ipamutils.localScopeDefaultNetworks: (base, size of each pool)
DEFAULT_ADDRESS_POOLS = (("172.17.0.0/16", 16), ("172.18.0.0/16", 16), ("172.19.0.0/16", 16),
                         ("172.20.0.0/14", 16), ("172.24.0.0/14", 16), ("172.28.0.0/14", 16),
                         ("192.168.0.0/16", 20))

OUT_OF_RANGE = "Requested address is out of range"
IN_USE = "Address already in use"
NO_ADDRESSES = "No available addresses on this pool"


class AddressError(Exception):
    """One of libnetwork's ipamapi errors; the caller words it for its context."""


def address_pools(pools: Iterable[tuple[str, int]] = DEFAULT_ADDRESS_POOLS) -> list[ipaddress.IPv4Network]:
    """Every candidate subnet, in order: each base cut into pools of its size
    (``--default-address-pool base=10.10.0.0/16,size=24`` replaces the defaults)."""
    cut = []
    for base, size in pools:
        network = ipaddress.IPv4Network(base, strict=False)
        if size < network.prefixlen or size > 32:
            raise InvalidParameter(f"invalid pool size {size} for base pool {base}")
        cut.extend(network.subnets(new_prefix=size))
    return cut


def routes_from_proc(text: str) -> list[ipaddress.IPv4Network]:
    """The destinations of /proc/net/route's routes (the default route left
    out: dockerd's route check ignores a route without a destination)."""
    found = []
    for line in text.splitlines()[1:]:
        cols = line.split()
        if len(cols) < 8:
            continue
        destination = ipaddress.IPv4Address(int(cols[1], 16).to_bytes(4, "little"))
        mask = bin(int(cols[7], 16)).count("1")
        if mask:
            found.append(ipaddress.IPv4Network(f"{destination}/{mask}", strict=False))
    return found


def choose_subnet(candidates: Iterable[ipaddress.IPv4Network], taken: Iterable[ipaddress.IPv4Network],
                  avoid: Iterable[ipaddress.IPv4Network] = ()) -> ipaddress.IPv4Network:
    """The first candidate overlapping no network's subnet and no host route."""
    blocked = [*taken, *avoid]
    for candidate in candidates:
        if not any(candidate.overlaps(other) for other in blocked):
            return candidate
    raise NotFound("could not find an available, non-overlapping IPv4 address pool among the defaults "
                   "to assign to the network")


@dataclass
class Pool:
    """One network's addresses: the subnet (network and broadcast addresses
    never given out), the range containers get theirs from, and what is taken."""
    subnet: ipaddress.IPv4Network
    range_first: int            # ordinals within the subnet
    range_last: int
    taken: set[int]

    @classmethod
    def new(cls, subnet: ipaddress.IPv4Network, ip_range: ipaddress.IPv4Network | None = None,
            taken: Iterable[str] = ()) -> "Pool":
        """``ip_range`` is read as libnetwork reads it: its host part within
        the subnet (so a range outside the subnet lands inside it, as on 20.10)."""
        last = subnet.num_addresses - 1
        first, end = 0, last
        if ip_range is not None:
            first = int(ip_range.network_address) & int(subnet.hostmask)
            end = min(first + ip_range.num_addresses - 1, last)
        pool = cls(subnet, first, end, {0, last} if subnet.prefixlen < 32 else {0})
        for address in taken:
            pool.taken.add(pool.ordinal(ipaddress.IPv4Address(address)))
        return pool

    def ordinal(self, address: ipaddress.IPv4Address) -> int:
        return int(address) - int(self.subnet.network_address)

    def request(self, address: ipaddress.IPv4Address | None = None) -> ipaddress.IPv4Address:
        """``address`` if free, else the lowest free one of the range."""
        if address is not None:
            if address not in self.subnet:
                raise AddressError(OUT_OF_RANGE)
            ordinal = self.ordinal(address)
            if ordinal in self.taken:
                raise AddressError(IN_USE)
        else:
            ordinal = next((n for n in range(self.range_first, self.range_last + 1) if n not in self.taken), None)
            if ordinal is None:
                raise AddressError(NO_ADDRESSES)
        self.taken.add(ordinal)
        return self.subnet.network_address + ordinal

    def release(self, address: ipaddress.IPv4Address) -> None:
        if address in self.subnet and 0 < self.ordinal(address) < self.subnet.num_addresses - 1:
            self.taken.discard(self.ordinal(address))


@dataclass
class Allocation:
    """A new network's IPAM result: the ``IPAM.Config`` entry inspect shows,
    the subnet, gateway, range and the reserved addresses (gateway, aux)."""
    shown: dict
    subnet: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address
    ip_range: ipaddress.IPv4Network | None
    reserved: list[str]


def parse_cidr(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """Go's net.ParseCIDR: "address/prefix" only (host bits allowed), the
    network it names; ValueError otherwise."""
    address, slash, prefix = text.partition("/")
    if not slash or not prefix.isdigit():
        raise ValueError(text)
    return ipaddress.ip_network(f"{address}/{int(prefix)}", strict=False)


def check_config(config: dict) -> None:
    """The first checks of one ``IPAM.Config`` entry (dockerd's getIpamConfig
    and IpamConf.Validate), made before anything is allocated."""
    if not isinstance(config, dict) or not all(isinstance(config.get(key) or "", str)
                                               for key in ("Subnet", "IPRange", "Gateway")):
        raise InvalidParameter("json: cannot unmarshal value into Go struct field IPAM.IPAM.Config "
                               "of type network.IPAMConfig")
    aux = config.get("AuxiliaryAddresses") or {}
    if not isinstance(aux, dict) or not all(isinstance(value, str) for value in aux.values()):
        raise InvalidParameter("json: cannot unmarshal value into Go struct field IPAMConfig.IPAM.Config"
                               ".AuxiliaryAddresses of type map[string]string")
    subnet = config.get("Subnet") or ""
    try:
        parsed = parse_cidr(subnet)
    except ValueError:
        raise System(f"Invalid subnet {subnet} : invalid CIDR address: {subnet}") from None
    if parsed.version == 6:
        raise Unimplemented(f"IPv6 subnets are not supported by this engine: {subnet}")
    gateway = config.get("Gateway") or ""
    if gateway and not _is_ip(gateway):
        raise System(f"invalid gateway address {gateway} in Ipam configuration")


def allocate_network(name: str, configs: list[dict], taken: list[ipaddress.IPv4Network],
                     candidates: Iterable[ipaddress.IPv4Network], avoid: Iterable[ipaddress.IPv4Network] = ()
                     ) -> Allocation:
    """The subnet, gateway and aux addresses of a new bridge network from the
    first of its ``IPAM.Config`` (none: a pool from the defaults), each
    already through ``check_config``, with dockerd's errors in its order."""
    if not configs:
        subnet = choose_subnet(candidates, taken, avoid)
        pool = Pool.new(subnet)
        gateway = pool.request()
        return Allocation({"Subnet": str(subnet), "Gateway": str(gateway)}, subnet, gateway, None,
                          [str(gateway)])
    config = configs[0]
    subnet = parse_cidr(config["Subnet"])
    if any(subnet.overlaps(other) for other in taken):
        raise Forbidden("Pool overlaps with other one on this address space")
    ip_range = None
    if config.get("IPRange"):
        try:
            ip_range = parse_cidr(config["IPRange"])
            if ip_range.version != 4:
                raise ValueError(config["IPRange"])
        except ValueError:
            raise System(f'failed to parse pool request for address space "LocalDefault" pool "{config["Subnet"]}" '
                         f'subpool "{config["IPRange"]}": Invalid Address SubPool') from None
    pool = Pool.new(subnet, ip_range)
    wanted = ipaddress.ip_address(config["Gateway"]) if config.get("Gateway") else None
    try:
        gateway = pool.request(wanted)
    except AddressError as e:
        raise System(f"failed to allocate gateway ({config.get('Gateway') or ''}): {e}") from None
    reserved = [str(gateway)]
    for key, value in (config.get("AuxiliaryAddresses") or {}).items():
        if not _is_ip(value):
            raise System(f"non parsable secondary ip address ({key}:{value}) passed for network {name}")
        address = ipaddress.ip_address(value)
        if address not in subnet:
            raise Forbidden(f"auxiliary address: ({key}:{value}) must belong to the master pool: {subnet}")
        try:
            reserved.append(str(pool.request(address)))
        except AddressError as e:
            raise System(f"failed to allocate secondary ip address ({key}:{value}): {e}") from None
    return Allocation(shown_config(config), subnet, gateway, ip_range, reserved)


def shown_config(config: dict) -> dict:
    """An ``IPAM.Config`` entry as inspect shows it: what was given, in dockerd's key order."""
    return {key: config[key] for key in ("Subnet", "IPRange", "Gateway", "AuxiliaryAddresses") if config.get(key)}


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def mac_address(address: ipaddress.IPv4Address) -> str:
    """dockerd's MAC for an IPv4 endpoint: 02:42 and the address's four bytes."""
    return "02:42:" + ":".join(f"{byte:02x}" for byte in address.packed)
