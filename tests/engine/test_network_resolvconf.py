"""A container's resolv.conf and its resolver's upstreams. The expected
texts are what Debian's dockerd 20.10 wrote for the same host file and flags
(`docker run --network none|<user network> ... cat /etc/resolv.conf` with the
host file bind-mounted over /etc/resolv.conf in dockerd's mount namespace);
test_network_resolvconf_dockerd.py compares live with this machine's file."""
import pytest

from engine.network.resolvconf import DnsSettings, embedded_resolv_conf, resolv_conf, upstreams

SEARCHING = "search a.example b.example\nnameserver 127.0.0.1\noptions edns0 trust-ad\n"
MIXED = ("nameserver 10.0.0.2\nnameserver 2001:db8::53\nnameserver ::1\n# comment\n"
         "domain d.example\nsearch s1\nsearch s2 s3\n")


@pytest.mark.parametrize("host,dns,expected", [
    (SEARCHING, DnsSettings(), "search a.example b.example\noptions edns0 trust-ad\n\nnameserver 8.8.8.8\n"
                               "nameserver 8.8.4.4\n"),
    ("nameserver 127.0.0.1", DnsSettings(), "\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"),
    ("nameserver ::1\n", DnsSettings(), "\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"),
    (MIXED, DnsSettings(), "nameserver 10.0.0.2\n# comment\ndomain d.example\nsearch s1\nsearch s2 s3\n"),
    (SEARCHING, DnsSettings(servers=("9.9.9.9",)), "search a.example b.example\nnameserver 9.9.9.9\n"
                                                   "options edns0 trust-ad\n"),
    (MIXED, DnsSettings(options=("attempts:2", "ndots:-1")),
     "search s2 s3\nnameserver 10.0.0.2\nnameserver 2001:db8::53\nnameserver ::1\noptions attempts:2 ndots:-1\n"),
    (SEARCHING, DnsSettings(search=(".",)), "nameserver 127.0.0.1\noptions edns0 trust-ad\n"),
])
def test_default_bridge_file_as_dockerd_writes_it(host, dns, expected):
    assert resolv_conf(host, dns) == expected


def test_host_network_file_is_the_hosts_unless_flags_change_it():
    host = "search a.example\nnameserver 127.0.0.1\nnameserver 2001:db8::53\n"
    assert resolv_conf(host, host_network=True) == host
    assert resolv_conf(host, DnsSettings(search=("x.example",)), host_network=True) == (
        "search x.example\nnameserver 127.0.0.1\nnameserver 2001:db8::53\n")


@pytest.mark.parametrize("host,dns,expected", [
    (SEARCHING, DnsSettings(), "search a.example b.example\nnameserver 127.0.0.11\noptions edns0 trust-ad ndots:0\n"),
    ("nameserver 127.0.0.1", DnsSettings(), "nameserver 127.0.0.11\noptions ndots:0\n"),
    (MIXED, DnsSettings(), "search s2 s3\nnameserver 127.0.0.11\noptions ndots:0\n"),
    (SEARCHING, DnsSettings(servers=("9.9.9.9", "2001:db8::1")),
     "search a.example b.example\nnameserver 127.0.0.11\nnameserver 2001:db8::1\noptions edns0 trust-ad ndots:0\n"),
    (SEARCHING, DnsSettings(search=("x.example",)),
     "search x.example\nnameserver 127.0.0.11\noptions edns0 trust-ad ndots:0\n"),
    (SEARCHING, DnsSettings(options=("ndots:3",)),
     "search a.example b.example\nnameserver 127.0.0.11\noptions ndots:3\n"),
    # a bad ndots: dockerd logs it and leaves the file without the resolver
    (SEARCHING, DnsSettings(options=("ndots:x",)),
     "search a.example b.example\nnameserver 127.0.0.1\noptions ndots:x\n"),
    ("nameserver ::1\n", DnsSettings(options=("attempts:2", "ndots:-1")),
     "nameserver ::1\noptions attempts:2 ndots:-1\n"),
])
def test_user_network_file_points_at_the_embedded_resolver(host, dns, expected):
    assert embedded_resolv_conf(host, dns) == expected


@pytest.mark.parametrize("host,dns,expected", [
    (SEARCHING, DnsSettings(), ["127.0.0.1"]),      # forwarded from the engine's namespace, where it answers
    (MIXED, DnsSettings(), ["10.0.0.2"]),
    ("nameserver ::1\n", DnsSettings(), ["8.8.8.8", "8.8.4.4"]),
    ("", DnsSettings(), ["8.8.8.8", "8.8.4.4"]),
    (MIXED, DnsSettings(servers=("9.9.9.9", "2001:db8::1")), ["9.9.9.9"]),
    (MIXED, DnsSettings(search=("x.example",)), ["10.0.0.2"]),
])
def test_upstreams_of_the_embedded_resolver(host, dns, expected):
    assert upstreams(host, dns) == expected
