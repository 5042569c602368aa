"""Real dockerd runs containers with runpy-oci: `dockerd --add-runtime
runpy=.venv/bin/runpy-oci` (the session's dockerd, tests/engine/dockerd_oracle.py)
and `docker run --runtime runpy`, through dockerd's containerd and its
containerd-shim-runc-v2, which drives runpy-oci with runc's command line.

Each scenario runs once with runc, dockerd's own runtime, and once with
runpy-oci, and what a user sees (output, exit codes, state) must be the same
and as expected.
"""
import json
import subprocess
import time
import uuid

import pytest

from dockerd_oracle import RUNPY_OCI

pytestmark = pytest.mark.root

# A shell that says when its traps are set, so a signal never races them.
TRAPPING = ["sh", "-c", "trap 'echo got TERM; exit 7' TERM; trap 'echo got USR1; exit 8' USR1; echo ready; "
            "while :; do sleep 0.1; done"]


def name(runtime: str) -> str:
    return f"runpy-test-{runtime}-{uuid.uuid4().hex[:8]}"


def docker_run(dockerd, runtime: str, *args, check=True):
    """`docker run --runtime RUNTIME` without a network."""
    return dockerd.docker("run", "--runtime", runtime, "--network", "none", *args, check=check)


def wait_for(dockerd, container: str, text: str) -> None:
    """Polls the container's logs for text; the deadline only guards against a hang."""
    deadline = time.monotonic() + 60
    while text not in dockerd.docker("logs", container).stdout:
        assert time.monotonic() < deadline, dockerd.docker("logs", container).stdout
        time.sleep(0.05)


def seen(r) -> tuple[int, str, str]:
    return r.returncode, r.stdout, r.stderr


def run_rm(dockerd, runtime: str):
    return seen(docker_run(dockerd, runtime, "--rm", "busybox", "echo", "hi", check=False))


def execs(dockerd, runtime: str):
    c = name(runtime)
    docker_run(dockerd, runtime, "-d", "--name", c, "busybox", "sleep", "600")
    try:
        return [seen(dockerd.docker("exec", c, "echo", "hi", check=False)),
                seen(dockerd.docker("exec", c, "sh", "-c", "echo oops >&2; exit 3", check=False)),
                seen(dockerd.docker("exec", "-u", "1000:1000", "-w", "/tmp", "-e", "X=1", c,
                                    "sh", "-c", 'echo "$(id -u):$(id -g) $(pwd) $X"', check=False)),
                seen(dockerd.docker("exec", c, "nonexistent", check=False))[0]]
    finally:
        dockerd.docker("rm", "-f", c, check=False)


def stop_and_kill(dockerd, runtime: str):
    """`docker stop` (SIGTERM, trapped), `docker kill -s USR1` (trapped),
    `docker kill` (SIGKILL): exit codes and what the container printed."""
    out = []
    for verb in (["stop"], ["kill", "-s", "USR1"], ["kill"]):
        c = name(runtime)
        docker_run(dockerd, runtime, "-d", "--name", c, "busybox", *TRAPPING)
        try:
            wait_for(dockerd, c, "ready")
            dockerd.docker(*verb, c)
            status = dockerd.docker("wait", c).stdout.strip()
            state = dockerd.docker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", c).stdout.strip()
            out.append((status, state, dockerd.docker("logs", c).stdout))
        finally:
            dockerd.docker("rm", "-f", c, check=False)
    return out


def logs(dockerd, runtime: str):
    c = name(runtime)
    try:
        ran = seen(docker_run(dockerd, runtime, "--name", c, "busybox", "sh", "-c", "echo out; echo err >&2; exit 5",
                              check=False))
        return ran, seen(dockerd.docker("logs", c, check=False))
    finally:
        dockerd.docker("rm", "-f", c, check=False)


EXPECTED = {
    run_rm: (0, "hi\n", ""),
    execs: [(0, "hi\n", ""), (3, "", "oops\n"), (0, "1000:1000 /tmp 1\n", ""), 126],
    stop_and_kill: [("7", "exited 7", "ready\ngot TERM\n"), ("8", "exited 8", "ready\ngot USR1\n"),
                    ("137", "exited 137", "ready\n")],
    logs: ((5, "out\n", "err\n"), (0, "out\n", "err\n")),
}


@pytest.mark.parametrize("scenario", list(EXPECTED), ids=lambda f: f.__name__)
def test_runpy_under_dockerd_as_runc(dockerd, scenario):
    with_runc = scenario(dockerd, "runc")
    assert with_runc == EXPECTED[scenario]  # the scenario itself is right
    assert scenario(dockerd, "runpy") == with_runc


def test_runpy_is_the_runtime_dockerd_used(dockerd):
    """runpy-oci itself holds the container's state, under the root dockerd
    20.10 gives every runtime (runtime-runc/moby in its exec-root)."""
    c = name("runpy")
    cid = docker_run(dockerd, "runpy", "-d", "--name", c, "busybox", "sleep", "600").stdout.strip()
    try:
        assert dockerd.docker("inspect", "-f", "{{.HostConfig.Runtime}}", c).stdout.strip() == "runpy"
        state = subprocess.run([RUNPY_OCI, "--root", f"{dockerd.workdir}/exec/runtime-runc/moby", "state", cid],
                               capture_output=True, text=True, check=True)
        assert json.loads(state.stdout)["status"] == "running"
    finally:
        dockerd.docker("rm", "-f", c, check=False)
