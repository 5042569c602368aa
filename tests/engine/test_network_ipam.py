"""IPAM as dockerd 20.10's default allocator: its pools, subnet choice,
config checks and errors, lowest-free addresses (measured against 20.10)."""
import ipaddress

import pytest

from engine.errors import Forbidden, NotFound, System, Unimplemented
from engine.network import ipam

net = ipaddress.IPv4Network
ip = ipaddress.IPv4Address


def test_default_pools_are_dockerds_in_order():
    pools = ipam.address_pools()
    assert [str(p) for p in pools[:15]] == [f"172.{n}.0.0/16" for n in range(17, 32)]
    assert [str(p) for p in pools[15:18]] == ["192.168.0.0/20", "192.168.16.0/20", "192.168.32.0/20"]
    assert len(pools) == 15 + 16
    assert ipam.address_pools([("10.10.0.0/16", 24)])[:2] == [net("10.10.0.0/24"), net("10.10.1.0/24")]


def test_subnet_choice_skips_networks_and_host_routes():
    pools = ipam.address_pools()
    assert ipam.choose_subnet(pools, [net("172.17.0.0/16")], [net("172.18.5.0/24")]) == net("172.19.0.0/16")
    taken = pools[:15] + [net("192.168.0.0/20")]
    assert ipam.choose_subnet(pools, taken) == net("192.168.16.0/20")
    with pytest.raises(NotFound, match="could not find an available, non-overlapping IPv4 address pool"):
        ipam.choose_subnet(pools, [net("0.0.0.0/1"), net("128.0.0.0/1")])


def test_routes_from_proc_leave_out_the_default_route():
    text = ("Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
            "eth0\t00000000\t0102A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
            "eth0\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n")
    assert ipam.routes_from_proc(text) == [net("192.168.0.0/24")]


def test_addresses_are_lowest_free_not_serial():
    pool = ipam.Pool.new(net("10.30.0.0/29"))
    assert pool.request(ip("10.30.0.6")) == ip("10.30.0.6")     # a gateway asked for
    assert [pool.request() for _ in range(3)] == [ip("10.30.0.1"), ip("10.30.0.2"), ip("10.30.0.3")]
    pool.release(ip("10.30.0.1"))
    assert pool.request() == ip("10.30.0.1")
    assert pool.request(ip("10.30.0.5")) == ip("10.30.0.5")
    assert pool.request() == ip("10.30.0.4")
    with pytest.raises(ipam.AddressError, match=ipam.NO_ADDRESSES):
        pool.request()
    with pytest.raises(ipam.AddressError, match=ipam.IN_USE):
        pool.request(ip("10.30.0.7"))                           # broadcast, never given


def test_ip_range_is_where_containers_get_theirs_and_taken_survives_reload():
    pool = ipam.Pool.new(net("10.31.0.0/24"), net("10.31.0.64/26"))
    assert pool.request() == ip("10.31.0.64")                   # the gateway, as dockerd gives it
    assert pool.request(ip("10.31.0.200")) == ip("10.31.0.200")  # outside the range, inside the subnet
    again = ipam.Pool.new(net("10.31.0.0/24"), net("10.31.0.64/26"), ["10.31.0.64", "10.31.0.200"])
    assert again.request() == ip("10.31.0.65")
    with pytest.raises(ipam.AddressError, match=ipam.IN_USE):
        again.request(ip("10.31.0.200"))
    # a range outside the subnet lands inside it by its host part, as on 20.10
    assert ipam.Pool.new(net("10.44.0.0/24"), net("10.45.0.0/25")).request() == ip("10.44.0.1")


def allocate(configs, taken=()):
    return ipam.allocate_network("n", configs, list(taken), ipam.address_pools())


@pytest.mark.parametrize("config, error, message", [
    ({"Subnet": "foo"}, System, "Invalid subnet foo : invalid CIDR address: foo"),
    ({"Subnet": "10.1.0.0"}, System, "Invalid subnet 10.1.0.0 : invalid CIDR address: 10.1.0.0"),
    ({"IPRange": "10.48.0.0/25"}, System, "Invalid subnet  : invalid CIDR address: "),
    ({"Subnet": "10.43.0.0/24", "Gateway": "foo"}, System, "invalid gateway address foo in Ipam configuration"),
    ({"Subnet": "fd00::/64"}, Unimplemented, "IPv6 subnets are not supported"),
])
def test_config_checks(config, error, message):
    with pytest.raises(error) as e:
        ipam.check_config(config)
    assert str(e.value).startswith(message)


@pytest.mark.parametrize("config, error, message", [
    ({"Subnet": "10.41.0.0/24", "Gateway": "10.42.0.1"}, System,
     "failed to allocate gateway (10.42.0.1): Requested address is out of range"),
    ({"Subnet": "10.54.0.0/24", "Gateway": "10.54.0.0"}, System,
     "failed to allocate gateway (10.54.0.0): Address already in use"),
    ({"Subnet": "10.57.0.0/32"}, System, "failed to allocate gateway (): No available addresses on this pool"),
    ({"Subnet": "10.58.0.0/31"}, System, "failed to allocate gateway (): No available addresses on this pool"),
    ({"Subnet": "10.46.0.0/24", "AuxiliaryAddresses": {"x": "10.47.0.1"}}, Forbidden,
     "auxiliary address: (x:10.47.0.1) must belong to the master pool: 10.46.0.0/24"),
    ({"Subnet": "10.53.0.0/24", "AuxiliaryAddresses": {"x": "foo"}}, System,
     "non parsable secondary ip address (x:foo) passed for network n"),
    ({"Subnet": "10.56.0.0/24", "Gateway": "10.56.0.5", "AuxiliaryAddresses": {"x": "10.56.0.5"}}, System,
     "failed to allocate secondary ip address (x:10.56.0.5): Address already in use"),
    ({"Subnet": "10.52.0.0/24", "IPRange": "foo"}, System,
     'failed to parse pool request for address space "LocalDefault" pool "10.52.0.0/24" subpool "foo": '
     "Invalid Address SubPool"),
    ({"Subnet": "10.0.0.0/8"}, Forbidden, "Pool overlaps with other one on this address space"),
])
def test_allocation_errors_are_dockerds(config, error, message):
    with pytest.raises(error) as e:
        allocate([config], taken=[net("10.10.0.0/24")] if config["Subnet"] == "10.0.0.0/8" else ())
    assert str(e.value) == message


def test_allocation_shows_the_config_as_given():
    given = allocate([{"Subnet": "10.40.0.5/24"}])
    assert (given.shown, given.subnet, given.gateway) == ({"Subnet": "10.40.0.5/24"}, net("10.40.0.0/24"),
                                                         ip("10.40.0.1"))
    full = allocate([{"Subnet": "10.10.0.0/24", "Gateway": "10.10.0.254", "IPRange": "10.10.0.128/25",
                      "AuxiliaryAddresses": {"a": "10.10.0.130"}}])
    assert list(full.shown) == ["Subnet", "IPRange", "Gateway", "AuxiliaryAddresses"]
    assert full.reserved == ["10.10.0.254", "10.10.0.130"]
    auto = allocate([], taken=[net("172.17.0.0/16")])
    assert auto.shown == {"Subnet": "172.18.0.0/16", "Gateway": "172.18.0.1"}


def test_mac_is_made_from_the_address():
    assert ipam.mac_address(ip("172.17.0.2")) == "02:42:ac:11:00:02"
    assert ipam.mac_address(ip("10.31.0.65")) == "02:42:0a:1f:00:41"
