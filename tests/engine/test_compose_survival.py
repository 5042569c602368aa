"""A kill -9 of engine-py while a docker-compose 1.29.2 project runs (ours
only: dockerd has no such test). After the engine's start `docker-compose ps`
shows what it showed before, no log line is lost (lines written while the
engine was down included), the healthcheck resumes (starting, then healthy
again, with its event), `restart: always` brings back the container that
exited while the engine was down and the one that exits after, and
`down -v` leaves nothing of the project.
"""
import os
import subprocess
import time

import pytest

from engine_daemon import running_engine
from test_build_vs_dockerd import Side, make_context
from test_compose_health import SETTLE_DEADLINE, compose, left_behind, said, states

pytestmark = pytest.mark.root

PROJECT = """version: "2.4"
services:
  web:
    build: ./web
    volumes: ["data:/data"]
  worker:
    image: busybox
    restart: always
    command: ["sh", "-c", "echo started; while [ ! -f /tmp/stop ]; do usleep 50000; done; rm /tmp/stop; exit 1"]
  front:
    image: busybox
    command: ["sleep", "600"]
    ports: ["18432:80"]
    depends_on:
      web:
        condition: service_healthy
volumes:
  data:
"""
WEB_DOCKERFILE = """FROM busybox
HEALTHCHECK --interval=1s --timeout=2s CMD test -f /tmp/ready
CMD ["sh", "-c", "touch /tmp/ready; i=0; while :; do i=$((i+1)); echo line $i; usleep 20000; done"]
"""


@pytest.fixture(scope="module")
def engine():
    """An engine of this module's own: it is killed and started again."""
    with running_engine() as made:
        yield made


def until(check, what: str):
    """Polls check() until it gives something true; the deadline only guards against a hang."""
    deadline = time.monotonic() + SETTLE_DEADLINE
    while not (got := check()):
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.2)
    return got


def line_numbers(side: Side, ctx) -> list[int]:
    """The numbers of web's `line N` as `docker-compose logs` shows them."""
    out = compose(side, ctx, "hcv", "logs", "--no-color", "web").stdout
    return [int(line.rsplit(" ", 1)[1]) for line in out.splitlines() if " line " in line]


def kept(engine, name: str) -> str:
    """What an engine restart must not change of a running container: its process, start, address, mounts, ports."""
    return engine.docker("inspect", "-f", "{{.State.Pid}} {{.State.StartedAt}} {{range .NetworkSettings.Networks}}"
                         "{{.IPAddress}} {{.MacAddress}}{{end}} {{json .Mounts}} {{json .NetworkSettings.Ports}}",
                         name).stdout


def starts_of_worker(side: Side, ctx) -> int:
    return compose(side, ctx, "hcv", "logs", "--no-color", "worker").stdout.count("started")


