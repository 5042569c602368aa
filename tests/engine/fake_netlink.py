"""A recording stand-in for engine.network.netlink: the bridge driver's unit
tests run without root against it and assert on the calls and on the links,
addresses and routes left in each namespace.

`FakeKernel` stands where the module does (`kernel.Netlink.here()`,
`kernel.Netlink.inside(path)`, `kernel.create_netns(path)`, ...); its errors
are the real module's (errno and wording), so error paths can be tested too."""
import errno
import ipaddress
import os
from dataclasses import dataclass, field

HOST = "<host>"  # the caller's own namespace


@dataclass
class FakeLink:
    kind: str                          # "loopback" | "bridge" | "veth"
    up: bool = False
    mtu: int = 1500
    mac: str = ""
    master: str | None = None
    hairpin: bool = False
    addresses: list[str] = field(default_factory=list)
    peer: tuple[str, str] | None = None  # (netns, name) of a veth's other end


class FakeKernel:
    """Network namespaces as dicts: netns -> {link name: FakeLink}, plus the calls made."""

    def __init__(self, fail=None, host_routes=()):
        self.calls = []
        self.fail = fail or {}  # call name -> OSError to raise
        self.namespaces = {HOST: {"lo": FakeLink("loopback", up=True, mtu=65536)}}
        self.default_routes = {}  # netns -> gateway
        self.host_routes = [ipaddress.IPv4Network(r) for r in host_routes]  # the host's other routes
        self.sysctls = {}
        self.Netlink = _Doors(self)

    def record(self, name, *args):
        self.calls.append((name,) + args)
        if name in self.fail:
            raise self.fail[name]

    def create_netns(self, path):
        self.record("create_netns", path)
        if path in self.namespaces:
            raise OSError(errno.EEXIST, f"creating network namespace {path}: File exists")
        self.namespaces[path] = {"lo": FakeLink("loopback", up=True, mtu=65536)}

    def delete_netns(self, path):
        """A namespace's links die with it, and so do their veth peers elsewhere."""
        self.record("delete_netns", path)
        for link in self.namespaces.pop(path, {}).values():
            if link.peer:
                self.namespaces.get(link.peer[0], {}).pop(link.peer[1], None)
        self.default_routes.pop(path, None)

    def netns_under(self, directory):
        return sorted(path for path in self.namespaces if os.path.dirname(path) == directory)

    def set_sysctl(self, name, value):
        self.record("set_sysctl", name, value)
        self.sysctls[name] = str(value)

    def links(self, netns=HOST):
        return self.namespaces[netns]


class _Doors:
    """kernel.Netlink: here() and inside(path), as the class methods of the real one."""

    def __init__(self, kernel):
        self._kernel = kernel

    def here(self):
        return FakeNetlink(self._kernel, HOST)

    def inside(self, netns_path):
        self._kernel.record("inside", netns_path)
        if netns_path not in self._kernel.namespaces:
            raise FileNotFoundError(errno.ENOENT, f"joining network namespace {netns_path}: No such file or directory")
        return FakeNetlink(self._kernel, netns_path)


class FakeNetlink:
    """One "socket" bound to a namespace of the fake kernel."""

    def __init__(self, kernel, netns):
        self._kernel, self.netns = kernel, netns
        self.closed = False

    def close(self):
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _record(self, name, *args):
        self._kernel.record(name, self.netns, *args)

    @property
    def _links(self):
        return self._kernel.namespaces[self.netns]

    def _link(self, name, what):
        if name not in self._links:
            raise OSError(errno.ENODEV, f"{what}: No such device")
        return self._links[name]

    def links(self):
        return list(self._links)

    def link_exists(self, name):
        return name in self._links

    def create_bridge(self, name, mtu=None):
        self._record("create_bridge", name, mtu)
        if name in self._links:
            raise OSError(errno.EEXIST, f"creating bridge {name}: File exists")
        self._links[name] = FakeLink("bridge", mtu=mtu or 1500)

    def create_veth(self, name, peer_name, peer_netns_path, mtu=None):
        self._record("create_veth", name, peer_name, peer_netns_path, mtu)
        what = f"creating veth {name} with peer {peer_name} in {peer_netns_path}"
        peers = self._kernel.namespaces.get(peer_netns_path)
        if peers is None:
            raise FileNotFoundError(errno.ENOENT, f"{what}: No such file or directory")
        if name in self._links or peer_name in peers:
            raise OSError(errno.EEXIST, f"{what}: File exists")
        self._links[name] = FakeLink("veth", mtu=mtu or 1500, peer=(peer_netns_path, peer_name))
        peers[peer_name] = FakeLink("veth", mtu=mtu or 1500, peer=(self.netns, name))

    def set_master(self, name, bridge):
        self._record("set_master", name, bridge)
        what = f"attaching {name} to bridge {bridge}"
        self._link(bridge, what)
        self._link(name, what).master = bridge

    def set_hairpin(self, name):
        self._record("set_hairpin", name)
        what = f"setting hairpin mode on {name}"
        link = self._link(name, what)
        if link.master is None:
            raise OSError(errno.EOPNOTSUPP, f"{what}: Operation not supported")
        link.hairpin = True

    def set_up(self, name):
        self._record("set_up", name)
        self._link(name, f"setting link {name} up").up = True

    def set_mtu(self, name, mtu):
        self._record("set_mtu", name, mtu)
        self._link(name, f"setting mtu {mtu} on {name}").mtu = mtu

    def set_mac(self, name, mac):
        self._record("set_mac", name, mac)
        self._link(name, f"setting mac address {mac} on {name}").mac = mac

    def delete_link(self, name):
        self._record("delete_link", name)
        link = self._links.pop(name, None)
        if link and link.peer:
            self._kernel.namespaces.get(link.peer[0], {}).pop(link.peer[1], None)

    def add_address(self, name, address):
        self._record("add_address", name, address)
        link = self._link(name, f"adding address {address} to {name}")
        if address not in link.addresses:
            link.addresses.append(address)

    def addresses(self, name):
        return list(self._link(name, f"listing addresses of {name}").addresses)

    def add_default_route(self, gateway_ip):
        self._record("add_default_route", gateway_ip)
        gateway = ipaddress.IPv4Address(gateway_ip)
        if not any(gateway in route for route in self.routes()):
            raise OSError(errno.ENETUNREACH, f"adding default route via {gateway_ip}: "
                                             f"{os.strerror(errno.ENETUNREACH)} (Nexthop has invalid gateway)")
        self._kernel.default_routes[self.netns] = gateway_ip

    def routes(self):
        """The prefix routes of the addresses on links that are up (the kernel's), and the host's others."""
        found = [ipaddress.IPv4Interface(a).network for link in self._links.values()
                 if link.up and link.kind != "loopback" for a in link.addresses]
        return found + (self._kernel.host_routes if self.netns == HOST else [])
