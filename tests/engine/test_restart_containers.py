"""Restart policies on real containers: the container service in-process
over a private containerd-py (a held timer makes the back-off's wait
observable), then through the docker CLI against ours and real dockerd, and
across a kill -9 of the engine."""
import time

import pytest

from containers_helpers import busybox, containerd_py, engine_on, eventually  # noqa: F401 (fixtures)
from engine.errors import InvalidParameter
from engine.services.restart import RestartPolicies
from engine.store.summary import summary

pytestmark = pytest.mark.root

EXIT_3 = ["sh", "-c", "exit 3"]
SLEEPER = ["sleep", "1000"]


class HeldTimers:
    """A schedule whose restarts fire only when the test says so."""

    def __init__(self):
        self.actions = []

    def __call__(self, delay, action):
        self.actions.append(action)
        return lambda: None

    def fire(self):
        self.actions.pop()()


@pytest.fixture
def engine(containerd_py, busybox, tmp_path):  # noqa: F811
    events = []
    with engine_on(containerd_py.address, tmp_path / "data", busybox,
                   publish=lambda record, action, attributes=None: events.append((record.name, action))) as made:
        made.events = events
        made.service.start_by_restart_policy()
        yield made


def _run(service, cmd, policy, name=None, retries=0):
    record = service.create({"Image": "busybox", "Cmd": cmd},
                            {"RestartPolicy": {"Name": policy, "MaximumRetryCount": retries}}, name)
    service.start(record.id)
    return record


def _hold(service) -> HeldTimers:
    timers = HeldTimers()
    service.restarts = RestartPolicies(timers)
    return timers


def test_on_failure_restarts_up_to_its_maximum(engine):
    service = engine.service
    record = _run(service, EXIT_3, "on-failure", "failing", retries=2)
    eventually(lambda: record.restart_count == 2 and not record.state.running)
    assert (record.state.status, record.state.exit_code) == ("exited", 3)
    assert service.store.get("failing").restart_count == 2
    mine = [action for name, action in engine.events if name == "/failing"]
    assert mine == ["create", "start", "die", "start", "die", "start", "die"]


def test_always_restarts_a_clean_exit_and_a_stop_ends_it(engine):
    service = engine.service
    record = _run(service, ["sh", "-c", "sleep 0.2"], "always")
    eventually(lambda: record.restart_count >= 2 and record.state.status == "running")
    service.stop(record.id, timeout=0)
    assert record.state.status == "exited" and record.has_been_manually_stopped
    assert not service.restarts.pending(record.id)


@pytest.mark.parametrize("policy", ["always", "unless-stopped", "on-failure"])
def test_a_docker_kill_is_not_restarted(engine, policy):
    """dockerd's killWithSignal: SIGKILL cancels the restart manager until the next manual start."""
    service = engine.service
    record = _run(service, SLEEPER, policy)
    service.kill(record.id)
    assert (record.state.status, record.state.exit_code) == ("exited", 137)
    assert record.has_been_manually_stopped and record.restart_count == 0
    service.start(record.id)  # a manual start: the policy holds again
    assert not record.has_been_manually_stopped and not service.restarts.pending(record.id)
    service.remove(record.id, force=True)


def test_while_waiting_to_restart_the_container_shows_restarting(engine):
    service = engine.service
    timers = _hold(service)
    record = service.create({"Image": "busybox", "Cmd": EXIT_3}, {"RestartPolicy": {"Name": "always"}}, "waiting")
    wait = service.waiter(record.id)
    service.start(record.id)
    assert wait() == {"StatusCode": 3, "Error": None}  # as dockerd: a restart's exit ends a wait
    eventually(lambda: record.state.restarting)
    assert record.state.status == "restarting" and record.restart_count == 1
    assert summary(record)["Status"].startswith("Restarting (3) ")
    timers.fire()
    eventually(lambda: record.restart_count == 2 and record.state.restarting)
    assert [a for name, a in engine.events if name == "/waiting"][-3:] == ["die", "start", "die"]


@pytest.mark.parametrize("how", ["stop", "kill", "rm -f"])
def test_a_manual_stop_during_the_back_off_cancels_the_restart(engine, how):
    service = engine.service
    timers = _hold(service)
    record = _run(service, EXIT_3, "always")
    eventually(lambda: record.state.restarting)
    if how == "stop":
        service.stop(record.id)
    elif how == "kill":
        service.kill(record.id)
    else:
        service.remove(record.id, force=True)
    timers.fire()  # a timer already firing finds it cancelled
    if how == "rm -f":
        assert service.store.find_exact(record.id) is None
    else:
        assert (record.state.status, record.state.exit_code, record.restart_count) == ("exited", 3, 1)
        assert service.store.get(record.id).state.status == "exited"


def test_rm_with_a_restart_policy_is_refused_at_create(engine):
    with pytest.raises(InvalidParameter, match="can't create 'AutoRemove' container with restart policy"):
        engine.service.create({"Image": "busybox", "Cmd": SLEEPER},
                              {"AutoRemove": True, "RestartPolicy": {"Name": "always"}}, "refused")
    assert engine.service.store.find_exact("refused") is None


