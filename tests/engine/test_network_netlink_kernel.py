"""engine.network.netlink against the kernel (as root), and the same scenarios
against tests/engine/fake_netlink.py, so the bridge driver's unit tests stand
on a fake that behaves as the kernel does.

Everything happens in namespaces the test makes: a "host" one from `ip netns
add` standing for the engine's, and container ones under tmp_path; all are
removed in finalizers, so the machine's own links are never touched."""
import errno
import json
import os
import socket
import subprocess
import threading
import time
import uuid

import pytest

from engine.network import netlink
from fake_netlink import FakeKernel

pytestmark = pytest.mark.root

SUBNET, GATEWAY, CONTAINER_IP = "10.88.0.0/24", "10.88.0.1", "10.88.0.2"


@pytest.fixture
def host_netns():
    """A namespace made by `ip netns add`, standing for the engine's own."""
    name = f"nltest-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    yield f"/run/netns/{name}"
    subprocess.run(["ip", "netns", "del", name], check=True)


@pytest.fixture
def containers(tmp_path):
    """Where container namespaces go; whatever a test left there is removed."""
    yield tmp_path
    for entry in os.listdir(tmp_path):
        netlink.delete_netns(str(tmp_path / entry))


@pytest.fixture(params=["kernel", "fake"])
def kernel(request, host_netns):
    if request.param == "kernel":
        return netlink
    fake = FakeKernel()
    fake.create_netns(host_netns)
    return fake


