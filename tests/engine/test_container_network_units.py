"""A container's networking over the network service, the bridge driver on
the fake kernel, a recording firewall and resolver and a fake port
allocator: what create records, what start wires and publishes, that a
failure half-way and an exit leave nothing, the resolver's answers, connect,
disconnect, and the restore after an engine restart."""
import pytest

from engine.errors import NotFound, System
from engine.network.bridge import BridgeDriver
from engine.network.portmap import PortAllocationError
from engine.services.container_network import ContainerNetworking
from engine.services.networks import NetworkService
from engine.store import Container
from engine.store.networks import NetworkStore
from tests.engine.fake_netlink import HOST, FakeKernel
from tests.engine.test_network_bridge_driver import RecordingFirewall


class FakeResolver:
    def __init__(self):
        self.attached = {}

    def attach(self, key, netns_path, upstreams):
        assert key not in self.attached
        self.attached[key] = netns_path

    def detach(self, key):
        self.attached.pop(key, None)


class FakePorts:
    """Host ports as the allocator hands them out, without binding sockets."""

    def __init__(self):
        self.held, self.next = set(), 32768

    def allocate(self, proto, host_ip="", start=0, end=0):
        port = start or self.next
        if (proto, host_ip, port) in self.held:
            raise PortAllocationError(f"Bind for {host_ip or '0.0.0.0'}:{port} failed: port is already allocated")
        self.next += not start
        self.held.add((proto, host_ip, port))
        return port

    def release(self, proto, host_ip, port):
        self.held.discard((proto, host_ip, port))


class World:
    def __init__(self, tmp_path):
        self.kernel, self.firewall = FakeKernel(), RecordingFirewall()
        self.driver = BridgeDriver(self.kernel, self.firewall)
        self.networks = NetworkService(NetworkStore(str(tmp_path / "network")), self.driver)
        self.resolver, self.ports = FakeResolver(), FakePorts()
        self.networking = ContainerNetworking(self.networks, self.driver, self.ports, self.resolver,
                                              str(tmp_path / "exec"), host_resolv_conf=str(tmp_path / "resolv"))
        (tmp_path / "resolv").write_text("nameserver 10.0.0.53\n")
        self.networking.restore([])  # as at engine start

    def container(self, name, host_config=None, networking=None, config=None) -> Container:
        container_id = (name * 64)[:64]
        host_config = host_config or {}
        record = Container(container_id, f"/{name}", "sha256:x", {"Hostname": container_id[:12], **(config or {})},
                           host_config)
        record.network_settings = self.networking.plan(container_id, host_config, networking)
        return record

    def start(self, record: Container) -> list[str]:
        addresses = self.networking.attach(record)
        record.state.set_running(100, "2026-12-06T00:00:00Z")
        return addresses

    def stop(self, record: Container) -> None:
        record.state.set_stopped(0, "2026-12-06T00:00:01Z")
        self.networking.detach(record)


@pytest.fixture
def world(tmp_path):
    return World(tmp_path)


def test_create_records_the_network_without_an_address(world):
    record = world.container("a")
    endpoint = record.network_settings["Networks"]["bridge"]
    assert endpoint["NetworkID"] == world.networks.find("bridge").id and endpoint["IPAddress"] == ""
    with pytest.raises(NotFound, match="network nosuch not found"):
        world.container("b", {"NetworkMode": "nosuch"})


def test_start_wires_an_endpoint_and_publishes_ports(world):
    record = world.container("a", {"PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}},
                             config={"ExposedPorts": {"80/tcp": {}, "81/tcp": {}}})
    addresses = world.start(record)
    endpoint = record.network_settings["Networks"]["bridge"]
    assert addresses == [endpoint["IPAddress"]] and endpoint["EndpointID"]
    sandbox = world.networking.sandbox_path(record.id)
    assert world.kernel.links(sandbox)["eth0"].addresses == [f"{endpoint['IPAddress']}/16"]
    assert record.network_settings["Ports"] == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}],
                                                "81/tcp": None}
    assert world.firewall.applied[-1][1] == [8080]
    assert record.id not in world.resolver.attached  # no DNS on the default bridge


def test_a_port_in_use_leaves_nothing_of_the_start(world):
    world.ports.allocate("tcp", "", 8080, 8080)
    record = world.container("a", {"PortBindings": {"80/tcp": [{"HostPort": "8080"}, {"HostPort": "8081"}]}})
    with pytest.raises(System, match="driver failed programming external connectivity on endpoint a .*"
                                     "Bind for 0.0.0.0:8080 failed: port is already allocated"):
        world.start(record)
    assert world.networking.sandbox_path(record.id) not in world.kernel.namespaces
    assert world.networks.inspect("bridge")["Containers"] == {}
    assert record.network_settings["Networks"]["bridge"]["IPAddress"] == ""
    assert world.ports.held == {("tcp", "", 8080)}  # only the other owner's


def test_an_exit_releases_everything_and_the_address_is_given_again(world):
    first = world.container("a", {"PortBindings": {"80/tcp": [{"HostPort": "8080"}]}})
    address = world.start(first)[0]
    world.stop(first)
    assert world.networking.sandbox_path(first.id) not in world.kernel.namespaces
    assert not [name for name in world.kernel.links(HOST) if name.startswith("veth")]
    assert world.ports.held == set() and world.firewall.applied[-1][1] == []
    assert (first.network_settings["Ports"], first.network_settings["Networks"]["bridge"]["IPAddress"]) == ({}, "")
    assert world.start(world.container("b"))[0] == address


