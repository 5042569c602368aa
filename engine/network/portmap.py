"""Published ports as dockerd takes them: ``PortBindings`` / ``ExposedPorts``
checked at create with its errors, turned into host port requests at start
in its order, and host ports held by ``PortAllocator`` as dockerd holds them.

Why sockets: with the kernel doing the forwarding (no docker-proxy), nothing
would otherwise keep a host program from binding a published port, nor tell
us that one already has it; so, like dockerd's stand-in proxy when the
userland proxy is off, the allocator binds (and for TCP listens on) every
host port it hands out, and closes the socket when the port is released.
The errors are the ones dockerd's users see with its default userland
proxy (the bridge driver prefixes them with "driver failed programming
external connectivity on endpoint <name> (<id>): ").
"""
import errno
import ipaddress
import re
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from engine import errors

EPHEMERAL_RANGE_FILE = "/proc/sys/net/ipv4/ip_local_port_range"
DEFAULT_EPHEMERAL_RANGE = (49153, 65535)     # dockerd's fallback when the file cannot be read
MAX_EPHEMERAL_ATTEMPTS = 10                  # libnetwork's maxAllocatePortAttempts
PROTOCOLS = ("tcp", "udp")


@dataclass(frozen=True)
class RequestedPort:
    """One host binding asked for a container port: host_start == host_end
    is that port, 0 is any of the ephemeral range, else one of the range."""
    proto: str
    container_port: int
    host_ip: str                       # "" = every address of the host
    host_start: int = 0
    host_end: int = 0


class PortAllocationError(errors.System):
    """A host port could not be had (dockerd answers these with a 500)."""


def split_proto_port(raw: str) -> tuple[str, str]:
    """go-connections' nat.SplitProtoPort: "80/udp" -> ("udp", "80"), "80" -> ("tcp", "80")."""
    parts = raw.split("/")
    if not raw or not parts[0]:
        return "", ""
    if len(parts) == 1 or not parts[1]:
        return "tcp", parts[0]
    return parts[1], parts[0]


def _go_uint16(text: str) -> int:
    """Go's strconv.ParseUint(text, 10, 16): digits only, at most 65535."""
    if not re.fullmatch(r"[0-9]+", text) or int(text) > 65535:
        raise ValueError(text)
    return int(text)


def parse_port_range(raw: str) -> tuple[int, int]:
    """nat.ParsePortRangeToInt: "" -> (0, 0), "80" -> (80, 80), "8000-8010" -> (8000, 8010)."""
    if not raw:
        return 0, 0
    if "-" not in raw:
        port = _go_uint16(raw)
        return port, port
    parts = raw.split("-")
    start, end = _go_uint16(parts[0]), _go_uint16(parts[1])
    if end < start:
        raise ValueError(raw)
    return start, end


def validate_port_bindings(port_bindings: Mapping | None) -> None:
    """dockerd's check of HostConfig.PortBindings at create (validatePortBindings)."""
    for key, bindings in (port_bindings or {}).items():
        _, port = split_proto_port(key)
        if port:
            try:
                _go_uint16(port)
            except ValueError:
                raise errors.InvalidParameter(f'invalid port specification: "{port}"') from None
        for binding in bindings or []:
            host_port = (binding or {}).get("HostPort") or ""
            try:
                parse_port_range(split_proto_port(host_port)[1])
            except ValueError:
                raise errors.InvalidParameter(f'invalid port specification: "{host_port}"') from None


def requested_ports(port_bindings: Mapping | None, exposed_ports: Mapping | None,
                    publish_all: bool = False) -> list[RequestedPort]:
    """The host ports to get at start, explicit ones first so a random pick
    cannot take a port asked for by number (nat.SortPortMap's order); with
    publish_all, every exposed port without a binding gets a random one.
    Only IPv4 is published: an IPv6 HostIp is left out, an unparsable one
    means every address (net.ParseIP's nil, as dockerd)."""
    validate_port_bindings(port_bindings)
    port_bindings = port_bindings or {}
    requests = []
    for key in {**dict.fromkeys(exposed_ports or {}), **dict.fromkeys(port_bindings)}:
        proto, port = split_proto_port(key)
        bindings = port_bindings.get(key) or []
        if not bindings and not publish_all:
            continue
        if proto not in PROTOCOLS:
            raise errors.Unimplemented(f"publishing {proto} ports is not supported: {key}")
        container_port = _go_uint16(port)
        for binding in bindings or [{}]:
            binding = binding or {}
            host_ip = _ipv4_or_any(binding.get("HostIp") or "")
            if host_ip is None:
                continue
            start, end = parse_port_range(split_proto_port(binding.get("HostPort") or "")[1])
            requests.append(RequestedPort(proto, container_port, host_ip, start, end))
    return sorted(requests, key=lambda r: (-r.host_start, r.container_port, r.proto != "tcp"))


