"""`engine-py` as a process: the real docker CLIs (28 and Debian's 20.10)
print its Server section; a start that cannot be is refused in one line
(another engine on the data-root, a socket another daemon serves, a
non-loopback TCP address, an unknown daemon.json key, non-root) and leaves
nothing; SIGTERM stops it and removes its socket and pidfile. Without
--containerd it runs its own containerd-py, restarts it when it dies,
adopts it after a kill -9 of the engine, and stops it with itself."""
import grp
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from containers_helpers import containerd_py  # noqa: F401  (fixture)
from leaks import kill_processes_mentioning

pytestmark = pytest.mark.root

ENGINE = str(Path(sys.executable).with_name("engine-py"))
CLIS = [p for p in ("/usr/local/bin/docker", "/usr/bin/docker") if os.access(p, os.X_OK)]
START_DEADLINE = 60  # seconds; only guards against a hang, never asserted on


class Engine:
    """One engine-py under a test's directory, with its own daemon.json (empty unless given)."""

    def __init__(self, workdir: Path, *flags, netns: str, config: dict | None = None, data_root: Path | None = None):
        self.workdir = workdir
        workdir.mkdir(exist_ok=True)
        self.socket = workdir / "engine.sock"
        self.data_root = data_root or workdir / "data"
        self.exec_root = workdir / "exec"
        (workdir / "daemon.json").write_text(json.dumps(config or {}))
        # in the test's network namespace: the engine's bridge and rules never touch the host's
        self.argv = ["nsenter", f"--net=/run/netns/{netns}", ENGINE, "-H", f"unix://{self.socket}",
                     "--data-root", str(self.data_root),
                     "--exec-root", str(self.exec_root), "--config-file", str(workdir / "daemon.json"), *flags]
        self.proc = None

    def run(self, prefix=()) -> subprocess.CompletedProcess:
        """Starts it expecting a refusal: its exit and output."""
        return subprocess.run([*self.argv[:2], *prefix, *self.argv[2:]], capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL)

    def start(self) -> "Engine":
        self.log = open(self.workdir / "engine.log", "wb")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_DEADLINE
        while not self._answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"engine-py did not start: {(self.workdir / 'engine.log').read_text()}")
            time.sleep(0.05)
        return self

    def _answers(self) -> bool:
        with socket.socket(socket.AF_UNIX) as s:
            try:
                s.connect(str(self.socket))
                s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
                return s.recv(64).startswith(b"HTTP/1.1 200")
            except OSError:
                return False

    def docker(self, cli: str, *args) -> subprocess.CompletedProcess:
        return subprocess.run([cli, "-H", f"unix://{self.socket}", *args], capture_output=True, text=True,
                              timeout=120, stdin=subprocess.DEVNULL)

    def stop(self) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("engine-py did not stop on SIGTERM")
        self.log.close()
        return self.proc.returncode


@pytest.fixture
def engines(tmp_path):
    """Engines of the test's own, all in one network namespace the test makes."""
    made, netns = [], f"engine-proc-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)

    def make(name="engine", *flags, **kwargs):
        engine = Engine(tmp_path / name, *flags, netns=netns, **kwargs)
        made.append(engine)
        return engine

    try:
        yield make
    finally:
        for engine in made:
            engine.stop()
        left = kill_processes_mentioning(str(tmp_path))
        subprocess.run(["ip", "netns", "del", netns], check=False)
    assert not left, f"processes left behind: {left}"


@pytest.mark.parametrize("cli", CLIS)
def test_the_docker_cli_prints_the_engines_server_section(engines, cli):
    engine = engines().start()
    out = engine.docker(cli, "version")
    assert out.returncode == 0, out.stderr
    server = out.stdout.split("Server:", 1)[1]
    assert "engine-py" in server.splitlines()[0]
    assert "API version:      1.41 (minimum version 1.24)" in server
    assert " containerd:\n" in server and " runc:\n" in server
    assert "Version:          1.6.0+containerd-py." in server  # the containerd-py it runs
    template = engine.docker(cli, "version", "--format", "{{.Server.Version}} {{.Server.APIVersion}} {{.Server.Os}}")
    assert template.stdout.split() == ["0.1.0", "1.41", "linux"]


def test_sigterm_stops_serving_and_removes_socket_and_pidfile(engines):
    engine = engines().start()
    pidfile = engine.exec_root / "engine-py.pid"
    assert pidfile.read_text() == str(engine.proc.pid)
    assert engine.stop() == 0
    assert not engine.socket.exists() and not pidfile.exists()
    assert (engine.data_root / "engine-py.lock").exists()  # the data-root stays, unlocked


