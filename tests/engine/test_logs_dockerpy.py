"""docker-py 7's logs and attach at engine-py: `containers.run` in the
foreground (its logs), `logs` with stream/follow/timestamps/tail, a socket
from `attach_socket` with stdin, as they work against dockerd."""
import docker
import pytest

pytestmark = pytest.mark.root


@pytest.fixture
def client(dockerpy):
    return dockerpy


def test_run_in_the_foreground_returns_the_output(client):
    assert client.containers.run("busybox", ["sh", "-c", "echo out; echo err >&2"], remove=True) == b"out\n"
    assert client.containers.run("busybox", ["sh", "-c", "echo err >&2"], remove=True, stdout=False,
                                 stderr=True) == b"err\n"
    with pytest.raises(docker.errors.ContainerError) as failed:
        client.containers.run("busybox", ["sh", "-c", "echo bad >&2; exit 3"], remove=True)
    assert failed.value.exit_status == 3 and failed.value.stderr == b"bad\n"


def test_logs_stream_follow_tail_timestamps(client):
    container = client.containers.run("busybox", ["sh", "-c", "echo a; echo b; sleep 1; echo c"], detach=True)
    try:
        assert b"".join(container.logs(stream=True, follow=True)) == b"a\nb\nc\n"
        assert container.logs(tail=1) == b"c\n"
        stamped = container.logs(timestamps=True).splitlines()
        assert [line.split(b" ", 1)[1] for line in stamped] == [b"a", b"b", b"c"]
        assert container.logs(stdout=False) == b""
    finally:
        container.remove(force=True)


def test_attach_socket_with_stdin(client):
    container = client.containers.create("busybox", ["cat"], stdin_open=True)
    try:
        sock = container.attach_socket(params={"stdin": 1, "stdout": 1, "stream": 1})
        container.start()
        sock._sock.sendall(b"hello\n")
        received = b""
        while b"hello\n" not in received:
            received += sock._sock.recv(4096)
        assert received == b"\x01\x00\x00\x00\x00\x00\x00\x06hello\n"  # one stdout frame
        sock._sock.close()
        container.kill()
    finally:
        container.remove(force=True)
