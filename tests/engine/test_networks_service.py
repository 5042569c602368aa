"""The network service with a recording fake driver: dockerd's create
checks and replies, the predefined networks, list filters, remove, prune,
endpoints, and what survives a restart (the store reloaded)."""
import ipaddress
import json
import os

import pytest

from engine.errors import Conflict, Forbidden, InvalidParameter, NotFound, System
from engine.services.networks import NetworkService
from engine.store.networks import NetworkStore


class FakeDriver:
    def __init__(self, fail_create: bool = False):
        self.calls, self.fail_create = [], fail_create

    def create_network(self, network):
        self.calls.append(("create", network.bridge, str(network.subnet)))
        if self.fail_create:
            raise OSError(f"creating bridge {network.bridge}: File exists")

    def delete_network(self, network):
        self.calls.append(("delete", network.bridge, str(network.subnet)))


@pytest.fixture
def root(tmp_path):
    return str(tmp_path / "network")


def service(root, driver=None, **kw):
    return NetworkService(NetworkStore(root), driver or FakeDriver(), **kw)


def test_predefined_networks_exist_and_keep_their_ids(root):
    driver = FakeDriver()
    first = service(root, driver, host_routes=lambda: [ipaddress.IPv4Network("172.17.0.0/24")])
    names = {n["Name"]: n for n in first.list()}
    assert sorted(names) == ["bridge", "host", "none"]
    bridge = first.inspect("bridge")
    assert bridge["IPAM"] == {"Driver": "default", "Options": None,
                              "Config": [{"Subnet": "172.18.0.0/16"}]}
    assert bridge["Options"]["com.docker.network.bridge.name"] == "engine-py0"
    assert (names["host"]["Driver"], names["none"]["Driver"]) == ("host", "null")
    assert driver.calls == [("create", "engine-py0", "172.18.0.0/16")]
    again = service(root)
    assert {n["Name"]: n["Id"] for n in again.list()} == {name: n["Id"] for name, n in names.items()}


def test_bip_fixed_cidr_and_no_default_bridge(root):
    assert service(root, bip="10.99.0.1/24").inspect("bridge")["IPAM"]["Config"] == [
        {"Subnet": "10.99.0.0/24", "Gateway": "10.99.0.1"}]
    kept = service(root, bip="10.99.0.1/24").inspect("bridge")["Id"]
    assert service(root, bip="10.99.0.1/24").inspect("bridge")["Id"] == kept
    ranged = service(root, bip="10.99.0.1/24", fixed_cidr="10.99.0.128/25")
    assert ranged.inspect("bridge")["IPAM"]["Config"] == [
        {"Subnet": "10.99.0.0/24", "IPRange": "10.99.0.128/25", "Gateway": "10.99.0.1"}]
    assert str(ranged.allocate_endpoint("bridge", "c" * 64, "c").address) == "10.99.0.128/24"
    moved = service(root, bip="10.98.0.1/24")      # a container on it: the bridge stays as it was
    assert moved.inspect("bridge")["IPAM"]["Config"][0]["Subnet"] == "10.99.0.0/24"
    moved.release_endpoint("bridge", "c" * 64)
    assert service(root, bip="10.98.0.1/24").inspect("bridge")["IPAM"]["Config"][0]["Subnet"] == "10.98.0.0/24"
    assert sorted(n["Name"] for n in service(root, default_bridge=False).list()) == ["host", "none"]
    with pytest.raises(InvalidParameter, match="^invalid --bip 10.98.0.1: invalid CIDR address: 10.98.0.1$"):
        service(root, bip="10.98.0.1")


