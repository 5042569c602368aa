"""testcontainers-python 4.15 (PyPI, unmodified) against engine-py and
dockerd 20.10 in one test: the same scenario, run by this file as a script
in a subprocess inside the daemon's network namespace (a published port is
reached on the daemon's loopback), with DOCKER_HOST at the daemon's socket
and Ryuk disabled (its image is not here; each container is removed by its
context manager instead). What the client saw, with IDs, ports, addresses
and times normalised, must be the same on both daemons.

The scenario: a busybox httpd as a generic DockerContainer with an env
variable, an exposed port and a log wait strategy, answered over HTTP at
`get_container_host_ip():get_exposed_port(80)`; its logs; `exec` with an
exit code, stderr, user, workdir and env; the parsed `get_container_info()`;
the port, HTTP, exec and healthcheck wait strategies and the deprecated
`wait_for_logs`; a container exiting before its log line; a file copied in
before start; a `Network` with an alias resolved from a second container;
`wait()` for an exit code; a DockerImage built and run with a bind mount,
a tmpfs and a fixed host port, a file copied out; and nothing of the
session left afterwards."""
import dataclasses
import difflib
import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.root

HTTPD = ["sh", "-c", 'mkdir -p /www && echo "hello $GREETING" > /www/index.html && echo serving && '
                     'echo on-stderr >&2 && exec httpd -f -p 80 -h /www']


def scenario() -> dict:
    """What testcontainers shows of the daemon at DOCKER_HOST (run inside its netns)."""
    import urllib.request

    import docker
    from testcontainers.core.container import DockerContainer, ExecConfig
    from testcontainers.core.labels import SESSION_ID
    from testcontainers.core.network import Network
    from testcontainers.core.wait_strategies import (ExecWaitStrategy, HealthcheckWaitStrategy, HttpWaitStrategy,
                                                     LogMessageWaitStrategy, PortWaitStrategy)
    from testcontainers.core.waiting_utils import wait_for_logs

    view: dict = {}

    def httpd(strategy) -> DockerContainer:
        return (DockerContainer("busybox").with_command(HTTPD).with_env("GREETING", "tc")
                .with_exposed_ports(80).waiting_for(strategy.with_startup_timeout(60)))

    with httpd(LogMessageWaitStrategy("serving")) as web:
        host, port = web.get_container_host_ip(), web.get_exposed_port(80)
        view["host"] = host
        with urllib.request.urlopen(f"http://{host}:{port}/index.html", timeout=10) as answer:
            view["http"] = [answer.status, answer.read().decode()]
        view["logs"] = [stream.decode() for stream in web.get_logs()]
        view["wait_for_logs"] = type(wait_for_logs(web, r"serv\w+", timeout=30)).__name__
        result = web.exec(["sh", "-c", "echo out $GREETING; echo err >&2; exit 3"])
        view["exec"] = [result.exit_code, sorted(result.output.decode().splitlines())]  # two pipes, either first
        result = web.exec(ExecConfig(["sh", "-c", "id -u; pwd; echo $EXTRA"], user="nobody", workdir="/www",
                                     environment={"EXTRA": "x"}))
        view["exec config"] = [result.exit_code, result.output.decode()]
        view["exec string"] = [web.exec("echo a 'b c'").output.decode()]
        info = dataclasses.asdict(web.get_container_info())
        # the engine's layers are containerd snapshots: no overlay2 dirs, as dockerd with its containerd store
        del info["GraphDriver"]["Data"]
        view["container info"] = shape(info)
        view["status"] = web.status
    for name, strategy in {"port": PortWaitStrategy(80), "http": HttpWaitStrategy(80).for_status_code(200),
                           "exec": ExecWaitStrategy(["test", "-f", "/www/index.html"])}.items():
        with httpd(strategy) as web:
            view[f"{name} strategy"] = web.exec(["cat", "/www/index.html"]).output.decode()
    healthy = httpd(HealthcheckWaitStrategy()).with_kwargs(
        healthcheck={"test": ["CMD", "test", "-f", "/www/index.html"], "interval": 100_000_000})
    with healthy as web:
        view["healthcheck strategy"] = web.get_wrapped_container().attrs["State"]["Health"]["Status"]
    early = (DockerContainer("busybox").with_command(["sh", "-c", "echo bye; exit 4"])
             .waiting_for(LogMessageWaitStrategy("never").with_startup_timeout(60)))
    try:
        with early:
            view["exits early"] = "started"
    except RuntimeError as error:
        view["exits early"] = str(error).split(". Hint")[0]
    copied = (DockerContainer("busybox").with_command(["sleep", "60"])
              .with_copy_into_container(b"copied\n", "/in/file.txt", 0o600))
    with copied as box:
        view["copied"] = box.exec(["stat", "-c", "%a %s", "/in/file.txt"]).output.decode()
    with Network() as network:
        server = httpd(LogMessageWaitStrategy("serving")).with_network(network).with_network_aliases("web")
        with server, DockerContainer("busybox").with_command(["sleep", "60"]).with_network(network) as client:
            result = client.exec(["wget", "-qO-", "http://web/index.html"])
            view["network alias"] = [result.exit_code, result.output.decode()]
    with DockerContainer("busybox").with_command(["sh", "-c", "exit 7"]) as short:
        view["wait"] = short.wait()
    view.update(built_and_mounted())
    left = docker.from_env().containers.list(all=True, filters={"label": f"org.testcontainers.session-id={SESSION_ID}"})
    view["left"] = [c.name for c in left]
    return view


