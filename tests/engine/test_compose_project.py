"""A docker-compose 1.29.2 project's lifecycle against engine-py and dockerd
20.10, compared as test_build_vs_dockerd compares builds (`oracle` checks
dockerd's facts, `ours` compares every section with dockerd's): one project
of compose file version 2.4 (a service built from a Dockerfile, busybox
httpd; two from images tagged from busybox; one user network, a named
volume, published ports) taken through build, up, ps, logs, port, exec, run,
stop/start/restart, --scale and the old `scale`, a recreation that keeps the
volume's data (the anonymous one's too), `down -v --rmi local` and what
it leaves (in the daemon's lists and its network namespace); one of
version 3.8 brought up and down; one service with most single-machine
options, inspected whole. Each section is what the client printed
(compose_side normalises IDs, ephemeral host ports and times) or what
`docker inspect` shows (normalised_inspect).

Seen and left alone: with COMPOSE_INTERACTIVE_NO_CLI=1, `run` attaches
only after the start (dockerpy's lazy sockets), so a short container's
output is lost on dockerd too, earlier on the engine; the tests use
compose's default, the docker CLI's `start --attach`.
"""
import json
import os
import re
import subprocess

import pytest

from compose_side import TIMESTAMP, Compose
from leaks import mounts_under
from test_build_vs_dockerd import Side, make_context, observed, side  # noqa: F401  (a fixture)

pytestmark = pytest.mark.root

WEB_DOCKERFILE = """FROM busybox
COPY index.html /www/
EXPOSE 8080 8443
LABEL org.example.tier=web
STOPSIGNAL SIGTERM
CMD ["sh", "-c", "trap 'exit 0' TERM; echo web serving; httpd -f -p 8080 -h /www & wait"]
"""
SERVE_FOREVER = "trap 'exit 0' TERM; echo {name} up; {what} & wait"   # sh as PID 1 ends on SIGTERM

COMPOSE_V2 = f"""version: "2.4"
services:
  web:
    build: ./web
    ports: ["8080"]
    networks: [back]
  store:
    image: cp-store:1
    command: ["sh", "-c", "{SERVE_FOREVER.format(name='store', what='httpd -f -p 8081 -h /data')}"]
    ports: ["18081:8081"]
    volumes: ["data:/data", "/cache"]
    networks: [back]
  client:
    image: cp-tools
    command: ["sh", "-c", "{SERVE_FOREVER.format(name='client', what='sleep 1000')}"]
    networks: [back]
networks:
  back: {{}}
volumes:
  data: {{}}
"""

COMPOSE_V3 = f"""version: "3.8"
services:
  web:
    build:
      context: ./web
    ports: ["8080"]
    networks: [front]
  store:
    image: cp-store:1
    command: ["sh", "-c", "{SERVE_FOREVER.format(name='store', what='sleep 1000')}"]
    volumes: ["data3:/data"]
    networks: [front]
networks:
  front: {{}}
volumes:
  data3: {{}}
"""

# an address from the default pools: which pool is the session's story (dockerd hands them out in turn,
# past the 172.16/12 ones into 192.168/16 after ~14 networks, freed or not)
ADDRESS = re.compile(r"\b(?:172\.(?:1[6-9]|2\d|3[01])|192\.168)\.\d+\.\d+(?:/\d+)?")
MAC = re.compile(r"02:42(:[0-9a-f]{2}){4}")
TOP_NUMBERS = re.compile(r"^(\w+)  \d+  \d+  (\d+)  \d\d:\d\d")   # compose top's UID PID PPID C STIME
HOST_CONFIG_DEFAULTS = ("ShmSize", "IpcMode", "CgroupnsMode", "OomKillDisable", "PidsLimit", "MemorySwappiness",
                        "MaskedPaths", "ReadonlyPaths", "RestartPolicy", "ConsoleSize", "NetworkMode")
