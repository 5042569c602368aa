"""The engine's nftables table in a real kernel, entirely inside network
namespaces this module makes: a "host" netns holding the bridges and the
table (the engine's netns), an "outside" netns on a veth behind it, and a
netns per container, each with a tiny TCP/UDP echo server on port 80.

Layout (10.231.x.0/24 are the bridges, 192.0.2.0/24 the uplink):
    outside 192.0.2.2 --- 192.0.2.1 host [fb0: c1 .2, c2 .3 | fb1: c3 | fb2 (internal): c4]
The outside netns routes 10.231.0.0/16 back through the host, so without
the table everything reaches everything: each test shows the difference
the table makes. Deleting the namespaces removes links and table alike.
"""
import ctypes
import ipaddress
import os
import subprocess
import sys
import threading

import pytest

from engine.network.firewall import Firewall, NftablesError
from engine.network.portmap import PortAllocator
from engine.network.types import BridgeNetwork, PortBinding

pytestmark = pytest.mark.root

CLONE_NEWNET = 0x40000000
UPLINK_HOST, UPLINK_OUTSIDE = "192.0.2.1", "192.0.2.2"
_libc = ctypes.CDLL(None, use_errno=True)

ECHO_SERVER = r"""
import socket, sys, threading
def tcp():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(16); ready.release()
    while True:
        c, peer = s.accept()
        with c:
            c.sendall(c.recv(64) + b" from " + peer[0].encode())
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", int(sys.argv[1]))); ready.release()
    while True:
        data, peer = s.recvfrom(64)
        s.sendto(data + b" from " + peer[0].encode(), peer)
ready = threading.Semaphore(0)
for serve in (tcp, udp):
    threading.Thread(target=serve, daemon=True).start()
ready.acquire(); ready.acquire(); print("ready", flush=True); sys.stdin.read()
"""

CLIENT = r"""
import socket, sys
host, port, proto = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
s.settimeout(1.5)
try:
    s.connect((host, port)); s.send(b"hi"); print(s.recv(64).decode())
except OSError as err:
    print(f"failed: {err}")
"""


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def reach(netns: str, host: str, port: int, proto: str = "tcp") -> str:
    """What an echo client in this netns hears from host:port ("failed: ..." if nothing)."""
    out = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", CLIENT, host, str(port), proto],
                         check=True, capture_output=True, text=True, timeout=10)
    return out.stdout.strip()


