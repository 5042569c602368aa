"""The protocol-agnostic listener (containerd_py.rpc.listener) with a line
protocol of the test's own, as the engine's HTTP/1.1 server will use it:
accept errors and setup failures retried and logged once, the connection
limit, no thread per connection, a slow reader, paused reading. No root."""
import errno
import logging
import socket
import threading

import pytest

from containerd_py.rpc import listener as listener_mod
from containerd_py.rpc.listener import Listener, Trouble

TIMEOUT = 30  # seconds; only guards against a hang


class Lines:
    """Answers each line with the line upper-cased; `big N` has a worker
    thread send N bytes, waiting for the transport to drain as it goes."""

    def __init__(self, transport):
        self.transport, self.pending = transport, b""
        self.drained = threading.Condition()
        self.received = 0

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        self.pending += data
        while b"\n" in self.pending:
            line, self.pending = self.pending.split(b"\n", 1)
            if line.startswith(b"big "):
                threading.Thread(target=self._send_big, args=(int(line[4:]),)).start()
            else:
                self.transport.write(line.upper() + b"\n")

    def _send_big(self, size: int) -> None:
        chunk = b"x" * 65536
        for _ in range(size // len(chunk)):
            with self.drained:
                while self.transport.buffered > len(chunk) and not self.transport.closed:
                    self.drained.wait()
            self.transport.write(chunk)

    def eof_received(self) -> None:
        self.transport.close()

    def writable(self) -> None:
        with self.drained:
            self.drained.notify_all()

    def connection_lost(self) -> None:
        with self.drained:
            self.drained.notify_all()


class FlakyListeningSocket(socket.socket):
    """accept() fails with `error` the first `failures` times."""
    failures, error = 0, errno.EMFILE

    def accept(self):
        if self.failures:
            self.failures -= 1
            raise OSError(self.error, "fake " + errno.errorcode[self.error])
        return super().accept()


@pytest.fixture
def serve(tmp_path):
    """serve(**kwargs) -> (listener, path): a started Listener of Lines on a unix socket."""
    made = []

    def make(sock_class=socket.socket, make_handler=Lines, **kwargs):
        path = str(tmp_path / f"l{len(made)}.sock")
        sock = sock_class(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(path)
        sock.listen(128)
        listener = Listener(make_handler, name="test", **kwargs)
        listener.add(sock)
        listener.start()
        made.append(listener)
        return listener, sock, path

    yield make
    for listener in made:
        listener.stop_accepting()
        listener.close()


def connect(path: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)  # blocking: waits while the listen backlog is full
    s.settimeout(TIMEOUT)
    return s


def ask(s: socket.socket, line: bytes) -> bytes:
    s.sendall(line + b"\n")
    answer = b""
    while not answer.endswith(b"\n"):
        got = s.recv(100)
        if not got:
            break
        answer += got
    return answer


def test_accept_errors_are_retried_and_logged_once(serve, caplog):
    caplog.set_level(logging.INFO, logger=listener_mod.__name__)
    _, sock, path = serve(sock_class=FlakyListeningSocket)
    sock.failures = 5
    with connect(path) as s:
        assert ask(s, b"hello") == b"HELLO\n"
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [f"test: cannot accept a connection on {path}: [Errno 24] fake EMFILE; retrying with back-off",
                        f"test: accepting connections on {path} again, after 5 failures"]


def test_a_connection_whose_setup_fails_is_dropped_and_the_next_is_served(serve, caplog):
    caplog.set_level(logging.INFO, logger=listener_mod.__name__)
    failures = [MemoryError("no memory for this one")]

    def make_handler(transport):
        if failures:
            raise failures.pop()
        return Lines(transport)

    _, _, path = serve(make_handler=make_handler)
    with connect(path) as first:
        assert first.recv(100) == b""  # closed at once
    with connect(path) as second:
        assert ask(second, b"next") == b"NEXT\n"
    assert "cannot accept a connection on" in caplog.records[0].getMessage()
    assert "no memory for this one" in caplog.records[0].getMessage()


def test_a_connection_over_the_limit_is_closed_at_once_and_the_others_go_on(serve, caplog):
    caplog.set_level(logging.INFO, logger=listener_mod.__name__)
    _, _, path = serve(max_connections=2)
    one, two = connect(path), connect(path)
    try:
        assert ask(one, b"a") == b"A\n" and ask(two, b"b") == b"B\n"
        with connect(path) as three:
            assert three.recv(100) == b""
        assert ask(one, b"still") == b"STILL\n"
        two.close()
        assert ask(one, b"x") == b"X\n"  # two's end reached the server before this line: it is gone now
        with connect(path) as four:
            assert ask(four, b"in") == b"IN\n"
    finally:
        one.close()
        two.close()
    assert [r.getMessage() for r in caplog.records] == [
        "test: a connection over the limit of 2 closed (2 open)",
        "test: taking connections again, after 1 closed over the limit"]


def test_connections_cost_no_thread(serve):
    _, _, path = serve()
    threads = threading.active_count()
    clients = [connect(path) for _ in range(200)]
    try:
        assert [ask(s, b"hi") for s in clients] == [b"HI\n"] * 200
        assert threading.active_count() == threads
    finally:
        for s in clients:
            s.close()


def test_a_peer_that_does_not_read_holds_back_its_writer_not_the_others(serve):
    """8 MiB to a peer that reads nothing yet: the writer waits for writable(),
    the transport holds little, another connection is served meanwhile, and
    everything arrives in the end."""
    listener, _, path = serve()
    size = 8 << 20
    with connect(path) as slow, connect(path) as other:
        slow.sendall(b"big %d\n" % size)
        assert ask(other, b"meanwhile") == b"MEANWHILE\n"
        transport = next(t for t in listener.connections if t.handler.received == len(b"big %d\n" % size))
        assert transport.buffered <= 2 * 65536
        got = 0
        while got < size:
            got += len(slow.recv(1 << 20))
        assert got == size


def test_paused_reading_holds_the_peer_back_until_resumed(serve):
    listener, _, path = serve()
    with connect(path) as s:
        assert ask(s, b"first") == b"FIRST\n"
        transport = next(iter(listener.connections))
        transport.pause_reading()
        s.setblocking(False)
        sent = 0
        with pytest.raises(BlockingIOError):  # the socket buffers fill up: the server has stopped reading
            while sent < (256 << 20):
                sent += s.send(b"y" * 65536)
        transport.resume_reading()
        s.setblocking(True)
        s.sendall(b"\nlast\n")
        answer = b""
        while not answer.endswith(b"LAST\n"):
            answer += s.recv(1 << 20)
        assert answer.endswith(b"\nLAST\n")
        assert transport.handler.received == len(b"first\n") + sent + len(b"\nlast\n")


def test_a_run_of_failures_is_logged_at_its_start_then_at_most_once_a_minute(caplog):
    caplog.set_level(logging.INFO, logger=listener_mod.__name__)
    now = [1000.0]
    trouble = Trouble("it failed: {error}", "it works, after {count} failures", clock=lambda: now[0])
    for _ in range(100):
        trouble.failed(OSError("bad"))
        now[0] += 1
    trouble.ended()
    assert [r.getMessage() for r in caplog.records] == [
        "it failed: bad", "it failed: bad (60 times since the last report)", "it works, after 100 failures"]


def test_a_failure_of_the_loop_itself_is_logged_and_the_loop_goes_on(serve, caplog):
    caplog.set_level(logging.INFO, logger=listener_mod.__name__)
    listener, _, path = serve()

    def bug():
        raise KeyError("a bug")

    listener.call_soon(bug)
    with connect(path) as s:
        assert ask(s, b"alive") == b"ALIVE\n"
    assert [r.getMessage() for r in caplog.records] == [
        "test: the connection loop failed: 'a bug'; retrying",
        "test: the connection loop works again, after 1 failures"]