COMPOSE_OPTIONS = f"""version: "2.4"
services:
  opts:
    image: cp-tools
    container_name: cp-opts
    hostname: optshost
    domainname: example.test
    command: ["sh", "-c", "{SERVE_FOREVER.format(name='opts', what='sleep 1000')}"]
    environment: {{A: "1", B: "two words"}}
    labels: {{org.example.role: opts}}
    user: "1000:1000"
    working_dir: /tmp
    extra_hosts: ["db.example:10.1.2.3"]
    tmpfs: ["/run:size=1m"]
    read_only: true
    cap_drop: [NET_RAW]
    ulimits: {{nofile: {{soft: 1024, hard: 2048}}}}
    mem_limit: 64m
    cpus: 0.5
    pids_limit: 50
    restart: unless-stopped
    logging: {{driver: json-file, options: {{max-size: 1m, max-file: "2"}}}}
    networks:
      inner:
        ipv4_address: 172.30.5.10
        aliases: [opts-alias]
    volumes: ["scratch:/scratch"]
networks:
  inner:
    internal: true
    ipam: {{config: [{{subnet: 172.30.5.0/24}}]}}
volumes:
  scratch:
    driver_opts: {{type: tmpfs, device: tmpfs, o: size=1m}}
"""
FILES = {"web/Dockerfile": WEB_DOCKERFILE, "web/index.html": "<p>hello from compose</p>\n"}
LABELS_KEPT = ("com.docker.compose.project", "com.docker.compose.service", "com.docker.compose.container-number",
               "com.docker.compose.oneoff", "com.docker.compose.version", "com.docker.compose.network",
               "com.docker.compose.volume")


def labels(found: dict | None) -> dict:
    return {k: v for k, v in (found or {}).items() if k in LABELS_KEPT}


def project_state(side: Side, project: str) -> dict:
    """The project's containers, networks and volumes as `docker inspect` shows them (the parts compose
    sets or reads)."""
    def listed(*args: str) -> list[str]:
        return sorted(side.docker(*args, "--filter", f"label=com.docker.compose.project={project}",
                                  "--format", "{{.Name}}" if args[0] != "ps" else "{{.Names}}").stdout.split())

    def inspected(kind: str, names: list[str]) -> list[dict]:
        return json.loads(side.docker(kind, "inspect", *names).stdout) if names else []

    containers = {}
    for c in inspected("container", listed("ps", "-a")):
        containers[c["Name"]] = {
            "status": c["State"]["Status"], "exit": c["State"]["ExitCode"], "restarts": c["RestartCount"],
            "image": side.ids(c["Image"]), "config image": c["Config"]["Image"], "labels": labels(c["Config"]["Labels"]),
            "cmd": c["Config"]["Cmd"], "ports": c["HostConfig"]["PortBindings"],
            "published": sorted(k for k, v in (c["NetworkSettings"]["Ports"] or {}).items() if v),
            "mounts": sorted((m["Type"], side.ids(m.get("Name") or ""), m["Destination"], m["RW"])
                             for m in c["Mounts"]),
            "binds": [side.ids(b) for b in c["HostConfig"]["Binds"] or []], "network mode": c["HostConfig"]["NetworkMode"],
            "networks": {name: sorted(side.ids(a) for a in n["Aliases"] or []) for name, n in
                         c["NetworkSettings"]["Networks"].items()},
            "inspect keys": {section: list(c[section]) for section in ("HostConfig", "Config")},
            "host config defaults": {k: c["HostConfig"][k] for k in HOST_CONFIG_DEFAULTS}}
    networks = {n["Name"]: {"driver": n["Driver"], "labels": labels(n["Labels"]), "internal": n["Internal"],
                            "attachable": n["Attachable"], "containers": len(n["Containers"] or {})}
                for n in inspected("network", listed("network", "ls"))}
    volumes = {v["Name"]: {"driver": v["Driver"], "labels": labels(v["Labels"]), "scope": v["Scope"]}
               for v in inspected("volume", listed("volume", "ls"))}
    return {"containers": containers, "networks": networks, "volumes": volumes}


