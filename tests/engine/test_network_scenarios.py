"""Container networking as a user sees it, the same scenarios against
engine-py and real dockerd (each in a network namespace of the test's own):
the default bridge's addresses and outbound NAT, user networks reaching each
other by name and alias, published ports answered from the daemon's
namespace (loopback too) and from outside it, isolation, --internal,
connect/disconnect while running."""
import ipaddress
import json
import subprocess
import uuid

import pytest

pytestmark = pytest.mark.root

DAEMONS = ("engine_py", "dockerd")


@pytest.fixture(params=DAEMONS)
def daemon(request):
    return request.getfixturevalue(request.param)


class Made:
    """Containers and networks a test made on one daemon, removed after it."""

    def __init__(self, daemon):
        self.daemon, self.containers, self.networks = daemon, [], []

    def docker(self, *args, check=True):
        return self.daemon.docker(*args, check=check)

    def run(self, *args) -> str:
        name = f"n-{uuid.uuid4().hex[:8]}"
        self.containers.append(name)
        self.docker("run", "-d", "--name", name, *args)
        return name

    def network(self, *args) -> str:
        name = f"net-{uuid.uuid4().hex[:8]}"
        self.networks.append(name)
        self.docker("network", "create", *args, name)
        return name

    def inspect(self, ref: str) -> dict:
        return json.loads(self.docker("inspect", ref).stdout)[0]

    def sh(self, container: str, script: str, check=True):
        return self.docker("exec", container, "sh", "-c", script, check=check)

    def cleanup(self):
        if self.containers:
            self.docker("rm", "-f", *self.containers, check=False)
        for network in self.networks:
            self.docker("network", "rm", network, check=False)


@pytest.fixture
def made(daemon):
    made = Made(daemon)
    yield made
    made.cleanup()


def in_netns(netns: str, *argv, timeout=20, check=True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", netns, *argv], capture_output=True, text=True,
                          timeout=timeout, check=check)


HTTP_PEER = r"""
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = self.client_address[0].encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
http.server.HTTPServer((sys.argv[1], 8000), H).serve_forever()
"""


@pytest.fixture
def outside(daemon):
    """A namespace beside the daemon's, linked by a veth pair: the daemon's
    side 10.251.0.1/24, the outside 10.251.0.2/24 (the route out of the
    daemon's namespace goes there), with an HTTP server answering each
    request with the address it came from."""
    netns = f"outside-{uuid.uuid4().hex[:6]}"
    host_end, far_end = f"o{uuid.uuid4().hex[:8]}", f"p{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    server = None
    try:
        for argv in (["ip", "link", "add", host_end, "netns", daemon.netns, "type", "veth", "peer", "name", far_end,
                      "netns", netns],
                     ["ip", "-n", daemon.netns, "addr", "add", "10.251.0.1/24", "dev", host_end],
                     ["ip", "-n", daemon.netns, "link", "set", host_end, "up"],
                     ["ip", "-n", daemon.netns, "route", "add", "default", "via", "10.251.0.2"],
                     ["ip", "-n", netns, "addr", "add", "10.251.0.2/24", "dev", far_end],
                     ["ip", "-n", netns, "link", "set", far_end, "up"],
                     ["ip", "-n", netns, "link", "set", "lo", "up"]):
            subprocess.run(argv, check=True)
        server = subprocess.Popen(["ip", "netns", "exec", netns, "python3", "-c", HTTP_PEER, "10.251.0.2"])
        in_netns(netns, "python3", "-c", "import socket,time\nfor _ in range(100):\n"
                 "    try: socket.create_connection(('10.251.0.2', 8000), 1).close(); break\n"
                 "    except OSError: time.sleep(0.05)")
        yield netns
    finally:
        if server is not None:
            server.kill()
            server.wait()
        subprocess.run(["ip", "-n", daemon.netns, "link", "del", host_end], check=False)
        subprocess.run(["ip", "netns", "del", netns], check=False)


def wget(made: Made, container: str, url: str, check=True):
    """(busybox's wget -T crashes in this image: timeout(1) bounds it instead)"""
    return made.sh(container, f"timeout 3 wget -q -O - {url}", check=check)


def resolved(made: Made, container: str, name: str) -> list[str]:
    """The addresses the container's resolver gives for ``name`` (busybox's
    nslookup: the image's static wget and ping cannot resolve names)."""
    out = made.sh(container, f"nslookup {name}", check=False).stdout
    if "Name:" not in out:
        return []
    return [line.split()[-1] for line in out.split("Name:", 1)[1].splitlines() if line.startswith("Address")]


FETCH = "import sys,urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())"

