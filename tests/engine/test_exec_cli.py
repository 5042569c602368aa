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
    since = f"{time.time() - 1:.3f}"
    seen = {
        "echo": docker.run("exec", name, "echo", "hi"),
        "streams": docker.run("exec", name, "sh", "-c", "echo out; echo err >&2"),
        "exit code": docker.run("exec", name, "sh", "-c", "exit 3"),
        "stdin": docker.run("exec", "-i", name, "cat", input="piped\nlines\n"),
        "stdin ignored without -i": docker.run("exec", name, "cat", input="nothing\n"),
        "env": docker.run("exec", "-e", "ADDED=2", "-e", "FROM_RUN=replaced", name, "sh", "-c",
                          "echo $ADDED $FROM_RUN $HOSTNAME $TERM"),
        "cwd": docker.run("exec", name, "pwd"),
        "status": docker.run("exec", name, "grep", "-E", "^(Cap|NoNewPrivs|Seccomp|Groups)",
                             "/proc/self/status"),
        "status as nobody": docker.run("exec", "-u", "nobody", name, "grep", "-E", "^(Cap|Groups)",
                                       "/proc/self/status"),
        "environment": docker.run("exec", name, "sh", "-c", "env | grep -v -e ^HOSTNAME= | sort"),
        "home of nobody": docker.run("exec", "-u", "nobody", name, "sh", "-c", "echo $HOME"),
        "workdir": docker.run("exec", "-w", "/tmp", name, "pwd"),
        "missing workdir": docker.run("exec", "-w", "/nonexistent", name, "pwd"),
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
    seen["detached output"] = docker.run("exec", name, "sh", "-c",
                                         "until [ -s /tmp/d ]; do sleep 0.05; done; cat /tmp/d")
    container_id = docker.ok("inspect", "-f", "{{.Id}}", name).strip()
    docker.ok("stop", "-t", "0", name)
    code, out, err = docker.run("exec", name, "true")
    seen["not running"] = (code, out, err.replace(container_id, "<id>"))
    events = docker.ok("events", "--since", since, "--until", f"{time.time() + 1:.3f}", "--filter",
                       f"container={name}", "--format",
                       "{{.Action}}{{with .Actor.Attributes.exitCode}} exit {{.}}{{end}}")
    seen["exec events"] = sorted(line for line in events.splitlines() if line.startswith("exec_"))
    return seen


def _normalized(seen: dict) -> dict:
    """Without what differs by nature between two daemons: hostnames, and the
    runtime's own words after its prefix when an exec cannot start (--privileged
    cannot start on a host that withholds a capability, as here, with runc too)."""
    out = dict(seen)
    code, text, err = out["env"]
    out["env"] = (code, " ".join(text.split()[:2]), err)
    for key in ("privileged", "missing command", "missing workdir"):
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
    assert seen["detached output"] == (0, "detached\n", "")
    assert seen["not running"] == (1, "", "Error response from daemon: Container <id> is not running\n")
    assert "exec_create: sh -c exit 3" in seen["exec events"] and "exec_die exit 3" in seen["exec events"]
    assert "exec_start: echo hi" in seen["exec events"] and "exec_create: pwd " in seen["exec events"]


def test_a_command_that_cannot_start_is_told_as_dockerd_tells_it(engine_py, dockerd, container, tmp_path):
    """With runc on both sides the runtime's words are the same, and the engine passes them on untouched."""
    told = []
    for daemon, runtime in ((engine_py, ["--runtime", "runc"]), (dockerd, [])):
        docker = Docker(f"unix://{daemon.socket}", "20.10", str(tmp_path))
        name = f"x-{uuid.uuid4().hex[:8]}"
        docker.ok("run", "-d", *runtime, "--name", name, "busybox", "sleep", "1000")
        try:
            told.append(docker.run("exec", name, "no-such-command"))
        finally:
            docker.run("rm", "-f", name)
    assert told[0] == told[1]
    assert told[0][0] == 126 and told[0][1].endswith("executable file not found in $PATH: unknown\r\n")


def test_the_containers_user_and_group_add_are_the_execs_default(engine_py, dockerd, tmp_path):
    seen = []
    for daemon in (engine_py, dockerd):
        docker = Docker(f"unix://{daemon.socket}", "20.10", str(tmp_path))
        name = f"x-{uuid.uuid4().hex[:8]}"
        docker.ok("run", "-d", "-u", "nobody", "--group-add", "tty", "--name", name, "busybox", "sleep", "1000")
        try:
            seen.append([docker.run("exec", name, "id"), docker.run("exec", "-u", "0", name, "id")])
        finally:
            docker.run("rm", "-f", name)
    assert seen[0][0] == (0, "uid=65534(nobody) gid=65534(nogroup) groups=5(tty),65534(nogroup)\n", "")
    assert seen[0] == seen[1]


def test_home_is_set_from_etc_passwd(engine_py, container, tmp_path):
    docker, name = container(engine_py, "28", str(tmp_path))
    assert docker.run("exec", name, "sh", "-c", "echo $HOME") == (0, "/root\n", "")


def test_exec_as_dockerd_does_it(engine_py, dockerd, container, tmp_path):
    ours = scenario(*container(engine_py, "20.10", str(tmp_path)))
    theirs = scenario(*container(dockerd, "20.10", str(tmp_path)))
    assert _normalized(ours) == _normalized(theirs)
