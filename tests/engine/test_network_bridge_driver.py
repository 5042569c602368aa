"""The bridge driver over the fake kernel and a recording firewall: what it
leaves in each namespace, the rules it applies, and that a failure half-way
leaves nothing behind."""
import errno
import ipaddress

import pytest

from engine.network.bridge import BridgeDriver
from engine.network.types import BridgeNetwork, Endpoint, PortBinding
from tests.engine.fake_netlink import HOST, FakeKernel

NET = BridgeNetwork("n" * 64, "br-nnnnnnnnnnnn", ipaddress.IPv4Network("10.7.0.0/24"),
                    ipaddress.IPv4Address("10.7.0.1"))
OTHER = BridgeNetwork("o" * 64, "br-oooooooooooo", ipaddress.IPv4Network("10.8.0.0/24"),
                      ipaddress.IPv4Address("10.8.0.1"))
SANDBOX = "/run/engine-py/netns/cccccccccccc"


def endpoint(ip="10.7.0.2", veth="vethaaaaaaa") -> Endpoint:
    return Endpoint("e" * 64, NET.network_id, "c" * 64, ipaddress.IPv4Interface(f"{ip}/24"), NET.gateway,
                    "02:42:0a:07:00:02", veth)


class RecordingFirewall:
    def __init__(self, fail_after: int | None = None):
        self.applied, self.fail_after = [], fail_after

    def apply(self, networks, ports):
        if self.fail_after is not None and len(self.applied) >= self.fail_after:
            raise OSError(errno.EINVAL, "applying the engine's nftables table: Invalid argument")
        self.applied.append((sorted(n.bridge for n in networks), sorted(p.host_port for p in ports)))


def restored(kernel, firewall) -> BridgeDriver:
    """A driver as the engine has it once started: restored from (here) nothing."""
    driver = BridgeDriver(kernel, firewall)
    driver.restore([], {})
    firewall.applied.clear()
    return driver


@pytest.fixture
def kernel():
    return FakeKernel()


def test_a_network_is_a_bridge_with_its_gateway_and_rules(kernel):
    firewall = RecordingFirewall()
    restored(kernel, firewall).create_network(NET)
    bridge = kernel.links()[NET.bridge]
    assert (bridge.kind, bridge.up, bridge.addresses) == ("bridge", True, ["10.7.0.1/24"])
    assert kernel.sysctls == {"net.ipv4.ip_forward": "1", f"net.ipv4.conf.{NET.bridge}.route_localnet": "1"}
    assert firewall.applied == [([NET.bridge], [])]


def test_rules_that_cannot_be_applied_leave_no_bridge(kernel):
    driver = restored(kernel, RecordingFirewall())
    driver.firewall.fail_after = 0
    with pytest.raises(OSError, match="nftables"):
        driver.create_network(NET)
    assert NET.bridge not in kernel.links()
    driver.firewall.fail_after = None
    driver.create_network(OTHER)
    assert driver.firewall.applied == [([OTHER.bridge], [])]  # the failed network is not in later tables


def test_an_endpoint_is_a_veth_into_the_sandbox_with_address_mac_and_route(kernel):
    driver = restored(kernel, RecordingFirewall())
    driver.create_network(NET)
    driver.create_sandbox(SANDBOX)
    driver.join(NET, endpoint(), SANDBOX, "eth0", gateway=True)
    host_end, inner = kernel.links()["vethaaaaaaa"], kernel.links(SANDBOX)["eth0"]
    assert (host_end.master, host_end.up, host_end.peer) == (NET.bridge, True, (SANDBOX, "eth0"))
    assert host_end.hairpin
    assert (inner.addresses, inner.mac, inner.up) == (["10.7.0.2/24"], "02:42:0a:07:00:02", True)
    assert kernel.default_routes[SANDBOX] == "10.7.0.1"

    driver.delete_sandbox(SANDBOX)  # the veth dies with the namespace
    assert "vethaaaaaaa" not in kernel.links()


def test_a_second_network_adds_no_default_route(kernel):
    driver = restored(kernel, RecordingFirewall())
    driver.create_network(NET)
    driver.create_sandbox(SANDBOX)
    driver.join(NET, endpoint(), SANDBOX, "eth1", gateway=False)
    assert SANDBOX not in kernel.default_routes


def test_a_join_failing_inside_the_sandbox_removes_the_veth(kernel):
    driver = restored(kernel, RecordingFirewall())
    driver.create_network(NET)
    driver.create_sandbox(SANDBOX)
    kernel.fail["add_address"] = OSError(errno.EADDRNOTAVAIL, "adding 10.7.0.2/24 to eth0: Cannot assign")
    with pytest.raises(OSError, match="eth0"):
        driver.join(NET, endpoint(), SANDBOX, "eth0", gateway=True)
    assert "vethaaaaaaa" not in kernel.links() and "eth0" not in kernel.links(SANDBOX)


def test_published_ports_are_in_every_table_until_unpublished(kernel):
    firewall = RecordingFirewall()
    driver = restored(kernel, firewall)
    driver.create_network(NET)
    driver.publish("c1", [PortBinding("tcp", "", 8080, "10.7.0.2", 80, NET.bridge)])
    driver.publish("c2", [PortBinding("udp", "", 5353, "10.7.0.3", 53, NET.bridge)])
    assert firewall.applied[-1] == ([NET.bridge], [5353, 8080])
    driver.unpublish("c1")
    assert firewall.applied[-1] == ([NET.bridge], [5353])
    firewall.fail_after = len(firewall.applied)
    with pytest.raises(OSError):
        driver.publish("c3", [PortBinding("tcp", "", 9090, "10.7.0.4", 80, NET.bridge)])
    firewall.fail_after = None
    driver.unpublish("c2")
    assert firewall.applied[-1] == ([NET.bridge], [])  # c3's failed ports were not kept


def test_restore_makes_lost_bridges_again_and_applies_once(kernel):
    """Networks made before it (the service's, at start) change no rule: a
    table without the running containers' ports would cut them off a while."""
    firewall = RecordingFirewall()
    driver = BridgeDriver(kernel, firewall)
    driver.create_network(NET)  # NET's bridge is made (or survived); OTHER's was lost (a reboot)
    assert firewall.applied == []
    driver.restore([NET, OTHER], {"c1": [PortBinding("tcp", "", 8080, "10.7.0.2", 80, NET.bridge)], "c2": []})
    assert {NET.bridge, OTHER.bridge} <= set(kernel.links(HOST))
    assert kernel.links()[OTHER.bridge].addresses == ["10.8.0.1/24"]
    assert firewall.applied == [([NET.bridge, OTHER.bridge], [8080])]


def test_deleting_a_network_removes_its_bridge_and_rules(kernel):
    firewall = RecordingFirewall()
    driver = restored(kernel, firewall)
    driver.create_network(NET)
    driver.create_network(OTHER)
    driver.delete_network(NET)
    assert NET.bridge not in kernel.links() and firewall.applied[-1] == ([OTHER.bridge], [])
