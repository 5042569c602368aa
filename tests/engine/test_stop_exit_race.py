"""A stop, kill or rm -f that meets a container whose process has just
ended (containerd: NotFound "process already finished", its exit not yet
recorded): as dockerd's killWithSignal, the signal counts as sent and the
exit on its way is waited for, so a stop returns with the container stopped
(and compose's `restart` of an on-failure container just ending starts it
again), a kill is no 409 and rm -f removes."""
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


@pytest.mark.parametrize("action", ["stop", "kill", "rm -f"])
def test_a_signal_racing_the_exit(engine, action):  # noqa: F811
    service = engine.service
    record = service.create({"Image": "busybox", "Cmd": ["sleep", "1000"]}, {}, "racing-" + action.replace(" ", ""))
    service.start(record.id)
    exit_before_the_signal(service)
    if action == "rm -f":
        service.remove(record.id, force=True)   # not "You cannot remove a running container"
        assert service.store.find_exact(record.id) is None
        return
    if action == "stop":
        service.stop(record.id, 0)
    else:
        service.kill(record.id)   # no 409
    assert not record.state.running and record.state.exit_code == 137
    service.remove(record.id, force=True)
