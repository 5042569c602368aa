"""The table's text computed from the engine's state (no kernel): which rule
each network and published port gives, and names nftables cannot carry."""
import ipaddress

import pytest

from engine.network.firewall import ruleset
from engine.network.types import BridgeNetwork, PortBinding


def network(bridge, third, **options):
    return BridgeNetwork(bridge, bridge, ipaddress.IPv4Network(f"172.{third}.0.0/16"),
                         ipaddress.IPv4Address(f"172.{third}.0.1"), **options)


def binding(host_port, container_ip="172.17.0.2", proto="tcp", host_ip="", bridge="engine-py0"):
    return PortBinding(proto, host_ip, host_port, container_ip, 80, bridge)


def chain(text, name):
    body = text.split(f"\tchain {name} {{\n", 1)[1].split("\t}\n", 1)[0]
    return [line.strip() for line in body.splitlines()]


def test_the_whole_table_is_replaced_in_one_script():
    text = ruleset("engine-py", [], [])
    assert text.startswith("table ip engine-py\ndelete table ip engine-py\ntable ip engine-py {\n")
    assert chain(text, "prerouting") == ["type nat hook prerouting priority dstnat; policy accept;",
                                         "fib daddr type local jump published"]
    assert chain(text, "output") == ["type nat hook output priority -100; policy accept;",
                                     "fib daddr type local jump published"]
    assert chain(text, "published") == []


def test_published_ports_dnat_on_every_local_address_or_the_given_one():
    text = ruleset("engine-py", [network("engine-py0", 17)], [
        binding(8080), binding(5353, proto="udp", host_ip="127.0.0.1"), binding(9000, host_ip="0.0.0.0"),
        binding(9001, host_ip="::1"),
    ])
    assert chain(text, "published") == [
        "tcp dport 8080 dnat to 172.17.0.2:80",
        "tcp dport 9000 dnat to 172.17.0.2:80",
        "ip daddr 127.0.0.1 udp dport 5353 dnat to 172.17.0.2:80",
    ]


def test_masquerade_out_loopback_in_and_hairpin():
    text = ruleset("engine-py", [network("engine-py0", 17), network("br-nomasq", 18, masquerade=False)],
                   [binding(8080), binding(8081)])
    assert chain(text, "postrouting") == [
        "type nat hook postrouting priority srcnat; policy accept;",
        'ip saddr 127.0.0.0/8 oifname "br-nomasq" masquerade',
        'ip saddr 172.17.0.0/16 oifname != "engine-py0" masquerade',
        'ip saddr 127.0.0.0/8 oifname "engine-py0" masquerade',
        "ip saddr 172.17.0.2 ip daddr 172.17.0.2 tcp dport 80 masquerade",
    ]


def test_forwarding_rules_name_only_our_bridges():
    text = ruleset("engine-py", [network("engine-py0", 17), network("br-a", 18, icc=False)], [])
    assert chain(text, "forward") == [
        "type filter hook forward priority filter; policy accept;",
        'iifname "br-a" oifname "br-a" drop',
        'iifname "br-a" oifname { "engine-py0" } drop',
        'iifname "br-a" accept',
        'oifname "br-a" ct state established,related accept',
        'oifname "br-a" ct status dnat accept',
        'oifname "br-a" drop',
        'iifname "engine-py0" oifname "engine-py0" accept',
        'iifname "engine-py0" oifname { "br-a" } drop',
        'iifname "engine-py0" accept',
        'oifname "engine-py0" ct state established,related accept',
        'oifname "engine-py0" ct status dnat accept',
        'oifname "engine-py0" drop',
    ]


def test_internal_network_keeps_to_itself_and_publishes_nothing():
    text = ruleset("engine-py", [network("br-int", 20, internal=True)], [binding(8080, "172.20.0.2", bridge="br-int")])
    assert chain(text, "published") == []
    assert chain(text, "postrouting") == ["type nat hook postrouting priority srcnat; policy accept;"]
    assert chain(text, "forward")[1:] == [
        'iifname "br-int" oifname "br-int" accept', 'iifname "br-int" drop', 'oifname "br-int" drop',
    ]


def test_the_same_state_gives_the_same_text_in_any_order():
    networks = [network("engine-py0", 17), network("br-a", 18)]
    ports = [binding(8080), binding(8081, "172.18.0.2", bridge="br-a")]
    assert ruleset("engine-py", networks, ports) == ruleset("engine-py", networks[::-1], ports[::-1])


@pytest.mark.parametrize("bad", ['br"x', "br\\x", "", "br\nx"])
def test_a_bridge_name_that_would_break_the_quotes_is_refused(bad):
    with pytest.raises(ValueError, match="invalid name for an nftables rule"):
        ruleset("engine-py", [network(bad, 17)], [])


def test_an_unknown_protocol_is_refused():
    with pytest.raises(ValueError, match="unknown protocol 'sctp'"):
        ruleset("engine-py", [network("engine-py0", 17)], [binding(8080, proto="sctp")])


def test_a_table_name_nftables_cannot_read_unquoted_is_refused():
    with pytest.raises(ValueError, match="invalid nftables table name"):
        ruleset("engine py", [], [])