def test_create_inspect_and_the_kernel_side(root):
    driver = FakeDriver()
    networks = service(root, driver)
    made = networks.create({"Name": "n3", "CheckDuplicate": True, "Driver": "bridge", "Internal": True,
                            "Attachable": True, "Labels": {"k": "v"},
                            "Options": {"com.docker.network.bridge.name": "brx"},
                            "IPAM": {"Driver": "default", "Options": {},
                                     "Config": [{"Subnet": "10.10.0.0/24", "IPRange": "10.10.0.128/25",
                                                 "Gateway": "10.10.0.254",
                                                 "AuxiliaryAddresses": {"a": "10.10.0.130"}}]}})
    assert made["Warning"] == "" and len(made["Id"]) == 64
    shown = networks.inspect(made["Id"][:12])
    assert list(shown) == ["Name", "Id", "Created", "Scope", "Driver", "EnableIPv6", "IPAM", "Internal",
                           "Attachable", "Ingress", "ConfigFrom", "ConfigOnly", "Containers", "Options", "Labels"]
    assert shown["IPAM"]["Config"] == [{"Subnet": "10.10.0.0/24", "IPRange": "10.10.0.128/25",
                                        "Gateway": "10.10.0.254", "AuxiliaryAddresses": {"a": "10.10.0.130"}}]
    assert (shown["Internal"], shown["Attachable"], shown["Labels"]) == (True, True, {"k": "v"})
    assert driver.calls[-1] == ("create", "brx", "10.10.0.0/24")
    auto = networks.create({"Name": "n1"})
    assert networks.bridge_networks()[-1].bridge == f"br-{auto['Id'][:12]}"


@pytest.mark.parametrize("body, error, message", [
    ({"Name": "host"}, Forbidden, "operation is not permitted on predefined host network "),
    ({"Name": "default"}, Forbidden, "operation is not permitted on predefined default network "),
    ({"Name": "taken", "CheckDuplicate": True}, Conflict, "network with name taken already exists"),
    ({"Name": ""}, System, "invalid name: "),
    ({"Name": "x", "Driver": "foo"}, NotFound, 'plugin "foo" not found'),
    ({"Name": "x", "Driver": "host"}, Forbidden, 'only one instance of "host" network is allowed'),
    ({"Name": "x", "IPAM": {"Driver": "foo"}}, NotFound, 'plugin "foo" not found'),
    ({"Name": "x", "IPAM": {"Config": [{"Subnet": "10.50.0.0/24"}, {"Subnet": "10.51.0.0/24"}]}}, Forbidden,
     "bridge driver doesn't support multiple subnets"),
    ({"Name": "x", "Options": {"com.docker.network.bridge.enable_icc": "maybe"}}, System,
     'failed to parse com.docker.network.bridge.enable_icc value: maybe (strconv.ParseBool: parsing "maybe": '
     "invalid syntax)"),
    ({"Name": "x", "Options": {"com.docker.network.driver.mtu": "abc"}}, System,
     'failed to parse com.docker.network.driver.mtu value: abc (strconv.Atoi: parsing "abc": invalid syntax)'),
    ({"Name": "x", "EnableIPv6": True}, NotFound, "could not find an available, non-overlapping IPv6 address "
     "pool among the defaults to assign to the network"),
    ({"Name": "x", "IPAM": {"Config": [{"Subnet": "10.20.0.0/16"}]}}, Forbidden,
     "Pool overlaps with other one on this address space"),
    ("notanobject", InvalidParameter, "json: cannot unmarshal string into Go value of type "
     "types.NetworkCreateRequest"),
])
def test_create_refusals_leave_nothing(root, body, error, message):
    driver = FakeDriver()
    networks = service(root, driver)
    networks.create({"Name": "taken", "IPAM": {"Config": [{"Subnet": "10.20.0.0/24"}]}})
    before, calls = sorted(os.listdir(root)), list(driver.calls)
    with pytest.raises(error) as e:
        networks.create(body)
    assert str(e.value) == message
    assert sorted(os.listdir(root)) == before and driver.calls == calls


def test_duplicate_name_without_the_check_is_a_warning(root):
    networks = service(root)
    first = networks.create({"Name": "n1"})["Id"]
    second = networks.create({"Name": "n1"})
    assert second["Warning"] == f"Network with name n1 (id : {first}) already exists"
    with pytest.raises(InvalidParameter, match=r"^2 matches found based on name: network n1 is ambiguous$"):
        networks.inspect("n1")
    with pytest.raises(InvalidParameter, match=r"^network n1 is ambiguous \(2 matches found based on name\)$"):
        networks.remove("n1")


