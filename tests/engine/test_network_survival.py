"""Networking across a kill -9 of the engine: a running container's address,
published port and names keep working while the engine is down and after it
is back, the restarted engine knows every endpoint, allocation and rule
(stop removes the rules, a new container gets a new address, the held port
is refused to others), and what a crash in the middle left is cleaned up."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine_daemon import running_engine
from test_network_scenarios import FETCH, in_netns

pytestmark = pytest.mark.root
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def engine():
    """An engine of this module's own: it is killed and restarted."""
    with running_engine() as made:
        yield made


def fetch(engine, url: str, check=True):
    return in_netns(engine.netns, "python3", "-c", FETCH, url, check=check)


def test_ports_addresses_and_names_survive_a_kill_9(engine):
    docker = engine.docker
    docker("network", "create", "--subnet", "10.77.0.0/24", "survive")
    try:
        docker("run", "-d", "--name", "web", "--network", "survive", "-p", "8090:80", "busybox", "sh", "-c",
               "echo up > /tmp/index.html; httpd -f -h /tmp -p 80")
        docker("run", "-d", "--name", "peer", "--network", "survive", "busybox", "sleep", "1000")
        before = json.loads(docker("inspect", "web").stdout)[0]["NetworkSettings"]
        assert fetch(engine, "http://127.0.0.1:8090/index.html").stdout == "up\n"

        engine.kill()
        assert fetch(engine, "http://127.0.0.1:8090/index.html").stdout == "up\n"  # the kernel forwards alone
        engine.start()

        assert json.loads(docker("inspect", "web").stdout)[0]["NetworkSettings"] == before
        assert fetch(engine, "http://127.0.0.1:8090/index.html").stdout == "up\n"
        address = before["Networks"]["survive"]["IPAddress"]
        looked_up = docker("exec", "peer", "nslookup", "web").stdout  # the resolver serves again
        assert address in looked_up.split("Name:", 1)[1]
        taken = docker("run", "-d", "--name", "again", "-p", "8090:80", "busybox", "true", check=False)
        assert "port is already allocated" in taken.stderr
        docker("rm", "-f", "again")
        third = docker("run", "-d", "--name", "third", "--network", "survive", "busybox", "sleep", "1000")
        third_address = json.loads(docker("inspect", third.stdout.strip()).stdout)[0][
            "NetworkSettings"]["Networks"]["survive"]["IPAddress"]
        assert third_address not in (address, json.loads(docker("inspect", "peer").stdout)[0][
            "NetworkSettings"]["Networks"]["survive"]["IPAddress"])

        docker("stop", "-t", "0", "web")
        assert fetch(engine, "http://127.0.0.1:8090/index.html", check=False).returncode != 0
        rules = in_netns(engine.netns, "nft", "list", "table", "ip", "engine-py").stdout
        assert "8090" not in rules
    finally:
        docker("rm", "-f", "web", "peer", "third", check=False)
        docker("network", "rm", "survive", check=False)


def test_a_sandbox_left_by_a_crash_is_removed_at_start(engine):
    """A network namespace of a container that is not running (the engine
    died between making it and starting the task) goes at the next start."""
    sandbox = os.path.join(engine.exec_root, "netns", "deadbeef0000")
    subprocess.run(["nsenter", f"--net=/run/netns/{engine.netns}", sys.executable, "-c",
                    "import sys; from engine.network import netlink; netlink.create_netns(sys.argv[1])", sandbox],
                   check=True, cwd=REPO)
    assert os.path.exists(sandbox)
    engine.kill()
    engine.start()
    assert not os.path.exists(sandbox)
    assert sandbox not in open("/proc/self/mountinfo").read()