UDP_ECHO = ("import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('0.0.0.0',53))\n"
            "while True:\n    data,peer=s.recvfrom(100); s.sendto(data.upper(),peer)")


def test_default_bridge_gives_an_address_a_gateway_and_dockerd_settings(made):
    name = made.run("busybox", "sleep", "1000")
    settings = made.inspect(name)["NetworkSettings"]
    endpoint = settings["Networks"]["bridge"]
    address = ipaddress.ip_interface(f"{settings['IPAddress']}/{settings['IPPrefixLen']}")
    assert ipaddress.ip_address(settings["Gateway"]) in address.network
    assert settings["MacAddress"] == "02:42:" + ":".join(f"{b:02x}" for b in address.ip.packed)
    assert {k: endpoint[k] for k in ("IPAddress", "Gateway", "MacAddress", "IPPrefixLen", "EndpointID")} == \
        {k: settings[k] for k in ("IPAddress", "Gateway", "MacAddress", "IPPrefixLen", "EndpointID")}
    assert len(endpoint["EndpointID"]) == 64 and len(endpoint["NetworkID"]) == 64
    assert endpoint["Aliases"] is None and settings["SandboxKey"]
    inside = made.sh(name, "ip -4 addr show eth0; ip route; cat /etc/hosts").stdout
    assert f"inet {address}" in inside and f"default via {settings['Gateway']}" in inside
    assert f"{address.ip}\t{made.inspect(name)['Config']['Hostname']}\n" in inside
    network = json.loads(made.docker("network", "inspect", "bridge").stdout)[0]
    assert network["Id"] == endpoint["NetworkID"]
    assert network["Containers"][made.inspect(name)["Id"]]["IPv4Address"] == str(address)

    made.docker("stop", "-t", "0", name)
    stopped = made.inspect(name)["NetworkSettings"]
    assert (stopped["IPAddress"], stopped["Ports"], stopped["Networks"]["bridge"]["IPAddress"]) == ("", {}, "")
    assert stopped["Networks"]["bridge"]["NetworkID"] == endpoint["NetworkID"]


def test_outbound_traffic_is_masqueraded(made, outside):
    name = made.run("busybox", "sleep", "1000")
    assert wget(made, name, "http://10.251.0.2:8000/").stdout == "10.251.0.1"


def test_a_published_port_answers_from_outside_and_from_loopback(made, outside):
    name = made.run("-p", "8080:80", "-p", "127.0.0.1::81", "busybox", "sh", "-c",
                    "echo hello > /tmp/index.html; httpd -h /tmp -p 80; httpd -h /tmp -p 81; sleep 1000")
    assert made.docker("port", name, "80/tcp").stdout.splitlines()[0] == "0.0.0.0:8080"
    local = made.docker("port", name, "81").stdout.splitlines()[0]
    assert local.startswith("127.0.0.1:")
    ports = made.inspect(name)["NetworkSettings"]["Ports"]
    assert ports["80/tcp"][0] == {"HostIp": "0.0.0.0", "HostPort": "8080"}
    assert in_netns(outside, "python3", "-c", FETCH, "http://10.251.0.1:8080/index.html").stdout == "hello\n"
    daemon_ns = made.daemon.netns
    assert in_netns(daemon_ns, "python3", "-c", FETCH, "http://127.0.0.1:8080/index.html").stdout == "hello\n"
    assert in_netns(daemon_ns, "python3", "-c", FETCH, f"http://{local}/index.html").stdout == "hello\n"
    listed = made.docker("ps", "--filter", f"name={name}", "--format", "{{.Ports}}").stdout
    assert "0.0.0.0:8080->80/tcp" in listed and "127.0.0.1:" in listed

    made.docker("stop", "-t", "0", name)
    gone = in_netns(daemon_ns, "python3", "-c", FETCH, "http://127.0.0.1:8080/index.html", check=False)
    assert gone.returncode != 0


def test_publish_all_takes_random_ports_for_exposed_ones(made):
    name = made.run("--expose", "80", "-P", "busybox", "sh", "-c",
                    "echo hi > /tmp/index.html; httpd -f -h /tmp -p 80")
    host_port = int(made.inspect(name)["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"])
    assert 32768 <= host_port <= 60999
    assert in_netns(made.daemon.netns, "python3", "-c", FETCH,
                    f"http://127.0.0.1:{host_port}/index.html").stdout == "hi\n"


def test_a_udp_port_is_forwarded(made, outside):
    """The echo server is the host's python run inside the container
    (busybox has no UDP listener)."""
    made.run("-p", "5353:53/udp", "-v", "/:/host:ro", "busybox", "chroot", "/host", "/usr/bin/python3", "-c",
             UDP_ECHO)
    send = ("import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.settimeout(0.2)\n"
            "for _ in range(50):\n    s.sendto(b'ping',(sys.argv[1],5353))\n"
            "    try: print(s.recv(100).decode()); break\n    except OSError: pass")
    assert in_netns(outside, "python3", "-c", send, "10.251.0.1").stdout == "PING\n"


