"""docker-compose 1.29.2 (Debian's, over its own docker-py 5) against
engine-py and dockerd 20.10: healthcheck-gated `depends_on`
(`condition: service_healthy`) with the HEALTHCHECK of a built image and of
the compose `healthcheck:` key (file versions 2.4 and 3.8: 1.29 honours the
condition in both), a dependency that turns unhealthy failing `up` with
compose's message, `restart: on-failure:N` and `always` as dockerd applies
them, and `down -v` leaving nothing of the project.

As test_build_vs_dockerd: `oracle` runs the scenarios on dockerd alone and
checks what they are there to show, `ours` compares every section of what
compose showed with dockerd's. Compose's progress lines come in the order
its threads finish, so a command's output is compared as a sorted set of
lines, whitespace folded (its padding follows that order too).
"""
import contextlib
import json
import os
import subprocess
import time

import pytest

from test_build_vs_dockerd import Side, make_context, observed, side  # noqa: F401  (a fixture)

pytestmark = pytest.mark.root

SETTLE_DEADLINE = 60  # seconds; only guards against a hang, never asserted on


def compose(side: Side, project_dir, project: str, *args: str) -> subprocess.CompletedProcess:
    """docker-compose at the side's daemon, in project_dir, as project."""
    env = {**os.environ, "DOCKER_HOST": f"unix://{side.daemon.socket}", "COMPOSE_DOCKER_CLI_BUILD": "0",
           "DOCKER_CONFIG": f"{side.daemon.workdir}/docker-config"}
    return subprocess.run(["docker-compose", "-p", project, *args], cwd=project_dir, env=env, capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL)


def said(side: Side, r: subprocess.CompletedProcess) -> dict:
    """What a compose command showed: its exit code and its lines (IDs
    normalised, whitespace folded), sorted."""
    return {"exit": r.returncode, "lines": sorted(folded(line) for line in side.lines(r.stdout + "\n" + r.stderr))}


def folded(line: str) -> str:
    """The line with its whitespace folded, and the names of `logs`' "Attaching to"
    sorted (they come in the daemon's order of creation: compose creates in parallel)."""
    line = " ".join(line.split())
    if line.startswith("Attaching to "):
        return "Attaching to " + ", ".join(sorted(line.removeprefix("Attaching to ").split(", ")))
    return line


def project_containers(side: Side, project: str) -> list[str]:
    """The IDs of the project's containers (compose's label), stopped ones too."""
    return side.docker("ps", "-aq", "--no-trunc", "--filter", f"label=com.docker.compose.project={project}"
                       ).stdout.split()


def states(side: Side, project: str) -> dict:
    """{container name: [status, health status, restart count, exit code, healthcheck]} of the project."""
    ids = project_containers(side, project)
    if not ids:
        return {}
    inspected = json.loads(side.docker("inspect", *ids).stdout)
    return {c["Name"]: [c["State"]["Status"], (c["State"].get("Health") or {}).get("Status"), c["RestartCount"],
                        c["State"]["ExitCode"], c["Config"].get("Healthcheck")] for c in inspected}