def test_an_engine_restart_starts_what_the_policies_want(engine):
    service = engine.service
    stopped_always = _run(service, SLEEPER, "always", "stopped-always")
    stopped_unless = _run(service, SLEEPER, "unless-stopped", "stopped-unless")
    service.stop(stopped_always.id, timeout=0)
    service.stop(stopped_unless.id, timeout=0)
    timers = _hold(service)
    _run(service, EXIT_3, "unless-stopped", "was-restarting")
    eventually(lambda: service.store.get("was-restarting").state.restarting)
    service = engine.restart()
    service.reconcile()  # as the engine's assembly: the records matched, then the policies applied
    service.start_by_restart_policy()
    assert timers.actions  # the old engine's restart never fired
    states = {name: (service.store.get(name).state.status, service.store.get(name).restart_count)
              for name in ("stopped-always", "stopped-unless")}
    assert states == {"stopped-always": ("running", 0), "stopped-unless": ("exited", 0)}
    eventually(lambda: service.store.get("was-restarting").restart_count >= 1)  # started again, restarting by policy


def _oracle_and_ours(dockerd, engine_py, *args):
    """The same `docker run -d` on both (dockerd's with runc: its default runtime runs nothing)."""
    name = f"restart-{time.monotonic_ns()}"
    dockerd.docker("run", "-d", "--runtime", "runc", "--name", name, *args)
    engine_py.docker("run", "-d", "--name", name, *args)
    return name


def _settled(daemon, name, fields="{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}"):
    def status():
        return daemon.docker("inspect", "-f", fields, name).stdout.split()

    eventually(lambda: status()[0] == "exited")
    return status()


def test_on_failure_2_against_dockerd(dockerd, engine_py):
    name = _oracle_and_ours(dockerd, engine_py, "--restart", "on-failure:2", "busybox", "sh", "-c", "exit 3")
    try:
        assert _settled(dockerd, name) == _settled(engine_py, name) == ["exited", "3", "2"]
    finally:
        dockerd.docker("rm", "-f", name)
        engine_py.docker("rm", "-f", name)


def test_a_killed_always_container_against_dockerd(dockerd, engine_py):
    name = _oracle_and_ours(dockerd, engine_py, "--restart", "always", "busybox", "sleep", "1000")
    try:
        for daemon in (dockerd, engine_py):
            daemon.docker("kill", name)
        fields = "{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}} {{.State.Restarting}}"
        assert _settled(dockerd, name, fields) == _settled(engine_py, name, fields) == ["exited", "137", "0", "false"]
    finally:
        dockerd.docker("rm", "-f", name)
        engine_py.docker("rm", "-f", name)


def test_rm_with_restart_through_the_api_against_dockerd(dockerd, engine_py):
    import docker

    errors = []
    for daemon in (dockerd, engine_py):
        client = docker.APIClient(base_url=f"unix://{daemon.socket}", version="1.41")
        try:
            with pytest.raises(docker.errors.APIError) as refused:
                client.create_container("busybox", ["true"], host_config=client.create_host_config(
                    auto_remove=True, restart_policy={"Name": "always"}))
            errors.append((refused.value.status_code, refused.value.explanation))
        finally:
            client.close()
    assert errors[0] == errors[1] == (400, "can't create 'AutoRemove' container with restart policy")


def test_a_kill_9_of_the_engine_then_its_start_applies_the_policies():
    """As dockerd at daemon start: `always` comes back even from a manual
    stop, `unless-stopped` remembers it, and a container that exited while
    the engine was down is started again."""
    from engine_daemon import running_engine

    with running_engine() as engine:
        docker = engine.docker
        for name, policy in (("stopped-always", "always"), ("stopped-unless", "unless-stopped")):
            docker("run", "-d", "--restart", policy, "--name", name, "busybox", "sleep", "1000")
            docker("stop", "-t", "0", name)
        docker("run", "-d", "--restart", "always", "--name", "died-while-down", "busybox", "sh", "-c", "sleep 1")
        engine.kill()
        time.sleep(2)  # meanwhile "died-while-down" exits
        engine.start()

        def state(name):
            return docker("inspect", "-f", "{{.State.Status}} {{.RestartCount}}", name).stdout.split()

        assert state("stopped-always") == ["running", "0"]
        assert state("stopped-unless")[0] == "exited"
        eventually(lambda: int(state("died-while-down")[1]) >= 1)  # started at the engine's start, then by policy
        docker("rm", "-f", "stopped-always", "stopped-unless", "died-while-down")


def test_update_restart_of_an_autoremove_container_against_dockerd(dockerd, engine_py):
    """`docker update --restart always` of a --rm container: dockerd's 409; back to `no` is allowed."""
    seen = []
    for daemon in (dockerd, engine_py):
        cid = daemon.docker("create", "--rm", "busybox", "true").stdout.strip()
        try:
            refused = daemon.docker("update", "--restart", "always", cid, check=False)
            allowed = daemon.docker("update", "--restart", "no", cid, check=False)
            seen.append((refused.returncode, refused.stderr.replace(cid, "<id>"), allowed.returncode))
        finally:
            daemon.docker("rm", "-f", cid)
    assert seen[0] == seen[1] == (1, "Error response from daemon: Cannot update container <id>: Restart policy "
                                     "cannot be updated because AutoRemove is enabled for the container\n", 0)