def ip(netns, *args):
    out = subprocess.run(["nsenter", f"--net={netns}", "ip", "-j", *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout or "[]")


def wire_container(kernel, host_netns, container_netns):
    """One container's wiring as the bridge driver does it."""
    kernel.create_netns(container_netns)
    with kernel.Netlink.inside(host_netns) as host:
        host.create_bridge("br-nltest", mtu=1450)
        host.add_address("br-nltest", f"{GATEWAY}/24")
        host.set_up("br-nltest")
        host.create_veth("vethnl0", "eth0", container_netns, mtu=1450)
        host.set_master("vethnl0", "br-nltest")
        host.set_hairpin("vethnl0")
        host.set_up("vethnl0")
    with kernel.Netlink.inside(container_netns) as inside:
        inside.set_mac("eth0", "02:42:0a:58:00:02")
        inside.add_address("eth0", f"{CONTAINER_IP}/24")
        inside.set_up("eth0")
        inside.add_default_route(GATEWAY)


def test_a_container_is_wired_through_a_veth_made_inside_its_namespace(kernel, host_netns, containers):
    container = str(containers / "c1")
    wire_container(kernel, host_netns, container)
    with kernel.Netlink.inside(host_netns) as host, kernel.Netlink.inside(container) as inside:
        assert sorted(host.links()) == ["br-nltest", "lo", "vethnl0"]
        assert inside.links() == ["lo", "eth0"]
        assert host.addresses("br-nltest") == [f"{GATEWAY}/24"]
        assert inside.addresses("eth0") == [f"{CONTAINER_IP}/24"]
        assert [str(r) for r in host.routes()] == [SUBNET] == [str(r) for r in inside.routes()]
        inside.add_address("eth0", f"{CONTAINER_IP}/24")  # again: no error, no second copy
        assert inside.addresses("eth0") == [f"{CONTAINER_IP}/24"]


def test_the_wiring_is_what_ip_shows_and_carries_traffic(host_netns, containers):
    container = str(containers / "c1")
    wire_container(netlink, host_netns, container)
    [veth] = ip(host_netns, "-d", "link", "show", "vethnl0")
    assert (veth["master"], veth["mtu"], veth["operstate"]) == ("br-nltest", 1450, "UP")
    assert veth["linkinfo"]["info_slave_data"]["hairpin"] is True
    [eth0] = ip(container, "addr", "show", "eth0")
    assert (eth0["address"], eth0["mtu"], eth0["operstate"]) == ("02:42:0a:58:00:02", 1450, "UP")
    [address] = [a for a in eth0["addr_info"] if a["family"] == "inet"]
    assert (address["local"], address["prefixlen"], address["broadcast"]) == (CONTAINER_IP, 24, "10.88.0.255")
    assert [r for r in ip(container, "route") if r["dst"] == "default"] == [
        {"dst": "default", "gateway": GATEWAY, "dev": "eth0", "flags": []}]
    [lo] = ip(container, "link", "show", "lo")
    assert "UP" in lo["flags"]

    server = netlink.run_in_netns(host_netns, lambda: socket.create_server((GATEWAY, 0)))
    with server:
        port = server.getsockname()[1]
        with netlink.run_in_netns(container, lambda: socket.create_connection((GATEWAY, port), timeout=5)) as client:
            peer, (source, _) = server.accept()
            with peer:
                client.sendall(b"ping")
                assert (source, peer.recv(4)) == (CONTAINER_IP, b"ping")


def test_an_existing_bridge_is_file_exists_naming_it(kernel, host_netns):
    with kernel.Netlink.inside(host_netns) as host:
        host.create_bridge("br-nltest")
        with pytest.raises(FileExistsError, match=r"^\[Errno 17\] creating bridge br-nltest: File exists$"):
            host.create_bridge("br-nltest")


def test_a_default_route_before_the_link_is_up_is_unreachable(kernel, host_netns, containers):
    container = str(containers / "c1")
    kernel.create_netns(container)
    with kernel.Netlink.inside(host_netns) as host:
        host.create_veth("vethnl0", "eth0", container)
    with kernel.Netlink.inside(container) as inside:
        inside.add_address("eth0", f"{CONTAINER_IP}/24")
        with pytest.raises(OSError) as raised:
            inside.add_default_route(GATEWAY)
    assert raised.value.errno == errno.ENETUNREACH
    assert raised.value.strerror == f"adding default route via {GATEWAY}: Network is unreachable " \
                                    "(Nexthop has invalid gateway)"


def test_deleting_a_veth_takes_its_peer_and_a_missing_link_is_no_error(kernel, host_netns, containers):
    container = str(containers / "c1")
    kernel.create_netns(container)
    with kernel.Netlink.inside(host_netns) as host, kernel.Netlink.inside(container) as inside:
        host.create_veth("vethnl0", "eth0", container)
        host.delete_link("vethnl0")
        host.delete_link("vethnl0")
        assert (host.links(), inside.links()) == (["lo"], ["lo"])
        assert not host.link_exists("vethnl0")


def test_a_peer_name_taken_inside_leaves_no_host_end(kernel, host_netns, containers):
    container = str(containers / "c1")
    kernel.create_netns(container)
    with kernel.Netlink.inside(host_netns) as host:
        host.create_veth("vethnl0", "eth0", container)
        with pytest.raises(FileExistsError, match=f"creating veth vethnl1 with peer eth0 in {container}: File exists"):
            host.create_veth("vethnl1", "eth0", container)
        assert sorted(host.links()) == ["lo", "vethnl0"]


def test_links_of_a_missing_link_are_named(kernel, host_netns):
    with kernel.Netlink.inside(host_netns) as host:
        for call, message in ((lambda: host.set_up("nope0"), "setting link nope0 up"),
                              (lambda: host.add_address("nope0", "10.0.0.1/8"), "adding address 10.0.0.1/8 to nope0"),
                              (lambda: host.addresses("nope0"), "listing addresses of nope0")):
            with pytest.raises(OSError) as raised:
                call()
            assert (raised.value.errno, raised.value.strerror) == (errno.ENODEV, f"{message}: No such device")


def test_a_namespace_path_already_there_is_file_exists_and_kept(kernel, containers):
    container = str(containers / "c1")
    kernel.create_netns(container)
    with pytest.raises(FileExistsError, match=f"creating network namespace {container}: File exists"):
        kernel.create_netns(container)
    with kernel.Netlink.inside(container) as inside:
        assert inside.links() == ["lo"]
    kernel.delete_netns(container)
    kernel.delete_netns(container)


def test_a_missing_namespace_is_named(kernel):
    with pytest.raises(FileNotFoundError, match="joining network namespace /nonexistent/ns: No such file"):
        kernel.Netlink.inside("/nonexistent/ns")


def test_deleting_a_namespace_ends_the_veth_whose_peer_was_in_it(kernel, host_netns, containers):
    container = str(containers / "c1")
    kernel.create_netns(container)
    with kernel.Netlink.inside(host_netns) as host:
        host.create_veth("vethnl0", "eth0", container)
        kernel.delete_netns(container)
        deadline = time.monotonic() + 10  # the kernel destroys a namespace in a work queue, soon after
        while host.link_exists("vethnl0") and time.monotonic() < deadline:
            time.sleep(0.01)
        assert host.links() == ["lo"]


def test_namespaces_are_made_and_joined_without_moving_the_callers_thread(containers):
    mine = os.readlink("/proc/thread-self/ns/net")
    threads = threading.active_count()
    container = str(containers / "c1")
    netlink.create_netns(container)
    with netlink.Netlink.inside(container) as inside:
        inside.links()
    assert os.readlink("/proc/thread-self/ns/net") == mine and threading.active_count() == threads
    assert os.stat(container).st_ino != os.stat("/proc/thread-self/ns/net").st_ino
    assert any(line.split()[4] == container for line in open("/proc/self/mountinfo"))
    netlink.delete_netns(container)
    assert not os.path.exists(container)
    assert not any(line.split()[4] == container for line in open("/proc/self/mountinfo"))


def test_a_sysctl_is_set_in_the_namespace_of_the_thread_that_sets_it(host_netns):
    netlink.run_in_netns(host_netns, lambda: netlink.set_sysctl("net.ipv4.ip_forward", 1))
    inside = subprocess.run(["nsenter", f"--net={host_netns}", "cat", "/proc/sys/net/ipv4/ip_forward"],
                            capture_output=True, text=True, check=True).stdout
    assert inside == "1\n"


def test_one_netlink_serves_several_threads_at_once(host_netns):
    """The engine's request threads may share one: each answer reaches the thread that asked."""
    errors = []
    with netlink.Netlink.inside(host_netns) as host:
        host.create_bridge("br-nltest")

        def ask():
            try:
                for _ in range(50):
                    assert host.links() == ["lo", "br-nltest"] and host.link_exists("br-nltest")
            except Exception as e:  # reported by the main thread
                errors.append(e)
        threads = [threading.Thread(target=ask, daemon=True) for _ in range(4)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30  # a thread whose answer another took would wait for ever
        for thread in threads:
            thread.join(timeout=max(0, deadline - time.monotonic()))
        assert errors == [] and not any(thread.is_alive() for thread in threads)


def test_a_bridges_mac_stays_as_ports_come_and_go(host_netns, containers):
    """The gateway's MAC in the containers' ARP caches stays right."""
    container = str(containers / "c1")
    netlink.create_netns(container)
    with netlink.Netlink.inside(host_netns) as host:
        host.create_bridge("br-nltest")
        [bridge] = ip(host_netns, "link", "show", "br-nltest")
        host.create_veth("vethnl0", "eth0", container)
        host.set_mac("vethnl0", "02:00:00:00:00:01")  # a bridge whose MAC the kernel chose would take it
        host.set_master("vethnl0", "br-nltest")
        host.set_up("vethnl0")
        assert ip(host_netns, "link", "show", "br-nltest")[0]["address"] == bridge["address"]


def test_hairpin_mode_needs_a_bridge_port(kernel, host_netns, containers):
    container = str(containers / "c1")
    kernel.create_netns(container)
    with kernel.Netlink.inside(host_netns) as host:
        host.create_veth("vethnl0", "eth0", container)
        with pytest.raises(OSError) as raised:
            host.set_hairpin("vethnl0")
    assert (raised.value.errno, raised.value.strerror) == (errno.EOPNOTSUPP,
                                                          "setting hairpin mode on vethnl0: Operation not supported")
