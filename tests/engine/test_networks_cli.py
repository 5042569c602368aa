"""`docker network create/ls/inspect/rm/prune` at engine-py and at real
dockerd 20.10: the same commands, and what the user sees compared (IDs,
creation times and the default bridge's link name aside)."""
import ipaddress
import json
import re
import subprocess
import time
import uuid
from types import SimpleNamespace

import pytest

from engine_daemon import DOCKER_CLIS
from test_bad_input_api import call

ID = re.compile(r"\b[0-9a-f]{64}\b|\b[0-9a-f]{12}\b")


def unique(prefix: str = "net") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def seen(daemon, *args) -> tuple[int, str, str]:
    """What the user sees of one command: exit code, output, errors (IDs masked)."""
    r = daemon.docker(*args, check=False)
    return r.returncode, ID.sub("<id>", r.stdout), ID.sub("<id>", r.stderr)


def inspected(daemon, name: str) -> dict:
    shown = json.loads(daemon.docker("network", "inspect", name).stdout)[0]
    assert re.fullmatch(r"[0-9a-f]{64}", shown.pop("Id"))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", shown.pop("Created"))
    return shown


@pytest.fixture(params=["20.10", "28"])
def cli(request):
    return request.param


@pytest.fixture
def engine(engine_py, cli):
    """engine-py through each CLI."""
    return engine_py.cli(cli)


@pytest.fixture
def oracle(dockerd, cli):
    """dockerd through the same CLI."""
    def docker(*args, check=True):
        r = subprocess.run([DOCKER_CLIS[cli], "-H", f"unix://{dockerd.socket}", *args], capture_output=True,
                           text=True, stdin=subprocess.DEVNULL, timeout=120)
        assert not check or r.returncode == 0, r.stderr
        return r
    return SimpleNamespace(docker=docker)


def both(engine, oracle, scenario):
    return scenario(engine), scenario(oracle)


def test_create_inspect_ls_rm_as_dockerd(engine, oracle):
    def scenario(daemon):
        name = unique()
        try:
            made = seen(daemon, "network", "create", "--subnet", "10.201.0.0/24", "--gateway", "10.201.0.254",
                        "--ip-range", "10.201.0.128/25", "--aux-address", "a=10.201.0.130", "--label", "k=v",
                        "--opt", f"com.docker.network.bridge.name=br{name[-8:]}", "--internal", "--attachable", name)
            plain = unique()
            seen(daemon, "network", "create", "--subnet", "10.202.0.5/24", plain)
            shown = inspected(daemon, name), inspected(daemon, plain)
            listed = seen(daemon, "network", "ls", "--filter", f"name={name}", "--format",
                          "{{.Name}} {{.Driver}} {{.Scope}} {{.Internal}} {{.IPv6}} {{.Labels}}")
            removed = seen(daemon, "network", "rm", name, plain)
            listed = listed[0], listed[1].replace(name, "N"), listed[2]
            return made, shown, listed, ID.sub("<id>", removed[1].replace(name, "N").replace(plain, "P")), \
                seen(daemon, "network", "inspect", name)[0]
        finally:
            daemon.docker("network", "rm", name, check=False)

    ours, theirs = both(engine, oracle, scenario)
    assert ours[1][0]["Options"]["com.docker.network.bridge.name"].startswith("br")
    for shown in (ours[1][0], theirs[1][0]):
        shown["Options"].pop("com.docker.network.bridge.name")
        shown.pop("Name")
    for shown in (ours[1][1], theirs[1][1]):
        shown.pop("Name")
    assert ours == theirs