def _ipv4_or_any(text: str) -> str | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return ""
    if address.version != 4:
        return None
    return "" if address.is_unspecified else str(address)


def ephemeral_range(path: str = EPHEMERAL_RANGE_FILE) -> tuple[int, int]:
    """The kernel's ephemeral port range, which dockerd picks random host ports from."""
    try:
        with open(path) as f:
            start, end = (int(field) for field in f.read().split())
        return start, end
    except (OSError, ValueError):
        return DEFAULT_EPHEMERAL_RANGE


class PortAllocator:
    """Host ports handed out to published ports, each held by a bound socket
    until released; random ones go round the ephemeral range from after the
    last one given, as dockerd's portallocator does."""

    def __init__(self, ephemeral: tuple[int, int] | None = None):
        self.ephemeral = ephemeral or ephemeral_range()
        self._held: dict[tuple[str, str, int], socket.socket] = {}
        self._last: dict[tuple[str, str, int, int], int] = {}
        self._lock = threading.Lock()

    def allocate(self, proto: str, host_ip: str = "", start: int = 0, end: int = 0) -> int:
        """A host port for proto on host_ip ("" = every address): that port
        when start == end, else the next free one of [start, end] (0, 0: the
        ephemeral range, trying up to 10 ports that something else holds)."""
        if proto not in PROTOCOLS:
            raise PortAllocationError("unknown protocol")
        address = host_ip or "0.0.0.0"
        attempts = MAX_EPHEMERAL_ATTEMPTS if start == 0 else 1
        with self._lock:
            for attempt in range(attempts):
                port = self._pick(proto, address, start, end)
                try:
                    self._held[(proto, address, port)] = _bound_socket(proto, address, port)
                    return port
                except PortAllocationError:
                    if attempt == attempts - 1:
                        raise

    def release(self, proto: str, host_ip: str, port: int) -> None:
        """Gives the port back (no error when it was not held)."""
        with self._lock:
            held = self._held.pop((proto, host_ip or "0.0.0.0", port), None)
        if held is not None:
            held.close()

    def held(self) -> list[tuple[str, str, int]]:
        """(proto, address, port) of every port held now."""
        with self._lock:
            return sorted(self._held)

    def close(self) -> None:
        with self._lock:
            for held in self._held.values():
                held.close()
            self._held.clear()

    def _pick(self, proto: str, address: str, start: int, end: int) -> int:
        if start and start == end:
            if (proto, address, start) in self._held:
                raise PortAllocationError(f"Bind for {address}:{start} failed: port is already allocated")
            return start
        if not start and not end:
            start, end = self.ephemeral
        elif not start or not end or end < start:
            raise PortAllocationError(f"invalid port range: {start}-{end}")
        key = (proto, address, start, end)
        port = self._last.get(key, end)
        for _ in range(end - start + 1):
            port = start if port >= end else port + 1
            if (proto, address, port) not in self._held:
                self._last[key] = port
                return port
        raise PortAllocationError("all ports are allocated")


def _bound_socket(proto: str, address: str, port: int) -> socket.socket:
    """A socket holding address:port (listening for TCP, as dockerd's stand-in
    proxy does, so that even SO_REUSEADDR binders are kept out)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
    try:
        sock.bind((address, port))
        if proto == "tcp":
            sock.listen(1)
    except OSError as err:
        sock.close()
        reason = {errno.EADDRINUSE: "address already in use",
                  errno.EADDRNOTAVAIL: "cannot assign requested address"}.get(err.errno, err.strerror)
        raise PortAllocationError(
            f"Error starting userland proxy: listen {proto}4 {address}:{port}: bind: {reason}") from None
    return sock