def daemon_lists(side: Side) -> dict:
    """Everything the daemon lists (the images but busybox and the tags the test made)."""
    images = side.docker("images", "-a", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    return {"containers": side.docker("ps", "-aq").stdout.split(),
            "networks": sorted(side.docker("network", "ls", "--format", "{{.Name}}").stdout.split()),
            "volumes": side.docker("volume", "ls", "-q").stdout.split(),
            "images": sorted(i for i in images if not i.startswith(("busybox:", "cp-store:", "cp-tools:")))}


def kernel_left(side: Side) -> dict:
    """What the daemon's network namespace still has of containers: veths, bridges other than the
    default one, sandboxes under the exec root, port-forwarding (DNAT) rules."""
    def in_netns(*argv: str) -> str:
        return subprocess.run(["ip", "netns", "exec", side.daemon.netns, *argv], capture_output=True,
                              text=True, check=True).stdout

    bridges = in_netns("ip", "-o", "link", "show", "type", "bridge").split("\n")
    sandboxes = [os.path.basename(m) for m in mounts_under(f"{side.daemon.workdir}/exec/netns")]  # dockerd
    nat = in_netns("iptables-save", "-t", "nat") + in_netns("nft", "list", "ruleset")
    return {"veths": in_netns("ip", "-o", "link", "show", "type", "veth").count("\n"),
            "bridges": len([b for b in bridges if b and "docker0" not in b and "engine-py0" not in b]),
            "sandboxes": [s for s in sandboxes if s != "default"],
            "dnat rules": sum("dnat" in line.lower() and "dport" in line for line in nat.splitlines())}


def fetch(side: Side, port: int) -> str:
    """An HTTP GET of a published port from inside the daemon's network namespace."""
    r = subprocess.run(["ip", "netns", "exec", side.daemon.netns, "curl", "-s", "--max-time", "20",
                        f"http://127.0.0.1:{port}/"], capture_output=True, text=True, timeout=60)
    return r.stdout


def v2_project(side: Side, ctx) -> None:
    make_context(ctx, {**FILES, "docker-compose.yml": COMPOSE_V2})
    compose = Compose(side, "cp", ctx)
    side.docker("tag", "busybox", "cp-store:1")
    side.docker("tag", "busybox", "cp-tools")
    try:
        compose("build", "build")
        compose("up -d", "up", "-d")
        compose("ps", "ps")
        side.view["state after up"] = project_state(side, "cp")
        for name in ("cp_store_1", "cp_web_1"):
            side.view[f"{name} inspected"] = normalised_inspect(side, "container", name, dynamic_addresses=True)
        side.view["cp_back inspected"] = normalised_inspect(side, "network", "cp_back", dynamic_addresses=True)
        side.view["cp_data inspected"] = normalised_inspect(side, "volume", "cp_data")
        side.view["http web"] = fetch(side, compose.host_port("web", "8080"))
        side.view["http store"] = fetch(side, 18081)
        compose("port web", "port", "web", "8080")
        compose("port store", "port", "store", "8081")
        compose("exec -T store", "exec", "-T", "store", "sh", "-c",
                "echo kept > /data/kept.txt; echo anonymous > /cache/kept.txt; cat /data/kept.txt")
        compose("exec -T exit code", "exec", "-T", "client", "sh", "-c", "echo out; exit 3")
        compose("run --rm -T", "run", "--rm", "-T", "client", "sh", "-c", "wget -qO- http://web:8080/; echo ran")
        compose("run --rm -T exit code", "run", "--rm", "-T", "client", "false")
        compose("logs --no-color", "logs", "--no-color", stdout_sorted=True)
        compose("logs -t web", "logs", "--no-color", "-t", "web")
        compose("logs --tail=1 store", "logs", "--no-color", "--tail=1", "store")
        compose("ps -q", "ps", "-q", stdout_sorted=True)
        compose("ps --services", "ps", "--services", stdout_sorted=True)
        compose("images", "images")
        top = compose("top store", "top", "store")
        top["stdout"] = [TOP_NUMBERS.sub(r"\1  <pid>  <pid>  \2  <time>", line) for line in top["stdout"]]
        compose("pause store", "pause", "store")
        compose("ps paused", "ps")
        compose("unpause store", "unpause", "store")
        compose("kill client", "kill", "-s", "SIGKILL", "client")
        compose("ps killed", "ps")
        compose("rm -f client", "rm", "-f", "client")
        compose("up -d again", "up", "-d")
        compose("up -d unchanged", "up", "-d")
        (ctx / "web/index.html").write_text("<p>changed</p>\n")
        compose("build web changed", "build", "web")
        compose("up -d after a build", "up", "-d")
        side.view["http web changed"] = fetch(side, compose.host_port("web", "8080"))
        compose("stop", "stop")
        compose("ps stopped", "ps")
        compose("start", "start")
        compose("restart", "restart")
        compose("ps restarted", "ps")
        compose("up -d --scale web=5", "up", "-d", "--scale", "web=5")
        compose("ps scaled", "ps")
        side.view["state scaled"] = project_state(side, "cp")
        side.view["http web replicas"] = [fetch(side, compose.host_port("web", "8080", i)) for i in range(1, 6)]
        compose("dns web", "exec", "-T", "client", "sh", "-c", "nslookup web | grep -c '^Address: '")
        compose("scale web=2", "scale", "web=2")
        compose("ps scaled down", "ps")
        compose("up -d --force-recreate", "up", "-d", "--force-recreate")
        compose("volumes kept", "exec", "-T", "store", "cat", "/data/kept.txt", "/cache/kept.txt")
        side.view["state recreated"] = project_state(side, "cp")
        compose("down -v --rmi local", "down", "-v", "--rmi", "local")
        left = daemon_lists(side)
        side.view["left after down"] = {**left, "volumes": [side.ids(v) for v in left["volumes"]]}
        side.view["kernel left after down"] = kernel_left(side)
    finally:
        compose.run("down", "-v", "--rmi", "local")
        side.remove_images("cp-store:1", "cp-tools")
        side.docker("volume", "rm", *daemon_lists(side)["volumes"])   # the anonymous one down -v leaves


def v3_project(side: Side, ctx) -> None:
    make_context(ctx, {**FILES, "docker-compose.yml": COMPOSE_V3})
    compose = Compose(side, "cp3", ctx)
    side.docker("tag", "busybox", "cp-store:1")
    try:
        compose("up -d --build", "up", "-d", "--build")
        compose("ps", "ps")
        compose("config --services", "config", "--services")
        side.view["state"] = project_state(side, "cp3")
        side.view["http web"] = fetch(side, compose.host_port("web", "8080"))
        compose("exec -T", "exec", "-T", "store", "sh", "-c", "echo three > /data/v; cat /data/v")
        compose("down -v --rmi local", "down", "-v", "--rmi", "local")
        side.view["left after down"] = daemon_lists(side)
    finally:
        compose.run("down", "-v", "--rmi", "local")
        side.remove_images("cp-store:1")


def test_v2_project(request, tmp_path_factory, side):  # noqa: F811
    view = observed(request, tmp_path_factory, side, "28", v2_project)
    assert view["build"]["exit"] == 0 and view["up -d"]["exit"] == 0
    assert view["http web"] == view["run --rm -T"]["stdout"][0] + "\n" == "<p>hello from compose</p>\n"
    assert view["up -d unchanged"]["stderr"] == ["cp_client_1 is up-to-date", "cp_store_1 is up-to-date",
                                                 "cp_web_1 is up-to-date"]
    assert "Recreating cp_web_1 ... done" in view["up -d after a build"]["stderr"]
    assert view["http web changed"] == "<p>changed</p>\n"
    assert view["exec -T exit code"] == {"exit": 3, "stdout": ["out"], "stderr": []}
    assert view["run --rm -T exit code"]["exit"] == 1
    assert view["dns web"]["stdout"] == ["5"]
    assert view["http web replicas"] == ["<p>changed</p>\n"] * 5
    assert view["volumes kept"]["stdout"] == ["kept", "anonymous"]
    # the store's anonymous /cache volume: named in the recreated container's Binds, so rm -v keeps it
    assert view["left after down"] == {"containers": [], "networks": ["bridge", "host", "none"],
                                       "volumes": [view["state after up"]["containers"]["/cp_store_1"]["mounts"][0][1]],
                                       "images": ["<none>:<none>"] * 5}   # the first build's, dangling since the second
    assert view["kernel left after down"] == {"veths": 0, "bridges": 0, "sandboxes": [], "dnat rules": 0}


def test_v3_project(request, tmp_path_factory, side):  # noqa: F811
    view = observed(request, tmp_path_factory, side, "28", v3_project)
    assert view["up -d --build"]["exit"] == 0 and view["http web"] == "<p>hello from compose</p>\n"
    assert view["exec -T"]["stdout"] == ["three"]
    assert sorted(view["state"]["volumes"]) == ["cp3_data3"] and sorted(view["state"]["networks"]) == ["cp3_front"]
    assert view["left after down"] == {"containers": [], "networks": ["bridge", "host", "none"], "volumes": [],
                                       "images": []}


def options_project(side: Side, ctx) -> None:
    make_context(ctx, {"docker-compose.yml": COMPOSE_OPTIONS})
    compose = Compose(side, "cp4", ctx)
    side.docker("tag", "busybox", "cp-tools")
    try:
        compose("up -d", "up", "-d")
        compose("exec", "exec", "-T", "opts", "sh", "-c", "hostname; id; ulimit -n; ulimit -Hn; pwd; echo $B; "
                "grep -c opts-alias /etc/hosts; grep db.example /etc/hosts; touch /x || echo read-only; "
                "grep -E ' /(scratch|run) ' /proc/mounts | cut -d' ' -f1-3")
        side.view["container"] = normalised_inspect(side, "container", "cp-opts")
        side.view["network"] = normalised_inspect(side, "network", "cp4_inner")
        side.view["volume"] = normalised_inspect(side, "volume", "cp4_scratch")
        compose("down -v", "down", "-v")
        side.view["left after down"] = daemon_lists(side)
    finally:
        compose.run("down", "-v")
        side.remove_images("cp-tools")


def normalised_inspect(side: Side, kind: str, ref: str, dynamic_addresses: bool = False) -> dict:
    """`docker KIND inspect REF` with what differs by design or by run made alike: the storage
    driver and runtime's names, the pid, the project's directory, the daemon's own directory, IDs,
    times, the order of a network's aliases (compose gives them from a set) and of the mounts
    (dockerd's come from a Go map); with dynamic_addresses, the addresses given in the order
    that parallel starts happened to take."""
    found = json.loads(side.docker(kind, "inspect", ref).stdout)[0]
    for by_design in ("GraphDriver", "Driver"):
        found.pop(by_design, None)
    if kind == "container":
        found["State"]["Pid"] = found["HostConfig"]["Runtime"] = "<differs>"
        found["Config"]["Labels"]["com.docker.compose.project.working_dir"] = "<differs>"
        found["Mounts"].sort(key=lambda m: m["Destination"])
        for endpoint in found["NetworkSettings"]["Networks"].values():
            endpoint["Aliases"] = sorted(endpoint["Aliases"] or [])
        # the engine's sandbox is named after the container, dockerd's has an ID of its own
        found["NetworkSettings"]["SandboxID"] = found["NetworkSettings"]["SandboxKey"] = "<differs>"
        found["NetworkSettings"]["Ports"] = {  # dockerd's "::" twins: engine/network/DESIGN.md
            port: [b for b in bindings if b["HostIp"] != "::"] if bindings else bindings
            for port, bindings in found["NetworkSettings"]["Ports"].items()}
    text = json.dumps(found).replace(side.daemon.workdir, "<root>")
    if dynamic_addresses:
        text = MAC.sub("<mac>", ADDRESS.sub("<pooled>", text))
    return json.loads(TIMESTAMP.sub("<time>", side.ids(text)))


def test_options_project(request, tmp_path_factory, side):  # noqa: F811
    view = observed(request, tmp_path_factory, side, "28", options_project)
    assert view["exec"]["stdout"][:6] == ["optshost", "uid=1000(user) gid=1000(user) groups=1000(user)", "1024",
                                          "2048", "/tmp", "two words"]
    assert "10.1.2.3\tdb.example" in view["exec"]["stdout"] and "read-only" in view["exec"]["stdout"]
    assert sorted(view["exec"]["stdout"][-2:]) == ["tmpfs /run tmpfs", "tmpfs /scratch tmpfs"]
    assert "optshost" in view["container"]["NetworkSettings"]["Networks"]["cp4_inner"]["Aliases"]
    assert view["container"]["HostConfig"]["MemorySwap"] == 2 * view["container"]["HostConfig"]["Memory"]
