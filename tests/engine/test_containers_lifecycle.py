"""The container service over a private containerd-py: create, start, wait,
stop, kill, remove, as dockerd does them."""
import pytest

from containers_helpers import TRAPPING, busybox, containerd_py, engine  # noqa: F401 (fixtures)
from containers_helpers import eventually, output, wait_for_output
from engine.errors import Conflict, NotModified

pytestmark = pytest.mark.root


def test_echo_runs_and_its_exit_code_is_recorded(engine):
    service = engine.service
    record = service.create({"Image": "busybox", "Cmd": ["sh", "-c", "echo hi; exit 3"]}, {}, "echoer")
    assert (record.name, record.path, record.args) == ("/echoer", "sh", ["-c", "echo hi; exit 3"])
    assert record.state.status == "created"
    service.start("echoer")
    assert service.wait("echoer") == {"StatusCode": 3, "Error": None}
    assert record.state.status == "exited" and record.state.exit_code == 3
    assert output(engine, record) == "hi\n"
    with pytest.raises(NotModified):
        service.stop("echoer")


def _running(service, cmd, name=None, **host_config):
    record = service.create({"Image": "busybox", "Cmd": cmd}, host_config, name)
    service.start(record.id)
    return record


def test_stop_sends_the_stop_signal_which_the_container_handles(engine):
    service = engine.service
    record = service.create({"Image": "busybox", "Cmd": TRAPPING, "StopSignal": "SIGUSR1"}, {})
    service.start(record.id)
    wait_for_output(engine, record, "ready")
    service.stop(record.id, timeout=-1)
    assert (record.state.status, record.state.exit_code) == ("exited", 7)
    assert output(engine, record) == "ready\ngot USR1\n"
    assert record.has_been_manually_stopped


def test_stop_kills_after_the_timeout_when_the_stop_signal_is_ignored(engine):
    service = engine.service
    record = service.create({"Image": "busybox", "StopSignal": "USR1",
                             "Cmd": ["sh", "-c", "trap '' USR1; echo ready; while :; do sleep 0.1; done"]}, {})
    service.start(record.id)
    wait_for_output(engine, record, "ready")
    service.stop(record.id, timeout=0)
    assert (record.state.status, record.state.exit_code) == ("exited", 137)


@pytest.mark.parametrize("sig", ["USR1", "SIGUSR1", "sigusr1", "10", 10])
def test_kill_takes_signal_names_and_numbers(engine, sig):
    service = engine.service
    record = _running(service, TRAPPING)
    wait_for_output(engine, record, "ready")
    service.kill(record.id, sig)
    assert service.wait(record.id) == {"StatusCode": 7, "Error": None}


def test_kill_of_a_stopped_container_and_a_bad_signal_are_refused(engine):
    from engine.errors import InvalidParameter
    service = engine.service
    record = service.create({"Image": "busybox", "Cmd": ["true"]}, {}, "quiet")
    with pytest.raises(Conflict, match=f"^Cannot kill container: quiet: Container {record.id} is not running$"):
        service.kill("quiet")
    with pytest.raises(InvalidParameter, match="^Invalid signal: SIGNOPE$"):
        service.kill("quiet", "SIGNOPE")


def test_rm_of_a_running_container_needs_force(engine):
    service = engine.service
    record = _running(service, ["sleep", "1000"], "sleeper")
    with pytest.raises(Conflict, match=f"^You cannot remove a running container {record.id}. Stop the container "
                                       "before attempting removal or force remove$"):
        service.remove("sleeper")
    assert record.state.running
    service.remove("sleeper", force=True)
    assert service.store.find_exact(record.id) is None
    assert engine.client.containers.list([]) == []
    assert engine.client.snapshots("overlayfs").walk([f"name=={record.id}"]) == []


def test_auto_remove_removes_the_container_once_it_exits(engine):
    service = engine.service
    record = service.create({"Image": "busybox", "Cmd": ["true"]}, {"AutoRemove": True}, "brief")
    service.start("brief")
    eventually(lambda: service.store.find_exact(record.id) is None)
    assert engine.client.containers.list([]) == []
    assert engine.client.snapshots("overlayfs").walk([f"name=={record.id}"]) == []


def test_wait_for_the_next_exit_and_for_removal(engine):
    import threading
    service = engine.service
    record = _running(service, TRAPPING, "waited")
    wait_for_output(engine, record, "ready")
    results = {}
    waiters = [threading.Thread(target=lambda c=c: results.setdefault(c, service.wait("waited", c)))
               for c in ("next-exit", "removed")]
    for waiter in waiters:
        waiter.start()
    service.kill("waited", "USR1")
    waiters[0].join()
    assert results == {"next-exit": {"StatusCode": 7, "Error": None}}
    service.remove("waited")
    waiters[1].join()
    assert results["removed"] == {"StatusCode": 7, "Error": None}


def test_restart_pause_and_unpause(engine):
    service = engine.service
    record = service.create({"Image": "busybox", "Cmd": TRAPPING, "StopSignal": "USR1"}, {})
    service.start(record.id)
    wait_for_output(engine, record, "ready")
    first_pid = record.state.pid
    service.pause(record.id)
    assert record.state.status == "paused"
    with pytest.raises(Conflict, match="is already paused"):
        service.pause(record.id)
    service.unpause(record.id)
    assert record.state.status == "running"
    service.pause(record.id)
    service.stop(record.id, timeout=-1)  # resumed to take its stop signal, as in dockerd
    assert (record.state.status, record.state.exit_code) == ("exited", 7)
    service.restart(record.id, timeout=0)
    assert record.state.status == "running" and record.state.pid != first_pid
    with pytest.raises(NotModified):
        service.start(record.id)


def test_an_oom_kill_is_recorded(engine):
    service = engine.service
    record = service.create({"Image": "busybox", "Cmd": ["tail", "/dev/zero"]},  # a line without end
                            {"Memory": 16 << 20, "MemorySwap": 16 << 20})
    service.start(record.id)
    assert service.wait(record.id)["StatusCode"] == 137
    assert record.state.oom_killed


@pytest.mark.parametrize("runtime", ["runpy-oci", "runc"])  # crun refuses this host's hybrid cgroups
def test_each_installed_runtime_runs_a_container(engine, runtime):
    service = engine.service
    record = service.create({"Image": "busybox", "Cmd": ["sh", "-c", "echo hi; exit 5"]}, {"Runtime": runtime})
    service.start(record.id)
    assert service.wait(record.id) == {"StatusCode": 5, "Error": None}
    assert (output(engine, record), record.host_config["Runtime"]) == ("hi\n", runtime)


def test_a_start_that_cannot_run_the_command_records_127_and_leaves_no_task(engine):
    from engine.errors import System
    service = engine.service
    record = service.create({"Image": "busybox", "Cmd": ["/no/such/command"]}, {})
    with pytest.raises(System) as err:
        service.start(record.id)
    assert (record.state.status, record.state.exit_code, record.state.error) == ("created", 127, str(err.value))
    assert engine.client.tasks.list() == []