def made_in_netns(path: str, factory):
    """factory() called in a short-lived thread joined to that netns, so what
    it opens (libnftables' socket) belongs there; this thread's netns is unchanged."""
    result = {}

    def run():
        fd = os.open(path, os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                result["error"] = OSError(ctypes.get_errno(), f"setns {path}")
                return
        finally:
            os.close(fd)
        try:
            result["value"] = factory()
        except BaseException as err:  # handed to the caller's thread
            result["error"] = err

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


class Lab:
    """The namespaces, links and servers of this module, and their names."""

    def __init__(self):
        tag = f"{os.getpid():x}"[-5:]
        self.host, self.outside = f"fwh-{tag}", f"fwo-{tag}"
        self.bridges = [f"fb{i}-{tag}" for i in range(3)]
        self.containers = {f"c{i}": f"fwc{i}-{tag}" for i in range(1, 5)}
        self.addresses = {"c1": "10.231.0.2", "c2": "10.231.0.3", "c3": "10.231.1.2", "c4": "10.231.2.2"}
        self.on_bridge = {"c1": 0, "c2": 0, "c3": 1, "c4": 2}
        self.tag = tag
        self.servers: list[subprocess.Popen] = []
        self.namespaces: list[str] = []

    def network(self, index: int, **options) -> BridgeNetwork:
        return BridgeNetwork(f"net{index}", self.bridges[index], ipaddress.IPv4Network(f"10.231.{index}.0/24"),
                             ipaddress.IPv4Address(f"10.231.{index}.1"), **options)

    def build(self):
        for netns in (self.host, self.outside, *self.containers.values()):
            ip("netns", "add", netns)
            self.namespaces.append(netns)
            ip("-n", netns, "link", "set", "lo", "up")
        sysctl(self.host, "net.ipv4.ip_forward", "1")
        for index, bridge in enumerate(self.bridges):
            ip("-n", self.host, "link", "add", bridge, "type", "bridge")
            ip("-n", self.host, "addr", "add", f"10.231.{index}.1/24", "dev", bridge)
            ip("-n", self.host, "link", "set", bridge, "up")
            sysctl(self.host, f"net.ipv4.conf.{bridge}.route_localnet", "1")
        self._wire(self.outside, f"fwu-{self.tag}", UPLINK_HOST, UPLINK_OUTSIDE, 24)
        ip("-n", self.outside, "route", "add", "10.231.0.0/16", "via", UPLINK_HOST)
        for name, netns in self.containers.items():
            index = self.on_bridge[name]
            veth = f"fv{name[1:]}-{self.tag}"
            self._wire(netns, veth, None, self.addresses[name], 24)
            ip("-n", self.host, "link", "set", veth, "master", self.bridges[index])
            # as the driver sets it (dockerd without userland proxy): br_netfilter
            # bridges a container's hairpin packet back out of the port it came in by
            ip("-n", self.host, "link", "set", veth, "type", "bridge_slave", "hairpin", "on")
            ip("-n", netns, "route", "add", "default", "via", f"10.231.{index}.1")
            self._serve(netns, 80)
        self._serve(self.outside, 9000)

    def _wire(self, netns, host_end, host_address, address, prefix):
        ip("-n", self.host, "link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", netns)
        if host_address:
            ip("-n", self.host, "addr", "add", f"{host_address}/{prefix}", "dev", host_end)
        ip("-n", self.host, "link", "set", host_end, "up")
        ip("-n", netns, "addr", "add", f"{address}/{prefix}", "dev", "eth0")
        ip("-n", netns, "link", "set", "eth0", "up")

    def _serve(self, netns, port):
        server = subprocess.Popen(["ip", "netns", "exec", netns, sys.executable, "-c", ECHO_SERVER, str(port)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.servers.append(server)
        assert server.stdout.readline().strip() == "ready"

    def destroy(self):
        for server in self.servers:
            server.kill()
            server.wait()
        for netns in self.namespaces:
            subprocess.run(["ip", "netns", "del", netns], capture_output=True)


def sysctl(netns: str, name: str, value: str) -> None:
    subprocess.run(["ip", "netns", "exec", netns, "sysctl", "-qw", f"{name}={value}"], check=True)


@pytest.fixture(scope="module")
def lab():
    made = Lab()
    try:
        made.build()
        yield made
    finally:
        made.destroy()


@pytest.fixture
def firewall(lab):
    made = made_in_netns(f"/run/netns/{lab.host}", Firewall)
    try:
        yield made
    finally:
        made.remove()
        made.close()


def published(lab, name, host_port, proto="tcp", host_ip=""):
    return PortBinding(proto, host_ip, host_port, lab.addresses[name], 80, lab.bridges[lab.on_bridge[name]])


def test_published_port_from_another_netns_tcp_and_udp(lab, firewall):
    assert reach(lab.outside, UPLINK_HOST, 8080).startswith("failed")
    firewall.apply([lab.network(0)], [published(lab, "c1", 8080), published(lab, "c1", 8080, "udp")])
    assert reach(lab.outside, UPLINK_HOST, 8080) == f"hi from {UPLINK_OUTSIDE}"
    assert reach(lab.outside, UPLINK_HOST, 8080, "udp") == f"hi from {UPLINK_OUTSIDE}"


def test_published_port_from_the_hosts_loopback_and_own_address(lab, firewall):
    firewall.apply([lab.network(0)], [published(lab, "c1", 8080), published(lab, "c1", 8080, "udp")])
    assert reach(lab.host, "127.0.0.1", 8080) == "hi from 10.231.0.1"
    assert reach(lab.host, "127.0.0.1", 8080, "udp") == "hi from 10.231.0.1"
    assert reach(lab.host, UPLINK_HOST, 8080).startswith("hi from ")


def test_port_published_on_one_host_address_only(lab, firewall):
    firewall.apply([lab.network(0)], [published(lab, "c1", 8081, host_ip="127.0.0.1")])
    assert reach(lab.host, "127.0.0.1", 8081) == "hi from 10.231.0.1"
    assert reach(lab.outside, UPLINK_HOST, 8081).startswith("failed")


def test_hairpin_to_a_published_port_from_the_same_bridge(lab, firewall):
    firewall.apply([lab.network(0)], [published(lab, "c1", 8080)])
    assert reach(lab.containers["c2"], UPLINK_HOST, 8080) == "hi from 10.231.0.3"
    assert reach(lab.containers["c1"], UPLINK_HOST, 8080) == "hi from 10.231.0.1"


def test_outbound_traffic_is_masqueraded(lab, firewall):
    assert reach(lab.containers["c1"], UPLINK_OUTSIDE, 9000) == "hi from 10.231.0.2"
    firewall.apply([lab.network(0)], [])
    assert reach(lab.containers["c1"], UPLINK_OUTSIDE, 9000) == f"hi from {UPLINK_HOST}"


def test_no_masquerade_when_the_network_turns_it_off(lab, firewall):
    firewall.apply([lab.network(0, masquerade=False)], [])
    assert reach(lab.containers["c1"], UPLINK_OUTSIDE, 9000) == "hi from 10.231.0.2"


def test_unpublished_container_ports_are_not_reachable_from_outside(lab, firewall):
    assert reach(lab.outside, lab.addresses["c1"], 80) == f"hi from {UPLINK_OUTSIDE}"
    firewall.apply([lab.network(0)], [])
    assert reach(lab.outside, lab.addresses["c1"], 80).startswith("failed")


def test_networks_are_isolated_from_each_other(lab, firewall):
    assert reach(lab.containers["c3"], lab.addresses["c1"], 80) == "hi from 10.231.1.2"
    firewall.apply([lab.network(0), lab.network(1)], [])
    assert reach(lab.containers["c3"], lab.addresses["c1"], 80).startswith("failed")
    assert reach(lab.containers["c1"], lab.addresses["c3"], 80).startswith("failed")
    assert reach(lab.containers["c3"], UPLINK_OUTSIDE, 9000) == f"hi from {UPLINK_HOST}"


def test_internal_network_has_no_way_in_or_out(lab, firewall):
    assert reach(lab.containers["c4"], UPLINK_OUTSIDE, 9000) == "hi from 10.231.2.2"
    firewall.apply([lab.network(0), lab.network(2, internal=True)], [published(lab, "c4", 8082)])
    assert reach(lab.containers["c4"], UPLINK_OUTSIDE, 9000).startswith("failed")
    assert reach(lab.outside, lab.addresses["c4"], 80).startswith("failed")
    assert reach(lab.outside, UPLINK_HOST, 8082).startswith("failed")
    assert reach(lab.containers["c1"], lab.addresses["c4"], 80).startswith("failed")


def test_icc_false_drops_traffic_between_containers_of_one_bridge(lab, firewall):
    firewall.apply([lab.network(0)], [])
    assert reach(lab.containers["c2"], lab.addresses["c1"], 80) == "hi from 10.231.0.3"
    firewall.apply([lab.network(0, icc=False)], [])
    assert reach(lab.containers["c2"], lab.addresses["c1"], 80).startswith("failed")
    assert reach(lab.containers["c2"], UPLINK_OUTSIDE, 9000) == f"hi from {UPLINK_HOST}"


def test_a_refused_apply_keeps_the_previous_table(lab, firewall):
    firewall.apply([lab.network(0)], [published(lab, "c1", 8080)])
    with pytest.raises(NftablesError) as refused:
        firewall.apply([lab.network(0)], [published(lab, "c1", 70000)])
    assert "\n" not in str(refused.value) and "replacing table ip engine-py" in str(refused.value)
    assert reach(lab.outside, UPLINK_HOST, 8080) == f"hi from {UPLINK_OUTSIDE}"


def test_remove_deletes_the_table_and_nothing_else(lab, firewall):
    firewall.apply([lab.network(0)], [published(lab, "c1", 8080)])
    firewall.remove()
    firewall.remove()
    listed = subprocess.run(["ip", "netns", "exec", lab.host, "nft", "list", "ruleset"],
                            check=True, capture_output=True, text=True)
    assert listed.stdout == ""


def test_traffic_of_bridges_not_ours_keeps_its_verdict(lab, firewall):
    firewall.apply([lab.network(0)], [published(lab, "c1", 8080)])
    assert reach(lab.outside, lab.addresses["c3"], 80) == f"hi from {UPLINK_OUTSIDE}"
    assert reach(lab.containers["c3"], UPLINK_OUTSIDE, 9000) == "hi from 10.231.1.2"


def test_a_host_port_held_by_the_allocator_still_leads_to_the_container(lab, firewall):
    allocator = PortAllocator()
    try:
        for proto in ("tcp", "udp"):
            made_in_netns(f"/run/netns/{lab.host}", lambda: allocator.allocate(proto, "", 8080, 8080))
        firewall.apply([lab.network(0)], [published(lab, "c1", 8080), published(lab, "c1", 8080, "udp")])
        assert reach(lab.host, "127.0.0.1", 8080) == "hi from 10.231.0.1"
        assert reach(lab.host, "127.0.0.1", 8080, "udp") == "hi from 10.231.0.1"
        assert reach(lab.outside, UPLINK_HOST, 8080) == f"hi from {UPLINK_OUTSIDE}"
    finally:
        allocator.close()
