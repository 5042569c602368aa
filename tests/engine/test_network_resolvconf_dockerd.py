"""The resolv.conf of a running container, ours against real dockerd's, from
this machine's /etc/resolv.conf (the recorded cases in
test_network_resolvconf.py cover host files this machine does not have)."""
import pytest

from engine.network.resolvconf import DnsSettings, embedded_resolv_conf, resolv_conf
from engine.textfiles import read_or_empty

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def user_network(dockerd):
    dockerd.docker("network", "create", "dns-resolvconf")
    yield "dns-resolvconf"
    dockerd.docker("network", "rm", "dns-resolvconf", check=False)


@pytest.mark.parametrize("flags,dns", [
    ((), DnsSettings()),
    (("--dns", "10.1.2.3", "--dns", "2001:db8::1"), DnsSettings(servers=("10.1.2.3", "2001:db8::1"))),
    (("--dns-search", "x.example", "--dns-option", "attempts:2"),
     DnsSettings(search=("x.example",), options=("attempts:2",))),
    (("--dns-option", "ndots:2"), DnsSettings(options=("ndots:2",))),
])
@pytest.mark.parametrize("embedded", [False, True], ids=["network-none", "user-network"])
def test_resolv_conf_is_dockerds(dockerd, user_network, embedded, flags, dns):
    network = user_network if embedded else "none"
    seen = dockerd.docker("run", "--rm", "--network", network, *flags, "busybox", "cat", "/etc/resolv.conf").stdout
    host = read_or_empty("/etc/resolv.conf")
    assert (embedded_resolv_conf if embedded else resolv_conf)(host, dns) == seen