def test_sigterm_stops_it_while_clients_are_connected(engines):
    engine = engines().start()
    with socket.socket(socket.AF_UNIX) as idle, socket.socket(socket.AF_UNIX) as halfway:
        idle.connect(str(engine.socket))
        idle.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = b""
        while not reply.endswith(b"OK"):  # answered: accepted, and now idle between requests
            reply += idle.recv(4096)
        halfway.connect(str(engine.socket))
        halfway.sendall(b"POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        assert engine.stop() == 0
        assert idle.recv(10) == b""  # closed by the engine


def test_a_second_engine_on_the_same_data_root_is_refused(engines):
    first = engines("first").start()
    second = engines("second", data_root=first.data_root)
    out = second.run()
    assert out.returncode == 1
    assert out.stderr == (f"engine-py: data-root {first.data_root} is in use by another engine-py "
                          f"(pid {first.proc.pid})\n")
    assert not second.socket.exists() and not second.exec_root.exists()
    assert first._answers()


def test_a_socket_another_daemon_serves_is_refused(engines):
    first = engines("first").start()
    second = engines("second", "-H", f"unix://{first.socket}")
    own = second.argv.index("-H")
    del second.argv[own:own + 2]  # only the first one's socket
    out = second.run()
    assert out.returncode == 1
    assert f"address {first.socket} is in use by another daemon (pid {first.proc.pid}" in out.stderr
    assert len(out.stderr.splitlines()) == 1
    assert not second.data_root.exists() and first._answers()


def test_a_non_loopback_tcp_address_is_refused(engines):
    engine = engines("engine", "-H", "tcp://0.0.0.0:2375")
    out = engine.run()
    assert out.returncode == 1
    assert out.stderr.startswith("engine-py: failed to load listeners: API is accessible on http://0.0.0.0:2375 "
                                 "without encryption.")
    assert len(out.stderr.splitlines()) == 1
    assert not engine.socket.exists() and not engine.data_root.exists() and not engine.exec_root.exists()


def test_a_loopback_tcp_address_is_served(engines):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    engine = engines("engine", "-H", f"tcp://127.0.0.1:{port}").start()
    out = subprocess.run([*engine.argv[:2], CLIS[0], "-H", f"tcp://127.0.0.1:{port}", "version", "--format",
                          "{{.Server.APIVersion}}"],
                         capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert out.stdout.strip() == "1.41", out.stderr


def test_the_socket_belongs_to_the_group_given(engines):
    engine = engines("engine", "--group", "nogroup").start()
    st = engine.socket.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (0, grp.getgrnam("nogroup").gr_gid, 0o660)


def test_a_missing_group_given_is_refused(engines):
    engine = engines("engine", "--group", "no-such-group-here")
    out = engine.run()
    assert out.returncode == 1
    assert out.stderr == "engine-py: can't create unix socket: group no-such-group-here not found\n"
    assert not engine.data_root.exists() and not engine.exec_root.exists()


def test_an_unknown_daemon_json_key_is_refused(engines):
    engine = engines("engine", config={"storage-driver": "overlay2"})
    out = engine.run()
    assert out.returncode == 1
    assert out.stderr == (f"engine-py: unable to configure the Docker daemon with file {engine.workdir}/daemon.json: "
                          "the following directives don't match any configuration option: storage-driver\n")
    assert not engine.data_root.exists()


def test_non_root_is_told_in_one_line(engines, tmp_path):
    tmp_path.chmod(0o755)
    engine = engines()
    out = engine.run(prefix=("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"))
    assert out.returncode == 1
    assert out.stderr == "engine-py: engine-py needs to be started with root privileges\n"
    assert not engine.data_root.exists()


def containerd_pid(engine) -> int:
    return int((engine.exec_root / "containerd" / "containerd.pid").read_text())


def ctr_version(engine) -> str:
    out = subprocess.run(["ctr", "--address", str(engine.exec_root / "containerd" / "containerd.sock"), "version"],
                         capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    return out.stdout


def running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(condition, what: str):
    deadline = time.monotonic() + START_DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.05)


def test_the_engine_runs_restarts_and_stops_its_own_containerd(engines):
    engine = engines().start()
    first = containerd_pid(engine)
    assert "containerd-py" in ctr_version(engine)
    root = engine.data_root / "containerd"
    assert root.is_dir() and str(root) in (Path("/proc") / str(first) / "cmdline").read_text()
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: containerd_pid(engine) != first and "containerd-py" in ctr_version(engine),
             "containerd-py started again")
    second = containerd_pid(engine)
    assert "containerd-py exited; restarting it" in (engine.workdir / "engine.log").read_text()
    assert engine.stop() == 0
    assert not running(second) and not (engine.exec_root / "containerd" / "containerd.pid").exists()


def test_a_restarted_engine_adopts_its_containerd(engines):
    engine = engines().start()
    pid = containerd_pid(engine)
    engine.proc.kill()
    engine.proc.wait()
    assert running(pid)  # a kill -9 of the engine leaves its containerd-py (and so the containers) running
    engine.log.close()
    again = engines().start()
    assert containerd_pid(again) == pid
    assert "containerd-py is already running" in (again.workdir / "engine.log").read_text()
    assert again.stop() == 0
    assert not running(pid)


def test_with_containerd_given_none_is_started(engines, containerd_py):
    namespace = f"engine-test-{uuid.uuid4().hex[:8]}"
    engine = engines("engine", "--containerd", containerd_py.address, "--containerd-namespace", namespace).start()
    assert not (engine.exec_root / "containerd").exists()
    out = engine.docker(CLIS[0], "version", "--format", "{{range .Server.Components}}{{.Name}}={{.Version}} {{end}}")
    assert out.stdout.split()[1].startswith("containerd=1.6.0+containerd-py")


def test_an_unreachable_containerd_is_refused_naming_it(engines):
    refused = engines("engine", "--containerd", "/run/some/containerd.sock").run()
    assert refused.returncode == 1
    assert "engine-py: failed to connect to containerd at /run/some/containerd.sock" in refused.stderr