def test_a_kill_9_of_the_engine_under_a_compose_project(engine, tmp_path):
    side = Side(engine, "28")
    make_context(tmp_path, {"docker-compose.yml": PROJECT, "web/Dockerfile": WEB_DOCKERFILE})
    try:
        assert compose(side, tmp_path, "hcv", "up", "-d").returncode == 0
        ps_before = said(side, compose(side, tmp_path, "hcv", "ps"))
        kept_before = kept(engine, "hcv_web_1")
        assert "hcv_web_1 sh -c touch /tmp/ready; i= ... Up (healthy)" in ps_before["lines"]
        worker = "hcv_worker_1"
        engine.docker("exec", "-d", worker, "sh", "-c", "sleep 1; touch /tmp/stop")  # it exits while the engine is down

        engine.kill()
        time.sleep(2)
        restarted_at = str(int(time.time()))
        engine.start()

        health = until(lambda: states(side, "hcv")["/hcv_web_1"][1], "web has a health status")
        assert health in ("starting", "healthy")  # as dockerd's restore: starting again, healthy at the next probe
        until(lambda: states(side, "hcv")["/hcv_web_1"][1] == "healthy", "web healthy again")
        until(lambda: starts_of_worker(side, tmp_path) == 2, "the worker that exited meanwhile started again")
        until(lambda: states(side, "hcv")["/hcv_worker_1"][0] == "running", "the worker running")
        assert said(side, compose(side, tmp_path, "hcv", "ps")) == ps_before
        assert kept(engine, "hcv_web_1") == kept_before
        assert said(side, compose(side, tmp_path, "hcv", "up", "-d")) == {"exit": 0, "lines": [
            "hcv_front_1 is up-to-date", "hcv_web_1 is up-to-date", "hcv_worker_1 is up-to-date"]}
        assert compose(side, tmp_path, "hcv", "port", "front", "80").stdout == "0.0.0.0:18432\n"

        numbers = line_numbers(side, tmp_path)
        assert numbers == list(range(1, len(numbers) + 1))  # nothing lost, the lines while down included
        until(lambda: len(line_numbers(side, tmp_path)) > len(numbers), "web's logs go on")

        engine.docker("exec", worker, "touch", "/tmp/stop")  # the policy still applies after the engine's start
        until(lambda: starts_of_worker(side, tmp_path) == 3, "the worker restarted by its policy")
        events = engine.docker("events", "--since", restarted_at, "--until", str(int(time.time()) + 1),
                               "--filter", "label=com.docker.compose.project=hcv", "--format",
                               "{{.Actor.Attributes.name}} {{.Action}}").stdout.splitlines()
        assert "hcv_web_1 health_status: healthy" in events
        assert "hcv_worker_1 die" in events and "hcv_worker_1 start" in events
        assert said(side, compose(side, tmp_path, "hcv", "restart", "-t", "0", "web"))["exit"] == 0
        until(lambda: states(side, "hcv")["/hcv_web_1"][:2] == ["running", "healthy"], "web healthy after restart")
    finally:
        down = compose(side, tmp_path, "hcv", "down", "-v", "-t", "0", "--rmi", "local")
    assert down.returncode == 0, down.stderr
    assert left_behind(side, "hcv") == {"containers": [], "networks": [], "volumes": []}
    assert engine.docker("images", "--format", "{{.Repository}}").stdout.split() == ["busybox"]


INTERRUPTED = """version: "3.8"
services:
  app:
    image: busybox
    command: ["sh", "-c", "sleep 3; touch /tmp/ready; exec sleep 600"]
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 1s
  web:
    image: busybox
    command: ["sleep", "600"]
    ports: ["18433:80"]
    depends_on:
      app:
        condition: service_healthy
"""


def test_a_kill_9_of_the_engine_while_up_waits_for_health(engine, tmp_path):
    """compose loses its daemon mid-`up`; after the engine's start a second
    `up -d` finishes the project and `down -v` leaves nothing."""
    side = Side(engine, "28")
    make_context(tmp_path, {"docker-compose.yml": INTERRUPTED})
    try:
        up = subprocess.Popen(["docker-compose", "-p", "hci", "up", "-d"], cwd=tmp_path, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, "DOCKER_HOST": engine.host})
        until(lambda: up.poll() is not None or states(side, "hci").get("/hci_app_1", [None, None])[1] == "starting",
              "app created, not yet healthy")
        assert up.poll() is None, up.communicate()[0]
        engine.kill()
        interrupted = up.communicate(timeout=SETTLE_DEADLINE)[0]
        assert up.returncode != 0, interrupted
        engine.start()
        again = said(side, compose(side, tmp_path, "hci", "up", "-d"))
        assert again["exit"] == 0, again
        assert {name: state[:2] for name, state in states(side, "hci").items()} == {
            "/hci_app_1": ["running", "healthy"], "/hci_web_1": ["running", None]}
    finally:
        down = compose(side, tmp_path, "hci", "down", "-v", "-t", "0")
    assert down.returncode == 0, down.stderr
    assert left_behind(side, "hci") == {"containers": [], "networks": [], "volumes": []}
