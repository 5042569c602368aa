"""docker-compose 1.29.2's failures against engine-py and dockerd 20.10:
a broken Dockerfile (an unknown instruction, a failing RUN), a host port
published twice (two services of a project, then a second project), an
image that cannot be pulled (a registry at a loopback port nobody listens
on, and a short name while the daemon's network namespace has no route out:
nothing leaves it). Compose must show
dockerd's error and exit code, and `down` must then bring the project down
leaving nothing; compared as test_compose_health compares.
"""
import re

import pytest

from test_build_vs_dockerd import Side, make_context, observed, side  # noqa: F401  (a fixture)
from test_compose_health import brought_down, compose, said, states

pytestmark = pytest.mark.root

PORT = 18431  # in the daemons' own network namespaces
NOWHERE = "127.0.0.1:5999"  # a registry nobody listens on


# --------------------------------------------------------------------------
# A broken Dockerfile

BROKEN = """version: "2.4"
services:
  ok:
    image: busybox
    command: ["sleep", "600"]
  unknown:
    build: ./unknown
  failing:
    build: ./failing
"""


def broken_builds(side: Side, ctx) -> None:
    make_context(ctx, {"docker-compose.yml": BROKEN, "unknown/Dockerfile": "FROM busybox\nFROBNICATE now\n",
                       "failing/Dockerfile": "FROM busybox\nRUN echo building; exit 7\n"})
    before = side.containers()
    with brought_down(side, ctx, "hce"):
        for service in ("unknown", "failing"):
            side.view[f"up {service}"] = said(side, compose(side, ctx, "hce", "up", "-d", "ok", service))
            side.view[f"states after {service}"] = states(side, "hce")
        # dockerd keeps a failed RUN's container (not the project's: it has no labels)
        side.view["build containers left"] = [command for cid, command in side.containers().items()
                                              if cid not in before]


def test_a_broken_dockerfile(request, tmp_path_factory, side):  # noqa: F811
    view = observed(request, tmp_path_factory, side, "28", broken_builds)
    assert view["up unknown"] == {"exit": 1, "lines": ['Building unknown', 'Creating network "hce_default" with the '
                                                       'default driver', 'dockerfile parse error line 2: unknown '
                                                       'instruction: FROBNICATE']}
    assert view["up failing"]["exit"] == 1 and "Service 'failing' failed to build : The command '/bin/sh -c echo " \
        "building; exit 7' returned a non-zero code: 7" in view["up failing"]["lines"]
    assert view["states after failing"] == {}   # compose builds before it creates anything
    assert view["build containers left"] == ['"/bin/sh -c \'echo building; exit 7\'"']
    assert view["down hce"]["exit"] == 0 and view["left by hce"] == {"containers": [], "networks": [], "volumes": []}


# --------------------------------------------------------------------------
# A host port published twice

CLASH = f"""version: "2.4"
services:
  one:
    image: busybox
    command: ["sleep", "600"]
    ports: ["{PORT}:80"]
  two:
    image: busybox
    command: ["sleep", "600"]
    ports: ["{PORT}:80"]
"""
SECOND = f"""version: "3.8"
services:
  other:
    image: busybox
    command: ["sleep", "600"]
    ports: ["{PORT}:80"]
"""


def ports_of(side: Side, project: str) -> dict:
    """{container name: its IPv4 port bindings} (dockerd also shows a "::" twin: engine/network/DESIGN.md)."""
    out = side.docker("ps", "-a", "--filter", f"label=com.docker.compose.project={project}", "--format",
                      "{{.Names}}\t{{.Ports}}").stdout
    return {name: [p for p in ports.split(", ") if p and "::" not in p]
            for name, ports in (line.split("\t") for line in out.splitlines())}


def by_role(said_: dict, winner: str) -> dict:
    """What compose said with the services "one" and "two" named by their
    role: which of the two gets the port first is a race between compose's threads."""
    roles = {winner: "<bound>", ({"one", "two"} - {winner}).pop(): "<refused>"}
    return {**said_, "lines": sorted(re.sub(r"(?<![a-z])(one|two)(?![a-z])", lambda m: roles[m.group(1)], line)
                                     for line in said_["lines"])}


