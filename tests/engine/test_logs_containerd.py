"""The log sink over real containerd (Debian's) with runc: its shim runs
engine-py-logger from the `binary://` URI, for plain output and for a TTY's
console, and the stdin FIFO reaches the container."""
import threading

import pytest

from containers_helpers import busybox, real_containerd  # noqa: F401 (fixtures)
from logs_fixtures import logged_engine
from engine.services.logs import AttachRequest

pytestmark = pytest.mark.root
RUNC = {"Runtime": "runc"}


@pytest.fixture
def logged(real_containerd, busybox, tmp_path):
    with logged_engine(real_containerd.address, busybox, tmp_path) as made:
        yield made


def test_output_reaches_the_json_file_log_and_attach(logged):
    record = logged.service.create({"Image": "busybox", "Cmd": ["sh", "-c", "echo out; echo err >&2"]}, RUNC)
    attachment = logged.logs.attach(record.id, AttachRequest(stdout=True, stderr=True, stream=True),
                                    threading.Event())
    logged.service.start(record.id)
    assert sorted((e.stream, e.line) for e in attachment.output()) == [("stderr", b"err\n"), ("stdout", b"out\n")]
    assert sorted(logged.lines(record.id)) == [("stderr", b"err\n"), ("stdout", b"out\n")]


def test_a_tty_console_goes_to_the_log_and_its_stdin_comes_from_the_fifo(logged):
    record = logged.run(["sh", "-c", "read x; echo got $x"], host_config=RUNC, OpenStdin=True, Tty=True)
    logged.sink.write_stdin(record.id, b"it\n")
    assert logged.service.wait(record.id)["StatusCode"] == 0
    assert b"got it" in b"".join(line for _, line in logged.lines(record.id))


def test_stdin_without_a_tty_reaches_the_container(logged):
    record = logged.run(["sh", "-c", "read x; echo got $x"], host_config=RUNC, OpenStdin=True)
    logged.sink.write_stdin(record.id, b"it\n")
    assert logged.service.wait(record.id)["StatusCode"] == 0
    assert logged.lines(record.id) == [("stdout", b"got it\n")]
