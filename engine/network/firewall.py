"""The engine's own nftables table (``ip engine-py``): NAT out of its bridges,
published ports, isolation between them, written whole from the engine's
state and swapped in as one atomic transaction.

Why whole-table: every change (a container started or stopped, a network
made or removed) and the engine's start compute the complete table and
replace it in one transaction, so the kernel never holds a half-changed
table and a restart reconciles whatever a crash left, by construction.

The rules are dockerd's bridge rules (libnetwork's iptables chains) with
the userland proxy off, plus loopback access without docker-proxy:

* masquerade of a non-internal network's traffic leaving by another
  interface (``-s subnet ! -o bridge -j MASQUERADE``);
* published ports DNATed when addressed to the host: from outside
  (prerouting) and from the host itself, 127.0.0.1 included (output), both
  only for local destinations (``fib daddr type local``, dockerd's
  ``-m addrtype --dst-type LOCAL``) or the binding's host address;
* loopback-sourced traffic going into a bridge is masqueraded (the driver
  sets ``route_localnet`` on the bridge so 127.0.0.1 may be routed there),
  and a container reaching its own published port (hairpin) is masqueraded
  so the reply comes back through the host;
* forwarding: replies and DNATed connections into a bridge are accepted,
  anything else new into it is dropped (dockerd's FORWARD policy DROP, for
  our bridges only); no traffic between two of our bridges; an internal
  bridge keeps everything within itself; icc=false drops traffic between
  two containers of one bridge (seen by the forward hook through
  br_netfilter, as dockerd relies on).

Every rule names one of our bridges, so the table accepts or drops only the
engine's own traffic; an accept here is not final for other tables' chains
(nftables runs every base chain of a hook), and the standard priorities
(dstnat, srcnat, filter) keep NAT and filtering where other tables expect.

libnftables is called in-process through ctypes (Debian's libnftables1):
one context per Firewall, whose netlink socket is opened in the network
namespace the Firewall is made in, and no ``nft`` process per change.
"""
import ctypes
import functools
import ipaddress
import re
import threading
from collections.abc import Iterable

from .types import BridgeNetwork, PortBinding

LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")
_EVERY_ADDRESS = ("", "0.0.0.0")
_LIBRARY = "libnftables.so.1"


class NftablesError(OSError):
    """A transaction libnftables refused; the table is as it was before."""


def ruleset(table: str, networks: Iterable[BridgeNetwork], ports: Iterable[PortBinding]) -> str:
    """The nftables script that replaces ``ip <table>`` with the rules for
    these networks and published ports (one transaction when run as one buffer)."""
    networks = sorted(networks, key=lambda n: n.bridge)
    internal = {n.bridge for n in networks if n.internal}
    ports = sorted((p for p in ports if _publishable(p, internal)), key=_binding_order)
    name = _table_name(table)
    chains = (
        _base_chain("prerouting", "nat hook prerouting priority dstnat", ["fib daddr type local jump published"]),
        _base_chain("output", "nat hook output priority -100", ["fib daddr type local jump published"]),
        _chain("published", [_dnat(p) for p in ports]),
        _base_chain("postrouting", "nat hook postrouting priority srcnat", _postrouting(networks, ports)),
        _base_chain("forward", "filter hook forward priority filter", _forward(networks)),
    )
    return f"table ip {name}\ndelete table ip {name}\ntable ip {name} {{\n" + "\n".join(chains) + "}\n"


def _publishable(binding: PortBinding, internal: set[str]) -> bool:
    """IPv4 bindings of non-internal networks: this is an ``ip`` table, and an
    internal network has no way in (dockerd programs no external connectivity there)."""
    if binding.bridge in internal:
        return False
    return binding.host_ip in _EVERY_ADDRESS or ipaddress.ip_address(binding.host_ip).version == 4


def _binding_order(binding: PortBinding) -> tuple:
    return (binding.proto, binding.host_port, binding.host_ip, binding.container_ip, binding.container_port)


def _dnat(binding: PortBinding) -> str:
    match = "" if binding.host_ip in _EVERY_ADDRESS else f"ip daddr {ipaddress.IPv4Address(binding.host_ip)} "
    container = ipaddress.IPv4Address(binding.container_ip)
    return f"{match}{_proto(binding)} dport {int(binding.host_port)} dnat to {container}:{int(binding.container_port)}"


def _postrouting(networks: list[BridgeNetwork], ports: list[PortBinding]) -> list[str]:
    rules = []
    for network in networks:
        if network.internal:
            continue
        bridge = _quoted(network.bridge)
        if network.masquerade:
            rules.append(f"ip saddr {network.subnet} oifname != {bridge} masquerade")
        rules.append(f"ip saddr {LOOPBACK} oifname {bridge} masquerade")
    hairpins = (f"ip saddr {ipaddress.IPv4Address(p.container_ip)} ip daddr {ipaddress.IPv4Address(p.container_ip)} "
                f"{_proto(p)} dport {int(p.container_port)} masquerade" for p in ports)
    return rules + list(dict.fromkeys(hairpins))    # one per container port published on several host ports


