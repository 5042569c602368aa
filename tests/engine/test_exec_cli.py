"""`docker exec` through the real docker CLI (28 and 20.10) at engine-py, and
what a user sees of it compared with real dockerd (runc running the
container): output and its streams, exit codes, input, a TTY, detached
execs, --user, --env, --workdir, the refusals."""
import os
import subprocess
import time
import uuid

import pytest

from engine_daemon import DOCKER_CLIS

pytestmark = pytest.mark.root
CLIS = ("28", "20.10")


class Docker:
    """A CLI at a daemon's socket; ``run`` gives (exit code, stdout, stderr)."""

    def __init__(self, host: str, cli: str, config_dir: str):
        self.host, self.cli, self.config_dir = host, DOCKER_CLIS[cli], config_dir

    def run(self, *args, input: str | None = None) -> tuple[int, str, str]:
        env = {**os.environ, "DOCKER_HOST": self.host, "DOCKER_CONFIG": self.config_dir}
        r = subprocess.run([self.cli, *args], capture_output=True, env=env, timeout=120,
                           input=input.encode() if input is not None else None,
                           stdin=None if input is not None else subprocess.DEVNULL)
        return r.returncode, r.stdout.decode(), r.stderr.decode()  # bytes first: a TTY's \r\n kept

    def ok(self, *args, input: str | None = None) -> str:
        code, out, err = self.run(*args, input=input)
        assert code == 0, f"docker {' '.join(args)} failed ({code}): {err}"
        return out


@pytest.fixture
def container(request):
    """A running busybox container on the daemon and CLI the test names: (docker, name)."""
    made = []

    def make(daemon, cli: str, tmp: str):
        docker = Docker(f"unix://{daemon.socket}", cli, tmp)
        name = f"x-{uuid.uuid4().hex[:8]}"
        docker.ok("run", "-d", "--name", name, "-e", "FROM_RUN=1", "-w", "/etc", "busybox", "sleep", "1000")
        made.append((docker, name))
        return docker, name

    yield make
    for docker, name in made:
        docker.run("rm", "-f", name)


def scenario(docker: Docker, name: str) -> dict:
    """What a user sees of each exec, in a form both daemons can be compared in."""
    seen = {
        "echo": docker.run("exec", name, "echo", "hi"),
        "streams": docker.run("exec", name, "sh", "-c", "echo out; echo err >&2"),
        "exit code": docker.run("exec", name, "sh", "-c", "exit 3"),
        "stdin": docker.run("exec", "-i", name, "cat", input="piped\nlines\n"),
        "stdin ignored without -i": docker.run("exec", name, "cat", input="nothing\n"),
        "env": docker.run("exec", "-e", "ADDED=2", "-e", "FROM_RUN=replaced", name, "sh", "-c",
                          "echo $ADDED $FROM_RUN $HOSTNAME $TERM"),
        "cwd": docker.run("exec", name, "pwd"),
        "workdir": docker.run("exec", "-w", "/tmp", name, "pwd"),
        "user": docker.run("exec", "-u", "nobody", name, "id"),
        "uid:gid": docker.run("exec", "--user", "1234:5678", name, "id"),
        "unknown user": docker.run("exec", "-u", "nosuchuser", name, "true")[0],
        "tty": docker.run("exec", "-t", name, "sh", "-c", "tty >/dev/null && echo a tty; echo $TERM"),
        "no such container": docker.run("exec", "nosuch-container", "true"),
        "privileged": docker.run("exec", "--privileged", name, "grep", "CapEff", "/proc/self/status"),
        "missing command": docker.run("exec", name, "no-such-command"),
    }
    docker.ok("exec", "-d", name, "sh", "-c", "echo detached > /tmp/d; exec sleep 1000")
    seen["ExecIDs with a detached exec"] = docker.ok("inspect", "-f", "{{len .ExecIDs}}", name)
    deadline = time.monotonic() + 60
    while docker.run("exec", name, "cat", "/tmp/d")[1] != "detached\n":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    container_id = docker.ok("inspect", "-f", "{{.Id}}", name).strip()
    docker.ok("stop", "-t", "0", name)
    code, out, err = docker.run("exec", name, "true")
    seen["not running"] = (code, out, err.replace(container_id, "<id>"))
    return seen


def _normalized(seen: dict) -> dict:
    """Without what differs by nature between two daemons: hostnames, and the
    runtime's own words after its prefix when an exec cannot start (--privileged
    cannot start on a host that withholds a capability, as here, with runc too)."""
    out = dict(seen)
    code, text, err = out["env"]
    out["env"] = (code, " ".join(text.split()[:2]), err)
    for key in ("privileged", "missing command"):
        code, text, err = out[key]
        if code == 126:
            out[key] = (code, text.split(": ")[:2], err)
    return out


@pytest.mark.parametrize("cli", CLIS)
def test_exec_through_the_cli(engine_py, container, tmp_path, cli):
    docker, name = container(engine_py, cli, str(tmp_path))
    seen = scenario(docker, name)
    hostname = docker.ok("inspect", "-f", "{{.Config.Hostname}}", name).strip()
    assert seen["echo"] == (0, "hi\n", "")
    assert seen["streams"] == (0, "out\n", "err\n")
    assert seen["exit code"] == (3, "", "")
    assert seen["stdin"] == (0, "piped\nlines\n", "")
    assert seen["stdin ignored without -i"] == (0, "", "")
    assert seen["env"] == (0, f"2 replaced {hostname}\n", "")
    assert seen["cwd"] == (0, "/etc\n", "")
    assert seen["workdir"] == (0, "/tmp\n", "")
    assert seen["user"] == (0, "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\n", "")
    assert seen["uid:gid"][:2] == (0, "uid=1234 gid=5678 groups=5678\n")
    assert seen["unknown user"] == 126
    assert seen["missing command"][0] == 126
    assert seen["missing command"][1].startswith("OCI runtime exec failed: exec failed: ")
    assert seen["tty"] == (0, "a tty\r\nxterm\r\n", "")
    said = "Error response from daemon" if cli == "28" else "Error"  # 20.10 inspects the container first
    assert seen["no such container"] == (1, "", f"{said}: No such container: nosuch-container\n")
    assert seen["ExecIDs with a detached exec"] == "1\n"
    assert seen["not running"] == (1, "", "Error response from daemon: Container <id> is not running\n")


def test_exec_as_dockerd_does_it(engine_py, dockerd, container, tmp_path):
    ours = scenario(*container(engine_py, "20.10", str(tmp_path)))
    theirs = scenario(*container(dockerd, "20.10", str(tmp_path)))
    assert _normalized(ours) == _normalized(theirs)
