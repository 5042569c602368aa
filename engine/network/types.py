"""The values the network modules hand each other: what the bridge driver
needs of a network and of an endpoint, apart from how the records are stored."""
import ipaddress
from dataclasses import dataclass, field


@dataclass(frozen=True)
class BridgeNetwork:
    """One bridge network as the kernel sees it: a bridge link holding the
    gateway address, with NAT out unless internal, isolated from the others."""
    network_id: str
    bridge: str                        # the kernel link's name: "engine-py0", "br-<id12>"
    subnet: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address
    internal: bool = False
    masquerade: bool = True            # com.docker.network.bridge.enable_ip_masquerade
    icc: bool = True                   # com.docker.network.bridge.enable_icc
    mtu: int = 1500


@dataclass(frozen=True)
class PortBinding:
    """One published port: traffic to host_ip:host_port goes to
    container_ip:container_port ("" host_ip: every address of the host)."""
    proto: str                         # "tcp" | "udp"
    host_ip: str
    host_port: int
    container_ip: str
    container_port: int
    bridge: str


@dataclass(frozen=True)
class Endpoint:
    """A container's interface on one network (dockerd's EndpointSettings)."""
    endpoint_id: str
    network_id: str
    container_id: str
    address: ipaddress.IPv4Interface   # IP with the subnet's prefix
    gateway: ipaddress.IPv4Address
    mac: str
    host_veth: str                     # the host end, in the engine's network namespace
    aliases: tuple[str, ...] = field(default=())
