"""Our daemon's gRPC server short of resources, asked by containerd's own
`ctr version`: out of file descriptors at accept, unable to start a thread,
holding hundreds of idle connections; and what it logs of failed calls.
Needs root (another process's rlimit, a pids cgroup)."""
import os
import resource
import socket
import time
import uuid
from contextlib import contextmanager

import pytest

from conftest import START_DEADLINE, Ctr, our_daemon_argv, running

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
EMPTY_SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # length 0, type SETTINGS, no flags, stream 0
PING = b"\x00\x00\x08\x06\x00\x00\x00\x00\x00" + b"12345678"   # its ACK: type 6, flag 1


@pytest.fixture
def own_daemon():
    """A daemon of this test alone: its limits and its log are the test's."""
    with running(our_daemon_argv, "containerd-py") as proc:
        yield proc


def answers_version(daemon) -> None:
    result = Ctr(daemon.address, "default")("version", check=False)
    assert result.returncode == 0, f"ctr version failed: {result.stderr}\n{daemon.log()}"
    assert "containerd-py" in result.stdout


def wait_for_log(daemon, text: str) -> None:
    deadline = time.monotonic() + START_DEADLINE
    while text not in daemon.log():
        assert time.monotonic() < deadline, f"the daemon never logged {text!r}:\n{daemon.log()}"
        time.sleep(0.05)


def threads_of(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def says_hello(s: socket.socket) -> bool:
    """Whether the server, told hello in HTTP/2, answers with its SETTINGS
    (rather than closing the connection)."""
    s.settimeout(START_DEADLINE)
    try:
        s.sendall(H2_PREFACE + EMPTY_SETTINGS)
        read_frame(s)
        return True
    except (BrokenPipeError, ConnectionResetError, EOFError):  # closed with our hello unread
        return False


def read_frame(s: socket.socket) -> bytes:
    """One whole HTTP/2 frame's header (a recv may return part of one under load)."""
    header = _exactly(s, 9)
    _exactly(s, int.from_bytes(header[:3], "big"))
    return header


def _exactly(s: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = s.recv(size - len(data))
        if not chunk:
            raise EOFError("the server closed the connection")
        data += chunk
    return data


def h2_connect(path: str) -> socket.socket:
    """A connection the server has surely accepted (it said hello); then it sits idle."""
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)  # blocking: waits while the listen backlog is full
    if not says_hello(s):
        raise AssertionError("the server closed a new connection")
    return s


def test_ctr_version_answers_after_the_daemon_ran_out_of_fds(own_daemon):
    """EMFILE at accept is logged and retried; it used to end the accept thread
    for good, and every client hung."""
    pid = own_daemon.proc.pid
    soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    clients = []
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (len(os.listdir(f"/proc/{pid}/fd")) + 8, hard))
    try:
        for _ in range(40):  # the rest wait in the listen backlog
            clients.append(socket.socket(socket.AF_UNIX))
            clients[-1].connect(own_daemon.address)
        wait_for_log(own_daemon, "Too many open files; retrying with back-off")
    finally:
        for s in clients:
            s.close()
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
    answers_version(own_daemon)
    log = own_daemon.log()
    assert f"cannot accept a connection on {own_daemon.address}: [Errno 24] Too many open files" in log
    assert f"accepting connections on {own_daemon.address} again, after" in log


@contextmanager
def pids_limited(pid: int):
    """The process in a new pids cgroup whose limit is the threads it has now;
    moved back and the cgroup removed after."""
    v1 = os.path.isdir("/sys/fs/cgroup/pids")
    root = "/sys/fs/cgroup/pids" if v1 else "/sys/fs/cgroup"
    with open(f"/proc/{pid}/cgroup") as f:
        fields = [line.rstrip("\n").split(":", 2) for line in f]
    home = next(path for _, controllers, path in fields if ("pids" in controllers.split(",") if v1 else not controllers))
    cgroup = f"{root}/test-pids-{uuid.uuid4().hex[:12]}"
    os.mkdir(cgroup)
    try:
        with open(f"{cgroup}/cgroup.procs", "w") as f:
            f.write(str(pid))
        try:
            with open(f"{cgroup}/pids.max", "w") as f:
                f.write(str(threads_of(pid)))
            yield
        finally:
            with open(f"{root}{home}/cgroup.procs", "w") as f:
                f.write(str(pid))
    finally:
        os.rmdir(cgroup)


def test_ctr_version_answers_while_the_daemon_cannot_start_a_thread(own_daemon):
    """A thread per connection that could not start used to end the accept thread."""
    with pids_limited(own_daemon.proc.pid):
        answers_version(own_daemon)
        answers_version(own_daemon)


def test_idle_connections_cost_no_thread(own_daemon):
    pid = own_daemon.proc.pid
    threads = threads_of(pid)
    clients = []
    try:
        for _ in range(500):
            clients.append(h2_connect(own_daemon.address))
        assert threads_of(pid) == threads
        answers_version(own_daemon)
    finally:
        for s in clients:
            s.close()


def test_connections_over_the_limit_are_closed_at_once_and_the_others_go_on():
    """Under a limit of 256 fds the daemon takes three quarters of them in
    connections; 300 clients used to exhaust the fds and end the accept thread."""
    with running(lambda workdir: ["prlimit", "--nofile=256:", "--", *our_daemon_argv(workdir)], "containerd-py") as d:
        clients, refused = [], 0
        try:
            for _ in range(300):
                clients.append(socket.socket(socket.AF_UNIX))
                clients[-1].connect(d.address)  # blocking: waits while the listen backlog is full
            for s in clients:
                if not says_hello(s):
                    refused += 1
                else:  # still served: a PING is answered
                    s.sendall(PING)
                    while not read_frame(s).startswith(b"\x00\x00\x08\x06\x01"):  # until the PING's ack
                        pass
            assert 300 - 256 * 3 // 4 <= refused < 300
        finally:
            for s in clients:
                s.close()
        answers_version(d)
        assert f"grpc: a connection over the limit of {256 * 3 // 4} closed" in d.log()


def test_a_failed_call_is_logged_once_at_info_and_a_good_one_not_at_all(own_daemon):
    """...nor a NOT_FOUND, which containerd's client asks for on every `ctr run --rm`."""
    ns = f"test-{uuid.uuid4().hex[:12]}"
    ctr = Ctr(own_daemon.address, ns)
    ctr("leases", "create", "--id", "keeps-it")
    assert ctr("namespaces", "rm", ns, check=False).returncode != 0
    assert ctr("tasks", "start", "no-such-container", check=False).returncode != 0
    answers_version(own_daemon)
    lines = [line.split(" ", 1)[1] for line in own_daemon.log().splitlines() if "/containerd.services." in line]
    assert lines == ['level=info msg="/containerd.services.namespaces.v1.Namespaces/Delete: FAILED_PRECONDITION: '
                     f'namespace \\"{ns}\\" must be empty, but it still has leases: failed precondition"']
