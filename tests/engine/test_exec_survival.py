"""containerd-py killed -9 and started again while an exec is attached: the
exec's stdio never passes through containerd, so it goes on, and the exit
that happened meanwhile reaches the exec once containerd is back."""
import threading

import pytest

from containers_helpers import busybox, eventually  # noqa: F401 (fixtures)
from containers_helpers import engine_on
from engine.containerd.exec import ContainerdExecs
from engine.services.exec import ExecService
from test_containers_survival import restartable_daemon  # noqa: F401 (fixture)
from test_exec_service import Client

pytestmark = pytest.mark.root


def test_an_exec_outlives_a_containerd_restart(restartable_daemon, busybox, tmp_path):
    address, kill_containerd, start_containerd = restartable_daemon
    with engine_on(address, tmp_path / "data", busybox) as engine:
        execs = ExecService(engine.service, ContainerdExecs(engine.client), str(tmp_path / "exec-fifos"))
        record = engine.service.create({"Image": "busybox", "Cmd": ["sleep", "1000"]}, {})
        engine.service.start(record.id)
        client = Client()
        exec_id = execs.create(record.id, {"AttachStdin": True, "AttachStdout": True,
                                           "Cmd": ["sh", "-c", "echo ready; read x; echo got $x; exit 4"]})
        attached = threading.Thread(target=execs.start, args=(exec_id, client.attached()))
        attached.start()
        eventually(lambda: bytes(client.out) == b"ready\n")
        kill_containerd()
        client.input.put(b"input\n")
        eventually(lambda: bytes(client.out) == b"ready\ngot input\n")  # relayed with containerd down
        start_containerd()
        attached.join()
        assert (execs.inspect(exec_id)["Running"], execs.inspect(exec_id)["ExitCode"]) == (False, 4)
        client.end_input()