def built_and_mounted() -> dict:
    """A DockerImage built from a context and run with a bind mount, a tmpfs,
    a fixed host port; a file copied out."""
    import pathlib
    import tempfile
    import urllib.request

    import docker
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.image import DockerImage
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    view = {}
    with tempfile.TemporaryDirectory() as tmp:
        context, shared, out = (pathlib.Path(tmp, name) for name in ("context", "shared", "out"))
        for directory in (context, shared, out):
            directory.mkdir()
        (context / "Dockerfile").write_text('FROM busybox\nCOPY page.html /www/\nEXPOSE 80\n'
                                            'CMD ["sh", "-c", "echo up; exec httpd -f -p 80 -h /www"]\n')
        (context / "page.html").write_text("built\n")
        (shared / "host.txt").write_text("from the host\n")
        with DockerImage(path=context, tag="tc-built:latest") as image:
            view["image"] = [str(image), [log.get("stream", "").startswith("Step") for log in image.get_logs()
                                          if "stream" in log].count(True)]
            web = (DockerContainer(str(image)).with_bind_ports(80, 18080).with_volume_mapping(shared, "/shared")
                   .with_tmpfs_mount("/scratch").waiting_for(LogMessageWaitStrategy("up")))
            with web:
                with urllib.request.urlopen("http://localhost:18080/page.html", timeout=10) as answer:
                    view["bound port"] = [web.get_exposed_port(80), answer.read().decode()]
                result = web.exec(["sh", "-c", "cat /shared/host.txt; (echo x > /shared/ro) 2>/dev/null || echo ro; "
                                               "grep -o 'tmpfs /scratch tmpfs [a-z]*' /proc/mounts"])
                view["mounts"] = [result.exit_code, result.output.decode()]
                web.copy_from_container("/www/page.html", out / "page.html")
                view["copied out"] = (out / "page.html").read_text()
            try:   # 4.15 passes the size as the whole option ("1m", not "size=1m")
                with DockerContainer(str(image)).with_tmpfs_mount("/scratch", "1m"):
                    view["tmpfs with a size"] = "started"
            except docker.errors.APIError as error:
                view["tmpfs with a size"] = [error.status_code, error.explanation]
    return view


def shape(value):
    """The structure of a value with its leaves as type names: which fields
    the client found (and in what form), not their values."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value[:1]]
    return type(value).__name__



def run_scenario(daemon) -> dict:
    env = {**os.environ, "DOCKER_HOST": f"unix://{daemon.socket}", "TESTCONTAINERS_RYUK_DISABLED": "true",
           "TC_POOLING_INTERVAL": "0.1", "DOCKER_CONFIG": f"{daemon.workdir}/docker-config", "HOME": daemon.workdir}
    env.pop("TC_HOST", None)
    r = subprocess.run(["ip", "netns", "exec", daemon.netns, sys.executable, __file__], capture_output=True,
                       text=True, env=env, timeout=300, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout)


def test_testcontainers_sees_engine_py_as_dockerd(engine_py, dockerd):
    theirs, ours = run_scenario(dockerd), run_scenario(engine_py)
    assert theirs["http"] == [200, "hello tc\n"] and theirs["exec"] == [3, ["err", "out tc"]]
    assert theirs["left"] == [] and theirs["wait"] == 7
    assert theirs["bound port"] == [18080, "built\n"] and theirs["copied out"] == "built\n"
    assert theirs["tmpfs with a size"] == [500, 'invalid tmpfs option ["1m"]']
    differing = sorted(k for k in {*theirs, *ours} if ours.get(k) != theirs.get(k))
    assert not differing, "\n".join(diff(k, theirs.get(k), ours.get(k)) for k in differing)


def diff(key: str, theirs, ours) -> str:
    lines = [json.dumps(v, indent=1, sort_keys=True).splitlines() for v in (theirs, ours)]
    return "\n".join(difflib.unified_diff(*lines, f"{key} (dockerd)", f"{key} (engine-py)", lineterm="", n=2))


if __name__ == "__main__":
    json.dump(scenario(), sys.stdout)
