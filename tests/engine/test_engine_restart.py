"""Survival at the process level: engine-py killed with -9 (and its
containerd-py killed) while containers run, print and exit; after the
restart nothing is lost — every log line is there, written while the engine
was down (the container never stalled), exits that happened meanwhile are
recorded with their codes, --rm containers that exited are gone, and
`docker wait` and `docker logs -f` work."""
import json
import os
import signal
import time

import pytest

from engine_daemon import running_engine

COUNTER = ["sh", "-c", "i=0; while :; do i=$((i+1)); echo line $i; usleep 2000; done"]


@pytest.fixture(scope="module")
def engine():
    """An engine of this module's own: it is killed and restarted."""
    with running_engine() as made:
        yield made


def _log_numbers(engine, name) -> list[int]:
    out = engine.docker("logs", name).stdout.split()
    return [int(word) for word in out[1::2]]


def _line_times(engine, name) -> list[float]:
    from engine.logs.jsonfile import parse_time

    path = engine.docker("inspect", "-f", "{{.LogPath}}", name).stdout.strip()
    with open(path) as f:
        return [parse_time(json.loads(line)["time"]) / 1e9 for line in f]


def test_a_kill_9_of_the_engine_loses_nothing(engine):
    docker = engine.docker
    docker("run", "-d", "--name", "printer", *["busybox", *COUNTER])
    docker("run", "-d", "--name", "exits", "busybox", "sh", "-c", "sleep 1; exit 5")
    docker("run", "-d", "--rm", "--name", "gone", "busybox", "sh", "-c", "sleep 1")
    engine.kill()
    down_at = time.time()
    time.sleep(3)  # meanwhile "exits" and "gone" end, "printer" prints ~1000 lines
    up_at = time.time()
    engine.start()

    states = {name: docker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name, check=False)
              for name in ("printer", "exits", "gone")}
    assert states["printer"].stdout.split() == ["running", "0"]
    assert states["exits"].stdout.split() == ["exited", "5"]
    assert states["gone"].returncode == 1 and "No such object: gone" in states["gone"].stderr
    assert docker("wait", "exits").stdout.strip() == "5"

    numbers = _log_numbers(engine, "printer")
    assert numbers == list(range(1, len(numbers) + 1))  # not one line lost
    written_while_down = [t for t in _line_times(engine, "printer") if down_at + 0.5 < t < up_at - 0.5]
    assert len(written_while_down) > 100  # it kept printing: no stall

    follower = engine.docker("logs", "-f", "--tail", "1", "exits")
    assert follower.stdout == "" and follower.returncode == 0
    docker("rm", "-f", "printer", "exits")


def test_a_killed_containerd_is_restarted_and_exits_meanwhile_are_recorded(engine):
    docker = engine.docker
    docker("run", "-d", "--name", "survivor", "busybox", "sleep", "1000")
    docker("run", "-d", "--name", "quitter", "busybox", "sh", "-c", "sleep 1; exit 7")
    with open(f"{engine.exec_root}/containerd/containerd.pid") as f:
        os.kill(int(f.read()), signal.SIGKILL)
    assert docker("wait", "quitter", timeout=60).stdout.strip() == "7"
    assert docker("inspect", "-f", "{{.State.Status}}", "survivor").stdout.strip() == "running"
    docker("exec", "survivor", "true")
    docker("rm", "-f", "survivor", "quitter")
