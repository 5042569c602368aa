"""A stop, kill or rm -f that meets a container whose process has just ended
(containerd: NotFound "process already finished", its exit not yet
recorded): as dockerd's killWithSignal, the exit on its way is waited for,
so the stop returns with the container stopped and `restart` (compose's
restart of an on-failure container just ending) starts it again."""
import signal

import pytest

from containers_helpers import busybox, containerd_py, engine  # noqa: F401 (fixtures)
from engine.errors import NotFound

pytestmark = pytest.mark.root


def exit_before_the_signal(service):
    """tasks.kill ends the process and then says it had finished: the race
    with the exit, made certain (the exit is recorded under the container's
    lock, which the signalling holds)."""
    kill = service.tasks.kill

    def racing(container_id, number):
        kill(container_id, signal.SIGKILL)
        raise NotFound("process already finished")

    service.tasks.kill = racing


def test_a_stop_racing_the_exit_returns_with_the_container_stopped(engine):  # noqa: F811
    service = engine.service
    record = service.create({"Image": "busybox", "Cmd": ["sleep", "1000"]}, {}, "racing-stop")
    service.start(record.id)
    exit_before_the_signal(service)
    service.stop(record.id, 0)
    assert not record.state.running and record.state.exit_code == 137
    service.remove(record.id, force=True)


def test_a_kill_racing_the_exit_is_no_conflict(engine):  # noqa: F811
    service = engine.service
    record = service.create({"Image": "busybox", "Cmd": ["sleep", "1000"]}, {}, "racing-kill")
    service.start(record.id)
    exit_before_the_signal(service)
    service.kill(record.id)   # dockerd: the process had finished, the exit is on its way: no 409
    assert not record.state.running and record.state.exit_code == 137
    service.remove(record.id, force=True)


def test_a_forced_removal_racing_the_exit_removes(engine):  # noqa: F811
    service = engine.service
    record = service.create({"Image": "busybox", "Cmd": ["sleep", "1000"]}, {}, "racing-rm")
    service.start(record.id)
    exit_before_the_signal(service)
    service.remove(record.id, force=True)   # not "You cannot remove a running container"
    assert service.store.find_exact(record.id) is None