def test_a_driver_failure_leaves_no_record(root):
    networks = service(root, FakeDriver())
    networks.driver = FakeDriver(fail_create=True)
    with pytest.raises(OSError):
        networks.create({"Name": "n1"})
    assert [n["Name"] for n in networks.list('{"type":{"custom":true}}')] == []
    networks.driver = FakeDriver()
    assert networks.inspect(networks.create({"Name": "n1"})["Id"])["IPAM"]["Config"][0]["Subnet"] == "172.18.0.0/16"


def test_list_filters(root):
    networks = service(root)
    networks.create({"Name": "web", "Labels": {"k": "v"}})
    networks.create({"Name": "db"})
    names = lambda f: sorted(n["Name"] for n in networks.list(json.dumps(f)))  # noqa: E731
    assert names({"type": {"custom": True}}) == ["db", "web"]
    assert names({"type": {"builtin": True}}) == ["bridge", "host", "none"]
    assert names({"dangling": {"true": True}}) == ["db", "web"]
    assert names({"dangling": {"false": True}}) == ["bridge", "host", "none"]
    assert names({"label": {"k=v": True}}) == ["web"]
    assert names({"name": {"^w": True}}) == ["web"]
    assert names({"driver": {"null": True}}) == ["none"]
    assert names({"scope": {"swarm": True}}) == []
    for bad, error, message in ((
            {"foo": {"x": True}}, InvalidParameter, "Invalid filter 'foo'"),
            ({"type": {"weird": True}}, System, "invalid filter: 'type'='weird'"),
            ({"dangling": {"maybe": True}}, InvalidParameter, "invalid value for filter 'dangling'")):
        with pytest.raises(error, match=message):
            networks.list(json.dumps(bad))


def test_remove_and_prune(root):
    driver = FakeDriver()
    networks = service(root, driver)
    for name in ("a", "b"):
        networks.create({"Name": name, "Labels": {"keep": "1"} if name == "b" else {}})
    with pytest.raises(Forbidden, match="^host is a pre-defined network and cannot be removed$"):
        networks.remove("host")
    with pytest.raises(NotFound, match="^network nosuch not found$"):
        networks.remove("nosuch")
    assert networks.prune('{"label!":{"keep":true}}') == {"NetworksDeleted": ["a"]}
    assert driver.calls[-1][0] == "delete"
    with pytest.raises(InvalidParameter, match="Invalid filter 'name'"):
        networks.prune('{"name":{"x":true}}')
    networks.remove("b")
    assert networks.prune(None) == {"NetworksDeleted": None}


def test_endpoints_get_addresses_once_and_survive_a_restart(root):
    networks = service(root)
    nid = networks.create({"Name": "small", "IPAM": {"Config": [{"Subnet": "10.30.0.0/29",
                                                                 "Gateway": "10.30.0.6"}]}})["Id"]
    first = networks.allocate_endpoint("small", "c1" * 32, "c1", ("web",))
    assert (str(first.address), str(first.gateway), first.mac) == ("10.30.0.1/29", "10.30.0.6", "02:42:0a:1e:00:01")
    assert len(first.endpoint_id) == 64 and first.aliases == ("web",) and first.network_id == nid
    with pytest.raises(Forbidden, match="^Address already in use$"):
        networks.allocate_endpoint("small", "c2" * 32, "c2", ip="10.30.0.1")
    with pytest.raises(System, match="^Invalid address 10.32.0.2: It does not belong to any of this network's "
                                     "subnets$"):
        networks.allocate_endpoint("small", "c2" * 32, "c2", ip="10.32.0.2")
    assert str(networks.allocate_endpoint("small", "c5" * 32, "c5", ip="10.30.0.5").address) == "10.30.0.5/29"
    shown = networks.inspect("small")["Containers"]["c1" * 32]
    assert shown == {"Name": "c1", "EndpointID": first.endpoint_id, "MacAddress": "02:42:0a:1e:00:01",
                     "IPv4Address": "10.30.0.1/29", "IPv6Address": ""}
    with pytest.raises(Forbidden, match="has active endpoints"):
        networks.remove("small")

    again = service(root)                        # an engine restart: nothing handed out twice
    assert [str(again.allocate_endpoint("small", f"{n}" * 64, "x").address) for n in range(3)] == [
        "10.30.0.2/29", "10.30.0.3/29", "10.30.0.4/29"]
    full = rf"^no available IPv4 addresses on this network's address pools: small \({nid}\)$"
    with pytest.raises(System, match=full):
        again.allocate_endpoint("small", "9" * 64, "full")
    again.release_endpoint("small", "c1" * 32)
    again.release_endpoint("small", "c1" * 32)   # twice: no error
    assert str(again.allocate_endpoint("small", "8" * 64, "y").address) == "10.30.0.1/29"