def port_clash(side: Side, ctx) -> None:
    make_context(ctx, {"clash/docker-compose.yml": CLASH, "second/docker-compose.yml": SECOND})
    winner = "one"
    try:
        with brought_down(side, ctx / "clash", "hcc"), brought_down(side, ctx / "second", "hcc2"):
            up = said(side, compose(side, ctx / "clash", "hcc", "up", "-d"))
            winner = next((name.split("_")[1] for name, ports in ports_of(side, "hcc").items() if ports), winner)
            side.view["up clash"] = by_role(up, winner)
            side.view["clash states"] = sorted(state[:4] for state in states(side, "hcc").values())
            side.view["clash ports"] = sorted(ports_of(side, "hcc").values())
            side.view["up second"] = said(side, compose(side, ctx / "second", "hcc2", "up", "-d"))
            side.view["second states"] = states(side, "hcc2")
    finally:
        side.view["down hcc"] = by_role(side.view["down hcc"], winner)


def test_a_port_published_twice(request, tmp_path_factory, side):  # noqa: F811
    view = observed(request, tmp_path_factory, side, "28", port_clash)
    up = view["up clash"]
    assert up["exit"] == 1 and "Encountered errors while bringing up the project." in up["lines"]
    assert "ERROR: for <refused> Cannot start service <refused>: driver failed programming external connectivity " \
           f"on endpoint hcc_<refused>_1 (<id1>): Bind for 0.0.0.0:{PORT} failed: port is already allocated" \
           in up["lines"]
    assert view["clash states"] == [["created", None, 0, 128], ["running", None, 0, 0]]
    assert view["clash ports"] == [[], [f"0.0.0.0:{PORT}->80/tcp"]]
    assert view["up second"]["exit"] == 1 and view["second states"]["/hcc2_other_1"][:4] == ["created", None, 0, 128]
    for project in ("hcc", "hcc2"):
        assert view[f"down {project}"]["exit"] == 0
        assert view[f"left by {project}"] == {"containers": [], "networks": [], "volumes": []}


# --------------------------------------------------------------------------
# An image no registry gives

MISSING = f"""version: "2.4"
services:
  ok:
    image: busybox
    command: ["sleep", "600"]
  missing:
    image: {NOWHERE}/nosuch/image:1
  short:
    image: nosuch/image:1
"""


def missing_image(side: Side, ctx) -> None:
    make_context(ctx, {"docker-compose.yml": MISSING})
    with brought_down(side, ctx, "hcm"):
        side.view["up"] = said(side, compose(side, ctx, "hcm", "up", "-d", "ok", "missing"))
        side.view["up short"] = said(side, compose(side, ctx, "hcm", "up", "-d", "short"))
        side.view["states"] = states(side, "hcm")
        side.view["pull"] = said(side, compose(side, ctx, "hcm", "pull", "missing"))
        side.view["run"] = said(side, compose(side, ctx, "hcm", "run", "--rm", "missing"))


def test_an_image_that_cannot_be_pulled(request, tmp_path_factory, side):  # noqa: F811
    view = observed(request, tmp_path_factory, side, "28", missing_image)
    refused = f'Get "http://{NOWHERE}/v2/": dial tcp {NOWHERE}: connect: connection refused'
    assert view["up"]["exit"] == 1 and refused in view["up"]["lines"]
    assert view["states"] == {}   # compose pulls before it creates anything
    # Docker Hub, from a network namespace with no route out: the resolver's error names its nameserver
    hub = 'Get "https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io'
    assert view["up short"]["exit"] == 1 and any(line.startswith(hub) for line in view["up short"]["lines"])
    assert view["pull"]["exit"] == 1 and f"ERROR: for missing {refused}" in view["pull"]["lines"]
    assert view["run"]["exit"] == 1 and refused in view["run"]["lines"]
    assert view["down hcm"]["exit"] == 0 and view["left by hcm"] == {"containers": [], "networks": [], "volumes": []}
