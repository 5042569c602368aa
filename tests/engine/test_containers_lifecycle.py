"""The container service over a private containerd-py: create, start, wait,
stop, kill, remove, as dockerd does them."""
import pytest

from containers_helpers import busybox, containerd_py, engine  # noqa: F401 (fixtures)
from engine.errors import Conflict, NotModified

pytestmark = pytest.mark.root


def _output(engine, record) -> str:
    with open(engine.service.store.container_dir(record.id) + "/stdout.log") as f:
        return f.read()


def test_echo_runs_and_its_exit_code_is_recorded(engine):
    service = engine.service
    record = service.create({"Image": "busybox", "Cmd": ["sh", "-c", "echo hi; exit 3"]}, {}, "echoer")
    assert (record.name, record.path, record.args) == ("/echoer", "sh", ["-c", "echo hi; exit 3"])
    assert record.state.status == "created"
    service.start("echoer")
    assert service.wait("echoer") == {"StatusCode": 3, "Error": None}
    assert record.state.status == "exited" and record.state.exit_code == 3
    assert _output(engine, record) == "hi\n"
    with pytest.raises(NotModified):
        service.stop("echoer")