def test_predefined_networks_as_dockerd(engine, oracle):
    for name in ("host", "none"):
        assert inspected(engine, name) == inspected(oracle, name)
    ours, theirs = inspected(engine, "bridge"), inspected(oracle, "bridge")
    assert ours["IPAM"]["Config"] == [{"Subnet": "172.17.0.0/16"}]
    assert (ours["Options"].pop("com.docker.network.bridge.name"),
            theirs["Options"].pop("com.docker.network.bridge.name")) == ("engine-py0", "docker0")
    ours["Containers"] = theirs["Containers"] = {}  # other tests' containers may be on it
    assert ours == theirs
    listed = engine.docker("network", "ls", "--filter", "type=builtin", "--format", "{{.Name}} {{.Driver}}").stdout
    assert listed.split("\n")[:3] == ["bridge bridge", "host host", "none null"]


def test_a_subnet_from_the_default_pools_as_dockerd(engine, oracle):
    def scenario(daemon):
        name = unique()
        try:
            daemon.docker("network", "create", name)
            shown = inspected(daemon, name)
            config = shown["IPAM"]["Config"][0]
            subnet = ipaddress.IPv4Network(config["Subnet"])
            others = [ipaddress.IPv4Network(c["Subnet"]) for n in json.loads(daemon.docker(
                "network", "inspect", *daemon.docker("network", "ls", "-q").stdout.split()).stdout)
                for c in n["IPAM"]["Config"] if n["Name"] != name]
            assert not any(subnet.overlaps(other) for other in others)
            # the pools in turn, as dockerd hands them out (past 172.16/12's /16s it goes on to 192.168/16's /20s)
            assert (subnet.subnet_of(ipaddress.IPv4Network("172.16.0.0/12")) and subnet.prefixlen == 16) or \
                (subnet.subnet_of(ipaddress.IPv4Network("192.168.0.0/16")) and subnet.prefixlen == 20)
            assert config["Gateway"] == str(subnet.network_address + 1)
            config["Subnet"] = config["Gateway"] = "S"
            return shown
        finally:
            daemon.docker("network", "rm", name, check=False)

    ours, theirs = both(engine, oracle, scenario)
    ours.pop("Name"), theirs.pop("Name")
    assert ours == theirs


def test_refusals_as_dockerd(engine, oracle):
    def scenario(daemon):
        name, other = unique(), unique()
        daemon.docker("network", "create", "--subnet", "10.203.0.0/24", "-o",
                      f"com.docker.network.bridge.name=br{name[-8:]}", name)
        try:
            shown = [seen(daemon, *args) for args in (
                ("network", "create", "--subnet", "10.203.0.0/16", other),
                ("network", "create", "--subnet", "10.203.0.128/25", other),
                ("network", "create", name),
                ("network", "create", "host"),
                ("network", "create", "bridge"),
                ("network", "rm", "host"),
                ("network", "rm", "none"),
                ("network", "rm", f"no-{other}"),
                ("network", "inspect", f"no-{other}"),
                ("network", "create", "--subnet", "foo", other),
                ("network", "create", "--subnet", "10.204.0.0", other),
                ("network", "create", "--gateway", "10.1.1.1", other),
                ("network", "create", "--subnet", "10.205.0.0/24", "--gateway", "10.206.0.1", other),
                ("network", "create", "--subnet", "10.207.0.0/32", other),
                ("network", "create", "-d", "foo", other),
                ("network", "create", "-d", "host", other),
                ("network", "create", "-o", "com.docker.network.bridge.enable_icc=maybe", other),
                ("network", "create", "-o", f"com.docker.network.bridge.name=br{name[-8:]}", other),
                ("network", "ls", "--filter", "foo=bar"),
                ("network", "ls", "--filter", "dangling=maybe"),
                ("network", "rm", name, f"no-{other}"),
            )]
            mask = lambda text: text.replace(name, "N").replace(other, "O").replace(name[-8:], "B")  # noqa: E731
            return [(rc, mask(out), mask(err)) for rc, out, err in shown]
        finally:
            daemon.docker("network", "rm", name, other, check=False)

    ours, theirs = both(engine, oracle, scenario)
    assert ours == theirs


