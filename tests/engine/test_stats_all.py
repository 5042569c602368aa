"""`docker stats --no-stream` (every running container at once, and
`--all`) through the CLI 28 and 20.10, and `GET /containers/{id}/stats`
with stream=false and one-shot, at engine-py and at real dockerd 20.10:
the same rows and columns, the same fields. What varies from run to run
(CPU, memory in use, bytes counted) is compared by whether it is zero."""
import json
import os
import re
import subprocess
import uuid

import docker
import pytest

from engine.services.stats import network_stats
from engine_daemon import DOCKER_CLIS

CLIS = ("28", "20.10")


def cli_at(socket: str, *args: str, cli: str = "20.10") -> subprocess.CompletedProcess:
    r = subprocess.run([DOCKER_CLIS[cli], "-H", f"unix://{socket}", *args], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=120,
                       env={**os.environ, "DOCKER_CONFIG": os.path.dirname(socket) + "/ops-docker-config"})
    assert r.returncode == 0, f"docker {' '.join(args)}: {r.stderr}"
    return r


@pytest.fixture(scope="module")
def running(engine_py, dockerd):
    """At each daemon: <p>net, which has pinged <p>mem over the bridge (its
    NET I/O is not zero), <p>mem with a 64 MiB limit, <p>none without a
    network, and <p>created, never started. The prefix per socket."""
    prefixes = {}
    for socket in (engine_py.socket, dockerd.socket):
        prefix = prefixes[socket] = f"st{uuid.uuid4().hex[:8]}"
        cli_at(socket, "run", "-d", "--name", f"{prefix}mem", "--memory", "64m", "busybox", "sleep", "1000")
        address = cli_at(socket, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", f"{prefix}mem").stdout.strip()
        cli_at(socket, "run", "-d", "--name", f"{prefix}net", "busybox", "sh", "-c",
               f"ping -c 2 -i 0.2 {address}; sleep 1000")
        cli_at(socket, "run", "-d", "--name", f"{prefix}none", "--network", "none", "busybox", "sleep", "1000")
        cli_at(socket, "create", "--name", f"{prefix}created", "busybox", "true")
        cli_at(socket, "exec", f"{prefix}net", "sh", "-c", "while pgrep ping; do sleep 0.1; done")
    yield prefixes
    for socket, prefix in prefixes.items():
        cli_at(socket, "rm", "-f", *(prefix + name for name in ("mem", "net", "none", "created")))


def _zero_or_not(text: str) -> str:
    """"1.2kB / 0B" -> "+ / 0": the amounts that vary, by whether they are zero."""
    return re.sub(r"[0-9.]+[a-zA-Z]*", lambda m: "0" if float(re.match(r"[0-9.]+", m[0])[0]) == 0 else "+", text)


def rows(socket: str, prefix: str, cli: str, *flags: str) -> dict[str, dict]:
    """`docker stats --no-stream --format '{{json .}}'`'s rows of the prefix's containers, by name."""
    out = cli_at(socket, "stats", "--no-stream", "--format", "{{json .}}", *flags, cli=cli).stdout
    shown = {}
    for row in map(json.loads, out.splitlines()):
        if row["Name"].startswith(prefix):
            usage, _, limit = row["MemUsage"].partition(" / ")
            shown[row["Name"].replace(prefix, "<p>")] = {
                "MemUsage": f"{_zero_or_not(usage)} / {limit if limit.endswith('MiB') else _zero_or_not(limit)}",
                "NetIO": _zero_or_not(row["NetIO"]), "PIDs": row["PIDs"], "ID": len(row["ID"]),
                "CPUPerc": row["CPUPerc"].endswith("%"), "MemPerc": _zero_or_not(row["MemPerc"])}
    return shown


@pytest.mark.root
@pytest.mark.parametrize("cli", CLIS)
def test_no_stream_shows_every_running_container_as_dockerd(engine_py, dockerd, running, cli):
    ours = rows(engine_py.socket, running[engine_py.socket], cli)
    assert ours == rows(dockerd.socket, running[dockerd.socket], cli)
    assert sorted(ours) == ["<p>mem", "<p>net", "<p>none"]
    assert ours["<p>net"]["NetIO"] == "+ / +" and ours["<p>none"]["NetIO"] == "0 / 0"
    assert ours["<p>mem"]["MemUsage"] == "+ / 64MiB"


@pytest.mark.root
@pytest.mark.parametrize("cli", CLIS)
def test_no_stream_all_adds_the_stopped_ones_as_dockerd(engine_py, dockerd, running, cli):
    ours = rows(engine_py.socket, running[engine_py.socket], cli, "--all", "--no-trunc")
    assert ours == rows(dockerd.socket, running[dockerd.socket], cli, "--all", "--no-trunc")
    assert ours["<p>created"] == {"MemUsage": "0 / 0", "NetIO": "0 / 0", "PIDs": "0", "ID": 64, "CPUPerc": True,
                                  "MemPerc": "0%"}


def shape(value):
    """A reply's keys all the way down; numbers by whether they are zero, lists by their length."""
    if isinstance(value, dict):
        return {key: shape(inner) for key, inner in value.items() if key not in ("name", "id", "read", "preread")}
    if isinstance(value, list):
        return [len(value)]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "+" if value else 0
    return value


@pytest.mark.root
def test_the_api_one_shot_and_single_sample_as_dockerd(engine_py, dockerd, running):
    def replies(socket):
        prefix = running[socket]
        with docker.APIClient(base_url=f"unix://{socket}") as api:
            one_shot = {name: api.stats(prefix + name, stream=False, one_shot=True)
                        for name in ("mem", "net", "none", "created")}
            sampled = api.stats(prefix + "net", stream=False)
        return one_shot, sampled

    (ours, our_sample), (theirs, their_sample) = replies(engine_py.socket), replies(dockerd.socket)
    for name in ours:
        assert list(ours[name]) == list(theirs[name]), name
        assert sorted(ours[name].get("networks", {})) == sorted(theirs[name].get("networks", {})), name
        assert sorted(ours[name]["memory_stats"]) == sorted(theirs[name]["memory_stats"]), name
    assert sorted(ours["net"]["networks"]["eth0"]) == sorted(theirs["net"]["networks"]["eth0"])
    assert list(ours["mem"]["memory_stats"].get("stats", {})) == list(theirs["mem"]["memory_stats"].get("stats", {}))
    assert shape(ours["created"]) == shape(theirs["created"])
    assert ours["net"]["preread"] == theirs["net"]["preread"] == "0001-01-01T00:00:00Z"
    assert our_sample["preread"] != "0001-01-01T00:00:00Z" and their_sample["preread"] != "0001-01-01T00:00:00Z"
    assert shape(our_sample)["networks"] == shape(their_sample)["networks"] == {"eth0": {
        "rx_bytes": "+", "rx_packets": "+", "rx_errors": 0, "rx_dropped": 0, "tx_bytes": "+", "tx_packets": "+",
        "tx_errors": 0, "tx_dropped": 0}}


NET_DEV = """Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     120       2    0    0    0     0          0         0      120       2    0    0    0     0       0          0
  eth0:    1182      13    1    2    0     0          0         0      426       5    3    4    0     0       0          0
"""


def test_network_stats_are_the_interfaces_but_lo():
    assert network_stats(NET_DEV) == {"eth0": {"rx_bytes": 1182, "rx_packets": 13, "rx_errors": 1, "rx_dropped": 2,
                                               "tx_bytes": 426, "tx_packets": 5, "tx_errors": 3, "tx_dropped": 4}}
    assert network_stats(NET_DEV.rsplit("\n", 2)[0]) == {} and network_stats("") == {}  # only lo; a process gone