def settle(side: Side, project: str, done) -> dict:
    """The project's states once done(states) holds (or at the deadline, for the comparison to show)."""
    deadline = time.monotonic() + SETTLE_DEADLINE
    while not done(now := states(side, project)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return now


def left_behind(side: Side, project: str) -> dict:
    """What of the project is still there: containers, networks, volumes (by compose's label)."""
    label = f"label=com.docker.compose.project={project}"
    return {kind: side.docker(*command, "-q", "--filter", label).stdout.split()
            for kind, command in (("containers", ("ps", "-a")), ("networks", ("network", "ls")),
                                  ("volumes", ("volume", "ls")))}


def health_events(side: Side, since: str, project: str) -> dict:
    """{container name: [its health_status events in order]} of the project since the daemon time `since`."""
    until = str(int(time.time()) + 1)
    listed = side.docker("events", "--since", since, "--until", until, "--filter", "event=health_status",
                         "--filter", f"label=com.docker.compose.project={project}", "--format",
                         "{{.Actor.Attributes.name}}\t{{.Action}}").stdout
    events: dict[str, list[str]] = {}
    for line in listed.splitlines():
        name, action = line.split("\t")
        events.setdefault(name, []).append(action)
    return events


@contextlib.contextmanager
def brought_down(side: Side, project_dir, project: str, *images: str):
    """The scenario's body, then `down -v -t 0` (sleep as PID 1 ignores
    SIGTERM) and what it left as its last sections, and the images removed."""
    try:
        yield
    finally:
        side.view[f"down {project}"] = said(side, compose(side, project_dir, project, "down", "-v", "-t", "0"))
        side.view[f"left by {project}"] = left_behind(side, project)
        if images:
            side.remove_images(*images)


# --------------------------------------------------------------------------
# Gated start: the image's HEALTHCHECK and compose's, file version 2.4

GATED = """version: "2.4"
services:
  app:
    build: ./app
    image: hch-app
  db:
    image: busybox
    command: ["sh", "-c", "echo db up; exec sleep 600"]
    healthcheck:
      test: ["CMD-SHELL", "test -f /tmp/ready || { touch /tmp/ready; exit 1; }"]
      interval: 1s
      timeout: 2s
      retries: 3
  web:
    image: busybox
    command: ["sh", "-c", "echo web up; exec sleep 600"]
    depends_on:
      app:
        condition: service_healthy
      db:
        condition: service_healthy
"""
APP_DOCKERFILE = """FROM busybox
HEALTHCHECK --interval=1s --timeout=2s --retries=3 CMD test -f /tmp/ready
CMD ["sh", "-c", "sleep 1; touch /tmp/ready; echo app up; exec sleep 600"]
"""


def gated_start(side: Side, ctx) -> None:
    make_context(ctx, {"docker-compose.yml": GATED, "app/Dockerfile": APP_DOCKERFILE})
    since = str(int(time.time()))
    with brought_down(side, ctx, "hch", "hch-app"):
        side.view["up"] = said(side, compose(side, ctx, "hch", "up", "-d"))
        side.view["states"] = states(side, "hch")
        side.view["ps"] = said(side, compose(side, ctx, "hch", "ps"))
        side.view["health events"] = health_events(side, since, "hch")


def test_a_dependent_starts_once_its_dependencies_are_healthy(request, tmp_path_factory, side):  # noqa: F811
    view = observed(request, tmp_path_factory, side, "28", gated_start)
    assert view["up"]["exit"] == 0
    assert {name: state[:2] for name, state in view["states"].items()} == {
        "/hch_app_1": ["running", "healthy"], "/hch_db_1": ["running", "healthy"], "/hch_web_1": ["running", None]}
    assert view["health events"] == {"hch_app_1": ["health_status: healthy"],
                                     "hch_db_1": ["health_status: healthy"]}
    assert view["left by hch"] == {"containers": [], "networks": [], "volumes": []}


# --------------------------------------------------------------------------
# File version 3.8: compose's healthcheck over the image's, disable, completed_successfully

GATED_V3 = """version: "3.8"
services:
  app:
    build: ./app
    image: hch3-app
    healthcheck:
      interval: 1s
  nocheck:
    image: hch3-app
    healthcheck:
      disable: true
  once:
    image: busybox
    command: ["true"]
  web:
    image: busybox
    command: ["sleep", "600"]
    depends_on:
      app:
        condition: service_healthy
      once:
        condition: service_completed_successfully
"""
SLOW_CHECK_DOCKERFILE = """FROM busybox
HEALTHCHECK --interval=30s --retries=1 CMD test -f /tmp/ready
CMD ["sh", "-c", "touch /tmp/ready; exec sleep 600"]
"""


def gated_start_v3(side: Side, ctx) -> None:
    make_context(ctx, {"docker-compose.yml": GATED_V3, "app/Dockerfile": SLOW_CHECK_DOCKERFILE})
    with brought_down(side, ctx, "hch3", "hch3-app"):
        side.view["up"] = said(side, compose(side, ctx, "hch3", "up", "-d"))
        side.view["states"] = states(side, "hch3")


def test_compose_healthcheck_over_the_images_in_a_v3_file(request, tmp_path_factory, side):  # noqa: F811
    view = observed(request, tmp_path_factory, side, "28", gated_start_v3)
    assert view["up"]["exit"] == 0
    assert view["states"]["/hch3_app_1"] == ["running", "healthy", 0, 0, {  # the image's test, compose's interval
        "Test": ["CMD-SHELL", "test -f /tmp/ready"], "Interval": 1_000_000_000, "Retries": 1}]
    assert view["states"]["/hch3_nocheck_1"] == ["running", None, 0, 0, {  # NONE, the image's settings under it
        "Test": ["NONE"], "Interval": 30_000_000_000, "Retries": 1}]
    assert view["states"]["/hch3_once_1"][:1] == ["exited"] and view["states"]["/hch3_web_1"][0] == "running"


# --------------------------------------------------------------------------
# An unhealthy dependency; restart policies

SICK = """version: "2.4"
services:
  sick:
    image: busybox
    command: ["sleep", "600"]
    healthcheck:
      test: ["CMD", "false"]
      interval: 1s
      retries: 2
  web:
    image: busybox
    command: ["sleep", "600"]
    depends_on:
      sick:
        condition: service_healthy
  flaky:
    image: busybox
    command: ["sh", "-c", "echo run; exit 3"]
    restart: on-failure:2
  again:
    image: busybox
    command: ["sh", "-c", "test -f /ran && exec sleep 600; touch /ran; echo first; exit 1"]
    restart: always
"""


def restarts_settled(now: dict) -> bool:
    """flaky ran its two restarts and stays exited; again came back once and runs."""
    return now.get("/hcs_flaky_1", [""])[:3] == ["exited", None, 2] and \
        now.get("/hcs_again_1", [""])[:3] == ["running", None, 1]


def unhealthy_dependency(side: Side, ctx) -> None:
    make_context(ctx, {"docker-compose.yml": SICK})
    since = str(int(time.time()))
    with brought_down(side, ctx, "hcs"):
        side.view["up"] = said(side, compose(side, ctx, "hcs", "up", "-d"))
        side.view["states"] = settle(side, "hcs", restarts_settled)
        side.view["logs"] = said(side, compose(side, ctx, "hcs", "logs", "--no-color", "flaky", "again"))
        side.view["health events"] = health_events(side, since, "hcs")


def test_an_unhealthy_dependency_fails_up_and_policies_restart(request, tmp_path_factory, side):  # noqa: F811
    view = observed(request, tmp_path_factory, side, "28", unhealthy_dependency)
    assert view["up"]["exit"] == 1
    assert "ERROR: for web Container \"<id1>\" is unhealthy." in view["up"]["lines"]
    assert "/hcs_web_1" not in view["states"] and view["states"]["/hcs_sick_1"][:2] == ["running", "unhealthy"]
    assert restarts_settled(view["states"])
    assert view["logs"]["lines"].count("flaky_1 | run") == 3 and "again_1 | first" in view["logs"]["lines"]
    assert view["health events"] == {"hcs_sick_1": ["health_status: unhealthy"]}
    assert view["left by hcs"] == {"containers": [], "networks": [], "volumes": []}