def test_ls_filters_and_prune_as_dockerd(engine, oracle):
    def scenario(daemon):
        tag = unique("t")
        names = [f"{tag}-web", f"{tag}-db", f"{tag}-cache"]
        for i, name in enumerate(names):
            daemon.docker("network", "create", "--label", f"{tag}=1", "--label", f"role={name[-2:]}",
                          *(["--label", "keep=yes"] if i == 2 else []), name)
        try:
            listed = [seen(daemon, "network", "ls", "--format", "{{.Name}}", *filters) for filters in (
                ("--filter", f"name={tag}"),
                ("--filter", f"name={tag}", "--filter", "type=custom"),
                ("--filter", f"name={tag}", "--filter", "dangling=true"),
                ("--filter", f"name={tag}", "--filter", "dangling=false"),
                ("--filter", "label=role=eb"),
                ("--filter", f"name={tag}-w", "--filter", "driver=bridge"),
                ("--filter", f"label={tag}", "--filter", "scope=swarm"),
            )]
            pruned = seen(daemon, "network", "prune", "-f", "--filter", f"label={tag}", "--filter", "label!=keep")
            pruned = pruned[0], "\n".join(sorted(pruned[1].split("\n"))), pruned[2]
            left = seen(daemon, "network", "ls", "--format", "{{.Name}}", "--filter", f"name={tag}")
            return [(rc, out.replace(tag, "T"), err) for rc, out, err in (*listed, pruned, left)]
        finally:
            daemon.docker("network", "rm", *names, check=False)

    ours, theirs = both(engine, oracle, scenario)
    assert ours == theirs


API_BODIES = [
    {"IPAM": {"Config": [{"Subnet": "foo"}]}},
    {"IPAM": {"Config": [{"Subnet": "10.211.0.0/24", "Gateway": "10.212.0.1"}]}},
    {"IPAM": {"Config": [{"Subnet": "10.213.0.0/24", "Gateway": "foo"}]}},
    {"IPAM": {"Config": [{"Subnet": "10.214.0.0/24", "AuxiliaryAddresses": {"x": "10.215.0.1"}}]}},
    {"IPAM": {"Config": [{"IPRange": "10.216.0.0/25"}]}},
    {"IPAM": {"Config": [{"Subnet": "10.217.0.0/24"}, {"Subnet": "10.218.0.0/24"}]}},
    {"IPAM": {"Config": [{"Subnet": "10.219.0.0/24", "IPRange": "foo"}]}},
    {"IPAM": {"Config": [{"Subnet": "10.220.0.0/24", "AuxiliaryAddresses": {"x": "foo"}}]}},
    {"IPAM": {"Config": [{"Subnet": "10.221.0.0/24", "Gateway": "10.221.0.255"}]}},
    {"IPAM": {"Config": [{"Subnet": "10.222.0.0/24", "Gateway": "10.222.0.5",
                          "AuxiliaryAddresses": {"x": "10.222.0.5"}}]}},
    {"IPAM": {"Config": [{"Subnet": "10.223.0.0/31"}]}},
    {"IPAM": {"Driver": "foo"}},
    {"Driver": "null"},
    {"Driver": "overlay"},
    {"IPAM": {"Config": [{"Subnet": "10.224.0.0/24"}]}, "EnableIPv6": True},
    {"Options": {"com.docker.network.driver.mtu": "abc"}},
]


@pytest.mark.parametrize("body", API_BODIES, ids=lambda body: json.dumps(body)[:60])
def test_api_refusals_as_dockerd(engine_py, dockerd, body):
    name = unique()
    raw = json.dumps({"Name": name, **body}).encode()
    ours, theirs = (call(d.socket, "POST", "/networks/create", raw) for d in (engine_py, dockerd))
    for daemon in (engine_py, dockerd):
        daemon.docker("network", "rm", name, check=False)
    assert ours == theirs and ours[0] >= 400


