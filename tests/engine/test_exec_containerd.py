"""The exec service over real containerd (Debian's) with runc: its shim opens
and copies the FIFOs in its own way, and the service works with it as with
containerd-py's."""
import pytest

from containers_helpers import busybox, engine_on, eventually, real_containerd  # noqa: F401 (fixtures)
from engine.containerd.exec import ContainerdExecs
from engine.services.exec import ExecService
from test_exec_service import Client, run_exec

pytestmark = pytest.mark.root


@pytest.fixture
def engine(real_containerd, busybox, tmp_path):
    with engine_on(real_containerd.address, tmp_path / "data", busybox) as made:
        yield made


def test_exec_over_containerd_with_runc(engine, tmp_path):
    execs = ExecService(engine.service, ContainerdExecs(engine.client), str(tmp_path / "exec-fifos"))
    record = engine.service.create({"Image": "busybox", "Cmd": ["sleep", "1000"]}, {"Runtime": "runc"})
    engine.service.start(record.id)

    exec_id, client = run_exec(execs, record, ["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (bytes(client.out), bytes(client.err), execs.inspect(exec_id)["ExitCode"]) == (b"out\n", b"err\n", 3)

    fed = Client(b"piped\n")
    fed.end_input()
    exec_id, _ = run_exec(execs, record, ["cat"], fed, AttachStdin=True)
    assert (bytes(fed.out), execs.inspect(exec_id)["ExitCode"]) == (b"piped\n", 0)

    exec_id, client = run_exec(execs, record, ["sh", "-c", "tty; id -u"], Tty=True, User="nobody")
    assert client.out.startswith(b"/dev/pts/") and client.out.endswith(b"\r\n65534\r\n")

    exec_id = execs.create(record.id, {"Cmd": ["sh", "-c", "exit 5"]})
    execs.start(exec_id)
    eventually(lambda: execs.inspect(exec_id)["ExitCode"] == 5)
    assert execs.ids_of(record.id) == []
    engine.service.remove(record.id, force=True)
    eventually(lambda: not list((tmp_path / "exec-fifos").glob("*")))
