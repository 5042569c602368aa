"""containerd-py killed -9 and started again under the engine: the service
subscribes to its events again and records what happened meanwhile."""
import os
import shutil
import signal
import tempfile

import pytest

from containers_helpers import TRAPPING, busybox, daemons, engine_on, eventually, wait_for_output  # noqa: F401
from leaks import kill_processes_mentioning, mounts_under

pytestmark = pytest.mark.root


@pytest.fixture
def restartable_daemon():
    """A containerd-py of the test's own, and how to kill -9 it and start it again on the same dirs."""
    workdir = tempfile.mkdtemp(prefix="engine-containerd-py-")
    argv = daemons.our_daemon_argv(workdir)
    procs = [daemons.Process(argv, workdir, f"{workdir}/containerd.sock")]
    procs[0].wait_ready()

    def kill():
        os.kill(procs[-1].proc.pid, signal.SIGKILL)
        procs[-1].stop()

    def start():
        procs.append(daemons.Process(argv, workdir, procs[0].address))
        procs[-1].wait_ready()

    try:
        yield procs[0].address, kill, start
    finally:
        for proc in procs:
            proc.stop()
        left = kill_processes_mentioning(workdir)
        for point in reversed(mounts_under(workdir)):
            os.system(f"umount -l {point}")
        shutil.rmtree(workdir, ignore_errors=True)
        assert not left, f"processes left behind: {left}"


def test_an_exit_while_containerd_is_down_is_recorded_once_it_is_back(restartable_daemon, busybox, tmp_path):
    address, kill_containerd, start_containerd = restartable_daemon
    with engine_on(address, tmp_path / "data", busybox) as engine:
        service = engine.service
        record = service.create({"Image": "busybox", "Cmd": TRAPPING}, {}, "survivor")
        service.start("survivor")
        wait_for_output(engine, record, "ready")
        kill_containerd()
        os.kill(record.state.pid, signal.SIGUSR1)
        eventually(lambda: not os.path.exists(f"/proc/{record.state.pid}"))  # exited, containerd down
        assert record.state.running
        start_containerd()
        assert service.wait("survivor") == {"StatusCode": 7, "Error": None}
        assert engine.client.tasks.list() == []