def _forward(networks: list[BridgeNetwork]) -> list[str]:
    rules = []
    for network in networks:
        bridge = _quoted(network.bridge)
        others = [_quoted(n.bridge) for n in networks if n.bridge != network.bridge]
        rules.append(f"iifname {bridge} oifname {bridge} {'accept' if network.icc else 'drop'}")
        if others:
            rules.append(f"iifname {bridge} oifname {{ {', '.join(others)} }} drop")
        if network.internal:
            rules += [f"iifname {bridge} drop", f"oifname {bridge} drop"]
            continue
        rules += [
            f"iifname {bridge} accept",
            f"oifname {bridge} ct state established,related accept",
            f"oifname {bridge} ct status dnat accept",
            f"oifname {bridge} drop",
        ]
    return rules


def _base_chain(name: str, hook: str, rules: list[str]) -> str:
    return _chain(name, [f"type {hook}; policy accept;"] + rules)


def _chain(name: str, lines: list[str]) -> str:
    body = "".join(f"\t\t{line}\n" for line in lines)
    return f"\tchain {name} {{\n{body}\t}}\n"


def _proto(binding: PortBinding) -> str:
    if binding.proto not in ("tcp", "udp"):
        raise ValueError(f"published port {binding.host_port}: unknown protocol {binding.proto!r}")
    return binding.proto


def _table_name(name: str) -> str:
    """A table name as nftables reads it unquoted (letters, digits, - and _)."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", name):
        raise ValueError(f"invalid nftables table name: {name!r}")
    return name


def _quoted(name: str) -> str:
    """A table or interface name as an nftables string; names that could
    break out of the quotes are refused rather than escaped."""
    if not name or any(c in name for c in '"\\\n') or not name.isprintable():
        raise ValueError(f"invalid name for an nftables rule: {name!r}")
    return f'"{name}"'


@functools.cache
def _libnftables() -> ctypes.CDLL:
    """libnftables' C API (nftables/libnftables.h), the few calls we use."""
    try:
        lib = ctypes.CDLL(_LIBRARY)
    except OSError as err:
        raise NftablesError(f"loading {_LIBRARY}: {err} (Debian package libnftables1)") from None
    lib.nft_ctx_new.restype = ctypes.c_void_p
    lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
    lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
    lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
    lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    return lib


class Firewall:
    """The engine's table in the network namespace this object was made in
    (libnftables opens its netlink socket when the context is made)."""

    def __init__(self, table: str = "engine-py"):
        self.table = _table_name(table)
        self._lib = _libnftables()
        self._lock = threading.Lock()
        self._ctx = self._lib.nft_ctx_new(0)
        if not self._ctx:
            raise NftablesError(f"nftables: cannot make a context for table ip {table}")
        self._lib.nft_ctx_buffer_output(self._ctx)
        self._lib.nft_ctx_buffer_error(self._ctx)

    def apply(self, networks: Iterable[BridgeNetwork], ports: Iterable[PortBinding]) -> None:
        """Replaces the whole table with the rules for this state, atomically."""
        self._run(ruleset(self.table, networks, ports), f"replacing table ip {self.table}")

    def remove(self) -> None:
        """Deletes the table (no error when it is not there)."""
        name = self.table
        self._run(f"table ip {name}\ndelete table ip {name}\n", f"deleting table ip {self.table}")

    def close(self) -> None:
        with self._lock:
            if self._ctx:
                self._lib.nft_ctx_free(self._ctx)
                self._ctx = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _run(self, script: str, what: str) -> None:
        with self._lock:
            if not self._ctx:
                raise NftablesError(f"nftables: {what}: the firewall is closed")
            if self._lib.nft_run_cmd_from_buffer(self._ctx, script.encode()) != 0:
                raise NftablesError(f"nftables: {what}: {_first_error(self._lib.nft_ctx_get_error_buffer(self._ctx))}")


def _first_error(buffer: bytes | None) -> str:
    """The first message of libnftables' error text (the lines after it
    repeat the input with carets under the culprit)."""
    for line in (buffer or b"").decode(errors="replace").splitlines():
        if line.startswith("Error: "):
            return line[len("Error: "):]
    return "failed with no message"


class NoFirewall:
    """--iptables=false: the engine leaves the host's packet filtering alone
    (no NAT, no isolation; published ports are not forwarded), as dockerd."""

    def apply(self, networks: Iterable[BridgeNetwork], ports: Iterable[PortBinding]) -> None:
        pass