def test_api_duplicates_and_ambiguity_as_dockerd(engine_py, dockerd):
    def scenario(daemon):
        name = unique()
        raw = lambda **kw: json.dumps({"Name": name, **kw}).encode()  # noqa: E731
        try:
            answers = [call(daemon.socket, "POST", "/networks/create", raw()),
                       call(daemon.socket, "POST", "/networks/create", raw(CheckDuplicate=True)),
                       call(daemon.socket, "POST", "/networks/create", raw(CheckDuplicate=False)),
                       call(daemon.socket, "GET", f"/networks/{name}"),
                       call(daemon.socket, "DELETE", f"/networks/{name}"),
                       call(daemon.socket, "POST", "/networks/create", b'"notanobject"'),
                       call(daemon.socket, "POST", "/networks/create", b""),
                       call(daemon.socket, "POST", "/networks/create", raw(Name=f"{name}-sw", Scope="swarm")),
                       call(daemon.socket, "GET", "/networks?filters=" + '{"type":{"weird":true}}'),
                       call(daemon.socket, "POST", "/networks/prune?filters=" + '{"name":{"x":true}}')]
            return [(status, ID.sub("<id>", message).replace(name, "N")) for status, message in answers]
        finally:
            made = daemon.docker("network", "ls", "-q", "--no-trunc", "--filter", f"name={name}").stdout.split()
            for network in made:
                daemon.docker("network", "rm", network, check=False)

    ours, theirs = scenario(engine_py), scenario(dockerd)
    assert ours == theirs


def test_addresses_on_a_small_network_as_dockerd(engine, oracle):
    """Lowest free address first (a freed one is given again), a requested
    --ip, MACs made from the addresses, a full subnet, and rm refused while
    containers are on the network."""
    def scenario(daemon):
        name = unique()
        containers = [f"{name}-c{n}" for n in range(1, 8)]
        daemon.docker("network", "create", "--subnet", "10.230.0.0/29", "--gateway", "10.230.0.6", name)
        try:
            run = lambda c, *flags: seen(daemon, "run", "-d", "--name", c, "--network", name, *flags,  # noqa: E731
                                         "busybox", "sleep", "1000")
            answers = [run(c) for c in containers[:3]]
            daemon.docker("rm", "-f", containers[0])
            answers += [run(containers[3]), run(containers[4], "--ip", "10.230.0.5"),
                        run(containers[5], "--ip", "10.230.0.5"), run(containers[5]), run(containers[6]),
                        seen(daemon, "network", "rm", name)]
            answers = [(rc, "" if rc == 0 else out, err) for rc, out, err in answers]  # created IDs differ
            addresses = daemon.docker("inspect", "-f", "{{.Name}} {{range .NetworkSettings.Networks}}"
                                      "{{.IPAddress}}/{{.IPPrefixLen}} {{.Gateway}} {{.MacAddress}}{{end}}",
                                      *containers[1:6]).stdout
            attached = json.loads(daemon.docker("network", "inspect", name).stdout)[0]["Containers"]
            attached = sorted((c["Name"], c["IPv4Address"], c["MacAddress"]) for c in attached.values())
            return [(rc, out, err.replace(name, "N")) for rc, out, err in answers], \
                addresses.replace(name, "N"), [(n.replace(name, "N"), *rest) for n, *rest in attached]
        finally:
            daemon.docker("rm", "-f", *containers, check=False)
            daemon.docker("network", "rm", name, check=False)

    ours, theirs = both(engine, oracle, scenario)
    assert ours == theirs


def test_network_events_as_dockerd(engine, oracle):
    def scenario(daemon):
        name = unique()
        since = str(int(time.time()) - 1)
        daemon.docker("network", "create", name)
        daemon.docker("network", "rm", name)
        return seen(daemon, "events", "--since", since, "--until", str(int(time.time()) + 1), "--filter",
                    "type=network", "--filter", f"network={name}", "--format",
                    "{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.type}} {{.Scope}}")[1] \
            .replace(name, "N")

    ours, theirs = both(engine, oracle, scenario)
    assert ours == theirs == "network create N bridge local\nnetwork destroy N bridge local\n"