def test_names_resolve_on_the_networks_a_container_shares(world):
    world.networks.create({"Name": "front"})
    world.networks.create({"Name": "back"})
    web = world.container("web", {"NetworkMode": "front"}, {"EndpointsConfig": {"front": {"Aliases": ["site"]}}})
    client = world.container("client", {"NetworkMode": "front"})
    hidden = world.container("hidden", {"NetworkMode": "back"})
    for record in (web, client, hidden):
        world.start(record)
    web_ip = web.network_settings["Networks"]["front"]["IPAddress"]
    assert world.networking.lookup(client.id, "web") == [web_ip]
    assert world.networking.lookup(client.id, "SITE.") == [web_ip]
    assert world.networking.lookup(client.id, web.id[:12]) == [web_ip]
    assert world.networking.lookup(hidden.id, "web") == []
    assert world.networking.reverse(client.id, web_ip) == "web.front"
    assert set(world.resolver.attached) == {web.id, client.id, hidden.id}
    assert "nameserver 127.0.0.11" in world.networking.resolv_conf(client)


def test_connect_and_disconnect_while_running(world):
    world.networks.create({"Name": "extra"})
    record = world.container("a")
    world.start(record)
    world.networking.connect(record, "extra", {"Aliases": ["more"]})
    sandbox = world.networking.sandbox_path(record.id)
    assert set(world.kernel.links(sandbox)) == {"lo", "eth0", "eth1"}
    assert world.resolver.attached == {record.id: sandbox}
    assert world.networking.lookup(record.id, "more")
    world.networking.disconnect(record, "extra")
    assert set(world.kernel.links(sandbox)) == {"lo", "eth0"} and world.resolver.attached == {}
    assert "extra" not in record.network_settings["Networks"]
    assert world.networks.inspect("extra")["Containers"] == {}


def test_restore_holds_ports_again_and_drops_what_a_crash_left(world, tmp_path):
    running = world.container("a", {"PortBindings": {"80/tcp": [{"HostPort": "8080"}]}})
    world.start(running)
    crashed = world.container("b")
    world.networking.attach(crashed)  # the engine died before the task started: never recorded as running
    again = World.__new__(World)
    again.__dict__.update(world.__dict__)
    again.ports, again.resolver = FakePorts(), FakeResolver()
    again.networks = NetworkService(NetworkStore(str(tmp_path / "network")), world.driver)
    again.networking = ContainerNetworking(again.networks, world.driver, again.ports, again.resolver,
                                           str(tmp_path / "exec"))
    again.networking.restore([running, crashed])
    assert again.ports.held == {("tcp", "", 8080)}
    assert world.networking.sandbox_path(crashed.id) not in world.kernel.namespaces
    assert set(again.networks.inspect("bridge")["Containers"]) == {running.id}
    assert world.firewall.applied[-1][1] == [8080]


def test_restore_undoes_a_connect_the_engine_died_in(world, tmp_path):
    world.networks.create({"Name": "extra"})
    record = world.container("a")
    world.start(record)
    sandbox = world.networking.sandbox_path(record.id)
    extra = world.networks.find("extra")
    endpoint = world.networks.allocate_endpoint(extra.id, record.id, "a")  # wired, never recorded in the container
    world.driver.join(world.networks.bridge_network(extra), endpoint, sandbox, "eth1", gateway=False)
    again = ContainerNetworking(NetworkService(NetworkStore(str(tmp_path / "network")), world.driver), world.driver,
                                FakePorts(), FakeResolver(), str(tmp_path / "exec"))
    again.restore([record])
    assert again.networks.inspect("extra")["Containers"] == {}
    assert set(again.networks.inspect("bridge")["Containers"]) == {record.id}
    assert set(world.kernel.links(sandbox)) == {"lo", "eth0"}


def test_a_container_of_an_engine_without_networks_joins_the_default_bridge(world):
    record = world.container("a")
    record.network_settings = {}  # recorded before networking existed
    world.start(record)
    assert record.network_settings["Networks"]["bridge"]["IPAddress"]


def test_a_container_without_networks_runs_with_loopback_only(world):
    record = world.container("a", {"PortBindings": {"80/tcp": [{"HostPort": "8080"}]}})
    world.networking.disconnect(record, "bridge")
    assert world.start(record) == []
    assert set(world.kernel.links(world.networking.sandbox_path(record.id))) == {"lo"}
    assert record.network_settings["Ports"] == {} and world.ports.held == set()


def test_a_hostname_of_its_own_is_an_alias_on_user_networks(world):
    """dockerd 20.10's updateNetworkConfig appends the short ID, then a hostname that is not the name,
    to the aliases on a user network (so a compose service's `hostname:` resolves there)."""
    world.networks.create({"Name": "front"})
    web = world.container("web", {"NetworkMode": "front"}, {"EndpointsConfig": {"front": {"Aliases": ["site"]}}},
                          config={"Hostname": "webhost"})
    plain = world.container("plain", {"NetworkMode": "front"})
    for record in (web, plain):
        world.start(record)
    assert web.network_settings["Networks"]["front"]["Aliases"] == ["site", web.id[:12], "webhost"]
    assert plain.network_settings["Networks"]["front"]["Aliases"] == [plain.id[:12]]
    assert world.networking.lookup(plain.id, "webhost") == [web.network_settings["Networks"]["front"]["IPAddress"]]
