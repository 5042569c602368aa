"""Volumes across a kill -9 of the engine: the same volumes with their labels
and options, their data, and the in-use refusal of one a container still
references; a tmpfs volume mounted for a running container is unmounted
when that container stops after the restart."""
import json

import pytest

from engine_daemon import running_engine


@pytest.fixture(scope="module")
def engine():
    """An engine of this module's own: it is killed and restarted."""
    with running_engine() as made:
        yield made


def volumes(engine) -> dict:
    names = engine.docker("volume", "ls", "-q").stdout.split()
    return {v["Name"]: v for v in json.loads(engine.docker("volume", "inspect", *names).stdout)}


def mounted(path: str) -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def test_volumes_and_their_data_survive_a_kill_9(engine):
    docker = engine.docker
    docker("volume", "create", "--label", "keep=1", "kept")
    docker("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "scratch")
    docker("run", "--rm", "-v", "kept:/data", "busybox", "sh", "-c", "echo saved > /data/f")
    docker("run", "-d", "--name", "user", "-v", "scratch:/s", "-v", "kept:/data", "busybox", "sleep", "1000")
    before = volumes(engine)
    assert mounted(before["scratch"]["Mountpoint"])

    engine.kill()
    engine.start()
    assert volumes(engine) == before
    assert docker("run", "--rm", "-v", "kept:/data", "busybox", "cat", "/data/f").stdout == "saved\n"
    refused = docker("volume", "rm", "kept", check=False)
    assert "volume is in use" in refused.stderr and refused.returncode == 1
    docker("rm", "-f", "user")
    assert not mounted(before["scratch"]["Mountpoint"])
    docker("volume", "rm", "kept", "scratch")
    assert docker("volume", "ls", "-q").stdout == ""