def test_a_used_host_port_is_refused_and_nothing_is_left(made):
    first = made.run("-p", "8181:80", "busybox", "sleep", "1000")
    name = f"n-{uuid.uuid4().hex[:8]}"
    made.containers.append(name)
    refused = made.docker("run", "-d", "--name", name, "-p", "8181:80", "busybox", "sleep", "1000", check=False)
    assert refused.returncode != 0
    assert "Bind for 0.0.0.0:8181 failed: port is already allocated" in refused.stderr
    state = made.inspect(name)
    assert (state["State"]["Running"], state["NetworkSettings"]["Ports"]) == (False, {})
    made.docker("rm", "-f", first)
    made.docker("start", name)  # the port is free again


def test_user_network_containers_reach_each_other_by_name_and_alias(made):
    network = made.network("--subnet", "10.123.45.0/24")
    server = made.run("--network", network, "--network-alias", "web", "busybox", "sh", "-c",
                      "echo named > /tmp/index.html; httpd -f -h /tmp -p 80")
    client = made.run("--network", network, "busybox", "sleep", "1000")
    address = made.inspect(server)["NetworkSettings"]["Networks"][network]["IPAddress"]
    assert address.startswith("10.123.45.")
    assert made.inspect(server)["NetworkSettings"]["Networks"][network]["Aliases"][0] == "web"
    for host in (server, "web", made.inspect(server)["Id"][:12]):
        assert resolved(made, client, host) == [address]
    assert wget(made, client, f"http://{address}/index.html").stdout == "named\n"
    assert made.sh(client, "cat /etc/resolv.conf").stdout == "nameserver 127.0.0.11\noptions ndots:0\n"
    assert resolved(made, client, "no-such-container") == []


def test_networks_are_isolated_and_internal_has_no_way_out(made, outside):
    first, second = made.network(), made.network()
    internal = made.network("--internal")
    a = made.run("--network", first, "busybox", "sh", "-c", "echo a > /tmp/index.html; httpd -f -h /tmp -p 80")
    b = made.run("--network", second, "busybox", "sleep", "1000")
    c = made.run("--network", internal, "busybox", "sleep", "1000")
    a_address = made.inspect(a)["NetworkSettings"]["Networks"][first]["IPAddress"]
    assert wget(made, b, f"http://{a_address}/index.html", check=False).returncode != 0
    assert wget(made, c, "http://10.251.0.2:8000/", check=False).returncode != 0

    made.docker("network", "connect", first, b)  # now b reaches a
    assert wget(made, b, f"http://{a_address}/index.html").stdout == "a\n"
    assert resolved(made, b, a) == [a_address]
    made.docker("network", "disconnect", first, b)
    assert wget(made, b, f"http://{a_address}/index.html", check=False).returncode != 0


def test_removing_a_network_in_use_is_refused(made):
    network = made.network()
    name = made.run("--network", network, "busybox", "sleep", "1000")
    refused = made.docker("network", "rm", network, check=False)
    assert refused.returncode != 0 and "has active endpoints" in refused.stderr
    bridge = "br-" + json.loads(made.docker("network", "inspect", network).stdout)[0]["Id"][:12]
    links = in_netns(made.daemon.netns, "ip", "-o", "link").stdout
    assert bridge in links and "veth" in links
    made.docker("rm", "-f", name)
    made.docker("network", "rm", network)
    links = in_netns(made.daemon.netns, "ip", "-o", "link").stdout
    assert bridge not in links and f"master {bridge}" not in links  # nothing of it left


def test_a_user_network_gives_the_ip_asked_for_once(made):
    network = made.network("--subnet", "10.124.0.0/24")
    name = made.run("--network", network, "--ip", "10.124.0.77", "busybox", "sleep", "1000")
    assert made.inspect(name)["NetworkSettings"]["Networks"][network]["IPAddress"] == "10.124.0.77"
    with_mac = f"n-{uuid.uuid4().hex[:8]}"
    made.containers.append(with_mac)
    old_cli = made.daemon.cli("20.10") if hasattr(made.daemon, "cli") else made.daemon  # CLI 28 wants API 1.44 for it
    old_cli.docker("run", "-d", "--name", with_mac, "--mac-address", "02:42:0a:7c:00:99", "busybox", "sleep", "1000")
    assert made.inspect(with_mac)["NetworkSettings"]["MacAddress"] == "02:42:0a:7c:00:99"
    assert "link/ether 02:42:0a:7c:00:99" in made.sh(with_mac, "ip link show eth0").stdout
    taken = made.docker("run", "--rm", "--network", network, "--ip", "10.124.0.77", "busybox", "true", check=False)
    assert taken.returncode != 0 and "Address already in use" in taken.stderr



