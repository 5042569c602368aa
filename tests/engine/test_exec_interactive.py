"""`docker exec -it` from a terminal (the CLI on a pty of the test's own):
the terminal's size reaches the process, typed lines run, the detach keys
leave the process running; compared with real dockerd. And docker-py's
exec_run, which reads the exit code from exec inspect as the CLI does."""
import fcntl
import json
import os
import pty
import select
import signal
import struct
import termios
import time
import uuid

import docker
import pytest

from engine_daemon import DOCKER_CLIS

pytestmark = pytest.mark.root
DEADLINE = 60  # seconds; only guards against a hang


class Terminal:
    """The docker CLI running on a pty of ROWSxCOLS."""

    def __init__(self, cli: str, host: str, config_dir: str, args: list[str], rows: int, cols: int):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: its stdin is the pty's slave
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            env = {**os.environ, "DOCKER_HOST": host, "DOCKER_CONFIG": config_dir}
            os.execve(DOCKER_CLIS[cli], [DOCKER_CLIS[cli], *args], env)
        self.seen = b""

    def expect(self, text: bytes) -> bytes:
        deadline = time.monotonic() + DEADLINE
        while text not in self.seen:
            assert time.monotonic() < deadline, self.seen
            if select.select([self.fd], [], [], 0.5)[0]:
                try:
                    self.seen += os.read(self.fd, 4096)
                except OSError:  # EIO: the CLI has ended
                    break
        assert text in self.seen, self.seen
        return self.seen

    def type(self, data: bytes) -> None:
        os.write(self.fd, data)

    def exit_code(self) -> int:
        deadline = time.monotonic() + DEADLINE
        while True:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                while select.select([self.fd], [], [], 0)[0]:  # what it wrote last
                    try:
                        self.seen += os.read(self.fd, 4096) or b""
                    except OSError:
                        break
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
            try:
                self.seen += os.read(self.fd, 4096)  # drained, so the CLI never blocks on its output
            except OSError:
                time.sleep(0.05)


def _interactive(daemon, cli_version: str, tmp_path) -> dict:
    host, config = f"unix://{daemon.socket}", str(tmp_path)
    cli = docker.DockerClient(base_url=host, version="auto")
    name = f"it-{uuid.uuid4().hex[:8]}"
    container = cli.containers.run("busybox", ["sleep", "1000"], name=name, detach=True)
    try:
        terminal = Terminal(cli_version, host, config, ["exec", "-it", name, "sh"], 33, 101)
        terminal.expect(b"# ")
        terminal.type(b"stty size; echo mark-$((6*7))\r")
        seen = terminal.expect(b"mark-42\r\n")
        size = seen.split(b"\r\n")[-3].decode()
        terminal.type(b"\x10\x11")  # ctrl-p ctrl-q: the CLI leaves, the shell stays
        code = terminal.exit_code()
        container.reload()
        return {"size": size, "detached with": code, "said": terminal.seen.endswith(b"read escape sequence\r\n"),
                "execs left": len(container.attrs["ExecIDs"] or [])}
    finally:
        container.remove(force=True)
        cli.close()


@pytest.mark.parametrize("cli", ["28", "20.10"])
def test_an_interactive_terminal_as_with_dockerd(engine_py, dockerd, tmp_path, cli):
    ours = _interactive(engine_py, cli, tmp_path)
    assert ours == {"size": "33 101", "detached with": 1, "said": True,
                    "execs left": 1}
    theirs = _interactive(dockerd, cli, tmp_path)
    # dockerd's detached shell sometimes ends at once under load (its ExecIDs then empty): what
    # the exec left is ours to prove (above); the rest is compared
    assert {k: v for k, v in ours.items() if k != "execs left"} == \
        {k: v for k, v in theirs.items() if k != "execs left"}


def _exec_runs(daemon) -> dict:
    cli = docker.DockerClient(base_url=f"unix://{daemon.socket}", version="auto")
    container = cli.containers.run("busybox", ["sleep", "1000"], detach=True)
    try:
        code, output = container.exec_run(["sh", "-c", "echo out; echo err >&2; exit 4"], demux=True)
        exec_id = cli.api.exec_create(container.id, ["sh", "-c", "exit 2"], user="nobody", workdir="/tmp",
                                      environment={"A": "1"})["Id"]
        assert cli.api.exec_start(exec_id) == b""
        shown = cli.api.exec_inspect(exec_id)
        return {"exec_run": (code, output), "inspect": {**shown, "ID": len(shown["ID"]), "Pid": shown["Pid"] > 0,
                                                       "ContainerID": shown["ContainerID"] == container.id}}
    finally:
        container.remove(force=True)
        cli.close()


def test_docker_py_exec_run_and_exec_inspect_as_with_dockerd(engine_py, dockerd):
    ours = _exec_runs(engine_py)
    assert ours["exec_run"] == (4, (b"out\n", b"err\n"))
    assert ours["inspect"]["ExitCode"] == 2 and ours["inspect"]["ProcessConfig"]["user"] == "nobody"
    theirs = _exec_runs(dockerd)
    assert json.dumps(ours, sort_keys=True, default=repr) == json.dumps(theirs, sort_keys=True, default=repr)