def test_bridge_names_are_one_network_each(root):
    networks = service(root)
    first = networks.create({"Name": "b1", "Options": {"com.docker.network.bridge.name": "brdup"}})["Id"]
    with pytest.raises(Forbidden, match=rf"^cannot create network [0-9a-f]{{64}} \(brdup\): conflicts with network "
                                        rf"{first} \(brdup\): networks have same bridge name$"):
        networks.create({"Name": "b2", "Options": {"com.docker.network.bridge.name": "brdup"}})
    with pytest.raises(Forbidden, match="networks have same bridge name"):
        networks.create({"Name": "b3", "Options": {"com.docker.network.bridge.name": "engine-py0"}})


def test_config_only_networks_and_request_shapes(root):
    driver = FakeDriver()
    networks = service(root, driver)
    calls = list(driver.calls)
    made = networks.create({"Name": "co", "ConfigOnly": True, "IPAM": {"Config": [{"Subnet": "10.77.0.0/24"}]}})
    shown = networks.inspect(made["Id"])
    assert (shown["Driver"], shown["ConfigOnly"]) == ("null", True)
    assert shown["IPAM"]["Config"] == [{"Subnet": "10.77.0.0/24"}]
    networks.create({"Name": "beside", "IPAM": {"Config": [{"Subnet": "10.77.0.0/24"}]}})  # nothing was allocated
    networks.remove("co")
    assert [call[0] for call in driver.calls[len(calls):]] == ["create"]
    with pytest.raises(InvalidParameter, match="^got EOF while reading request body$"):
        networks.create(None)
    with pytest.raises(Forbidden, match="^cannot create a swarm scoped network when swarm is not active$"):
        networks.create({"Name": "sw", "Scope": "swarm"})
    with pytest.raises(InvalidParameter, match="NetworkCreateRequest.Internal of type bool"):
        networks.create({"Name": "x", "Internal": "yes"})


def test_the_daemons_icc_ip_masq_and_mtu_reach_the_default_bridge_at_each_start(root):
    assert service(root).inspect("bridge")["Options"]["com.docker.network.bridge.enable_icc"] == "true"
    again = service(root, icc=False, ip_masq=False, mtu=1400)
    bridge = again.bridge_network(again.find("bridge"))
    assert (bridge.icc, bridge.masquerade, bridge.mtu) == (False, False, 1400)
    options = again.inspect("bridge")["Options"]
    assert (options["com.docker.network.bridge.enable_icc"], options["com.docker.network.driver.mtu"]) == \
        ("false", "1400")
    third = service(root)
    assert third.bridge_network(third.find("bridge")).icc is True


def test_the_default_bridge_on_a_bridge_named_with_b(root):
    driver = FakeDriver()
    networks = service(root, driver, bridge_name="mybr0")
    assert networks.inspect("bridge")["Options"]["com.docker.network.bridge.name"] == "mybr0"
    assert driver.calls[-1][:2] == ("create", "mybr0")
    assert service(root).find("bridge").bridge == "engine-py0"  # made again on the default one, without -b
