"""`docker run -i`, `docker attach`, `docker run -it` through the real docker
CLI (28 and 20.10) at engine-py, compared with real dockerd: stdin relayed,
StdinOnce, detach keys, a TTY the CLI drives from a terminal of the test's."""
import os
import pty
import select
import subprocess
import time

import pytest

from engine_daemon import DOCKER_CLIS
from logs_fixtures import DEADLINE, names  # noqa: F401 (a fixture)

CLIS = ("28", "20.10")
pytestmark = pytest.mark.root


def _eventually(check):
    deadline = time.monotonic() + DEADLINE
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.05)


@pytest.mark.parametrize("cli", CLIS)
def test_piped_stdin_reaches_the_container_and_its_end_ends_it(engine_py, dockerd, cli):
    for daemon, docker in ((engine_py, engine_py.cli(cli).docker), (dockerd, dockerd.docker)):
        r = docker("run", "--rm", "-i", "busybox", "sh", "-c", "cat; echo done >&2", input="x\ny\n")
        assert (r.returncode, r.stdout, r.stderr) == (0, "x\ny\n", "done\n"), daemon
    big = "".join(f"line {i}\n" for i in range(20000))
    r = engine_py.docker("run", "--rm", "-i", "busybox", "wc", "-l", input=big, cli=cli)
    assert r.stdout.strip() == "20000"


def test_run_without_i_gives_the_container_no_stdin(engine_py, dockerd):
    for daemon in (engine_py, dockerd):
        r = daemon.docker("run", "--rm", "busybox", "sh", "-c", "cat; echo eof", input="ignored\n")
        assert (r.returncode, r.stdout) == (0, "eof\n"), daemon


@pytest.mark.parametrize("cli", CLIS)
def test_docker_attach_follows_from_now_and_ends_at_the_exit(engine_py, names, cli):
    docker = engine_py.cli(cli).docker
    name = names()
    docker("run", "-d", "--name", name, "busybox", "sh", "-c", "echo before; sleep 1; echo after; exit 5")
    _eventually(lambda: docker("logs", name).stdout == "before\n")
    r = docker("attach", name, check=False)
    assert (r.returncode, r.stdout) == (5, "after\n")


def test_start_attach_runs_again_and_shows_the_new_run_only(engine_py, names):
    docker = engine_py.docker
    name = names()
    docker("run", "--name", name, "busybox", "sh", "-c", "echo run; exit 2", check=False)
    r = docker("start", "-a", name, check=False)
    assert (r.returncode, r.stdout) == (2, "run\n")
    assert docker("logs", name).stdout == "run\nrun\n"


def test_attach_to_a_stopped_container_is_refused_by_the_cli(engine_py, dockerd, names):
    name = names()
    for daemon in (engine_py, dockerd):
        daemon.docker("create", "--name", name, "busybox")
        r = daemon.docker("attach", name, check=False)
        assert (r.returncode, r.stderr.strip()) == (1, "You cannot attach to a stopped container, start it first")


class Terminal:
    """The docker CLI on a pseudo-terminal of the test's, as a user at a shell runs it."""

    def __init__(self, daemon, *args, cli="28"):
        self.master, slave = pty.openpty()
        env = {**os.environ, "DOCKER_HOST": f"unix://{daemon.socket}", "TERM": "xterm",
               "DOCKER_CONFIG": f"{daemon.workdir}/docker-config"}
        self.proc = subprocess.Popen([DOCKER_CLIS[cli], *args], stdin=slave, stdout=slave, stderr=slave, env=env,
                                     start_new_session=True)
        os.close(slave)
        self.seen = b""

    def type(self, data: bytes) -> None:
        os.write(self.master, data)

    def expect(self, text: bytes) -> None:
        deadline = time.monotonic() + DEADLINE
        while text not in self.seen:
            assert time.monotonic() < deadline, f"{text!r} not in {self.seen!r}"
            if select.select([self.master], [], [], 0.1)[0]:
                try:
                    self.seen += os.read(self.master, 4096)
                except OSError:  # EIO: the CLI has gone
                    assert text in self.seen, self.seen
                    return

    def wait(self) -> int:
        code = self.proc.wait(timeout=DEADLINE)
        os.close(self.master)
        return code


@pytest.mark.parametrize("cli", CLIS)
def test_run_it_is_an_interactive_shell(engine_py, cli):
    term = Terminal(engine_py, "run", "--rm", "-it", "busybox", "sh", cli=cli)
    term.expect(b"/ # ")
    term.type(b"echo $((6*7)); stty size\r")
    term.expect(b"42")
    term.type(b"exit 3\r")
    assert term.wait() == 3


def test_run_it_detach_keys_leave_the_container_running(engine_py, names):
    name = names()
    term = Terminal(engine_py, "run", "-it", "--name", name, "busybox", "sh")
    term.expect(b"/ # ")
    term.type(b"\x10\x11")
    assert term.wait() == 0
    assert engine_py.docker("inspect", "-f", "{{.State.Running}}", name).stdout.strip() == "true"
    again = Terminal(engine_py, "attach", name)
    again.type(b"echo back\r")
    again.expect(b"back")
    again.type(b"exit\r")
    assert again.wait() == 0


def _raw_request(socket_path: str, request: bytes) -> bytes:
    """One request on a fresh connection; what comes back until the server closes or 1 s of quiet."""
    import socket
    with socket.socket(socket.AF_UNIX) as conn:
        conn.connect(socket_path)
        conn.sendall(request)
        conn.shutdown(socket.SHUT_WR)
        received = b""
        conn.settimeout(DEADLINE)
        while chunk := conn.recv(65536):
            received += chunk
        return received


def test_the_hijack_answers_as_dockerds(engine_py, dockerd, names):
    name = names()
    for daemon in (engine_py, dockerd):
        daemon.docker("run", "-d", "--name", name, "busybox", "sh", "-c", "sleep 1; echo hi")
        upgraded = _raw_request(daemon.socket, f"POST /v1.41/containers/{name}/attach?stream=1&stdout=1 HTTP/1.1\r\n"
                                               "Host: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n".encode())
        head, _, body = upgraded.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        assert lines[0] == b"HTTP/1.1 101 UPGRADED", daemon
        assert {b"Content-Type: application/vnd.docker.raw-stream", b"Connection: Upgrade", b"Upgrade: tcp"} <= \
            set(lines[1:]), daemon
        assert body == b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n", daemon
        missing = _raw_request(daemon.socket, b"POST /v1.41/containers/nosuch/attach?stream=1&stdout=1 HTTP/1.1\r\n"
                                              b"Host: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
        assert missing.startswith(b"HTTP/1.1 404 Not Found\r\n") and b"application/vnd.docker.raw-stream" in missing \
            and missing.endswith(b"\r\n\r\nNo such container: nosuch\r\n"), daemon