def test_legacy_links_on_the_default_bridge(made):
    linked = made.run("-e", "FOO=bar", "--expose", "80", "busybox", "sleep", "1000")
    shown = made.inspect(linked)
    address, hostname = shown["NetworkSettings"]["IPAddress"], shown["Config"]["Hostname"]
    name = f"n-{uuid.uuid4().hex[:8]}"
    made.containers.append(name)
    made.docker("create", "--name", name, "--link", f"{linked}:db", "busybox", "sh", "-c",
                "cat /etc/hosts; env | sort")
    assert made.inspect(name)["HostConfig"]["Links"] == [f"/{linked}:/{name}/db"]
    for _ in range(2):  # a second start gives the same, not the first start's twice
        out = made.docker("start", "-a", name).stdout
        assert f"{address}\tdb {hostname} {linked}\n" in out
        env = [line for line in out.splitlines() if line.startswith("DB_")]
        assert env == ["DB_ENV_FOO=bar", f"DB_NAME=/{name}/db", f"DB_PORT=tcp://{address}:80",
                       f"DB_PORT_80_TCP=tcp://{address}:80", f"DB_PORT_80_TCP_ADDR={address}",
                       "DB_PORT_80_TCP_PORT=80", "DB_PORT_80_TCP_PROTO=tcp"]
    missing = made.docker("create", "--link", "no-such-container:x", "busybox", "true", check=False)
    assert "could not get container for no-such-container" in missing.stderr
    made.docker("stop", "-t", "0", linked)
    stopped = made.docker("start", name, check=False)
    assert f"Cannot link to a non running container: /{linked} AS /{name}/db" in stopped.stderr


def test_containers_reach_a_published_port_through_the_host(made):
    """Through the gateway's address: another container, and the publishing
    container itself (hairpin)."""
    web = made.run("-p", "8282:80", "busybox", "sh", "-c", "echo hairpin > /tmp/index.html; httpd -f -h /tmp -p 80")
    other = made.run("busybox", "sleep", "1000")
    gateway = made.inspect(web)["NetworkSettings"]["Gateway"]
    for container in (other, web):
        assert wget(made, container, f"http://{gateway}:8282/index.html").stdout == "hairpin\n"


def test_connect_and_disconnect_refusals_match_dockerd(engine_py, dockerd):
    said = []
    for daemon in (engine_py.cli("20.10"), dockerd):
        made = Made(daemon)
        try:
            network = made.network()
            running = made.run("--network", network, "busybox", "sleep", "1000")
            host = made.run("--network", "host", "busybox", "sleep", "1000")
            attempts = [("connect", network, running), ("connect", network, host), ("disconnect", "bridge", running),
                        ("connect", "no-such-network", running), ("connect", network, "no-such-container")]
            said.append([made.docker("network", verb, net, who, check=False) for verb, net, who in attempts])
            said[-1] = [(r.returncode, r.stderr.replace(running, "R").replace(network, "N")
                         .replace(made.inspect(running)["Id"], "RID")) for r in said[-1]]
        finally:
            made.cleanup()
    assert said[0] == said[1]


def test_a_host_port_range_gives_one_port_of_it(made):
    name = made.run("-p", "18000-18010:80", "-p", "127.0.0.1:18100-18101:81-82", "busybox", "sleep", "1000")
    ports = made.inspect(name)["NetworkSettings"]["Ports"]
    assert 18000 <= int(ports["80/tcp"][0]["HostPort"]) <= 18010
    assert [(p["81/tcp"][0]["HostIp"], p["81/tcp"][0]["HostPort"], p["82/tcp"][0]["HostPort"])
            for p in (ports,)] == [("127.0.0.1", "18100", "18101")]


def test_a_shared_alias_resolves_to_every_container_that_has_it(made):
    """compose's scaled service: the service name is an alias of each replica."""
    network = made.network()
    replicas = [made.run("--network", network, "--network-alias", "svc", "busybox", "sleep", "1000")
                for _ in range(3)]
    client = made.run("--network", network, "busybox", "sleep", "1000")
    addresses = sorted(made.inspect(r)["NetworkSettings"]["Networks"][network]["IPAddress"] for r in replicas)
    assert sorted(resolved(made, client, "svc")) == addresses
    firsts = {resolved(made, client, "svc")[0] for _ in range(6)}
    assert len(firsts) > 1  # round robin: not always the same one first
