"""Networks across a kill -9 of the engine: the same networks and IDs, the
running container's endpoint still recorded, and no address handed out twice
after the restart (a freed one is given again)."""
import json

import pytest

from engine_daemon import running_engine


@pytest.fixture(scope="module")
def engine():
    """An engine of this module's own: it is killed and restarted."""
    with running_engine() as made:
        yield made


def networks(engine) -> dict:
    ids = engine.docker("network", "ls", "-q", "--no-trunc").stdout.split()
    return {n["Name"]: n for n in json.loads(engine.docker("network", "inspect", *ids).stdout)}


def address(engine, container: str, network: str) -> str:
    return engine.docker("inspect", "-f", f"{{{{.NetworkSettings.Networks.{network}.IPAddress}}}}",
                         container).stdout.strip()


def test_networks_and_addresses_survive_a_kill_9(engine):
    docker = engine.docker
    docker("network", "create", "--subnet", "10.250.0.0/24", "keep")
    docker("network", "create", "auto")
    docker("run", "-d", "--name", "first", "--network", "keep", "busybox", "sleep", "1000")
    assert address(engine, "first", "keep") == "10.250.0.2"
    before = networks(engine)

    engine.kill()
    engine.start()
    after = networks(engine)
    assert after == before
    assert [c["Name"] for c in after["keep"]["Containers"].values()] == ["first"]

    docker("run", "-d", "--name", "second", "--network", "keep", "busybox", "sleep", "1000")
    assert address(engine, "second", "keep") == "10.250.0.3"        # .2 is still first's
    docker("rm", "-f", "first")
    docker("run", "-d", "--name", "third", "--network", "keep", "busybox", "sleep", "1000")
    assert address(engine, "third", "keep") == "10.250.0.2"         # freed, given again
    refused = docker("network", "rm", "keep", check=False)
    assert "has active endpoints" in refused.stderr
    docker("rm", "-f", "second", "third")
    docker("network", "rm", "keep", "auto")
