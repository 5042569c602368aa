"""Restart policies' decision and back-off as dockerd 20.10's restartmanager
makes them (engine/services/restart.py), with a fake timer: no root, no waiting."""
import pytest

from engine.errors import InvalidParameter
from engine.services.restart import MAX_DELAY, RestartPolicies, check_policy, should_restart
from engine.store import Container
from engine.store.record import go_time

SECOND = 1_000_000_000


class FakeTimers:
    """schedule(delay, action) as threading.Timer's, fired by hand."""

    def __init__(self):
        self.scheduled: list[list] = []  # [delay, action, cancelled]

    def __call__(self, delay, action):
        entry = [delay, action, False]
        self.scheduled.append(entry)
        return lambda: entry.__setitem__(2, True)

    def fire_last(self):
        self.scheduled[-1][1]()


def _record(policy: str, retries: int = 0, exit_code: int = 1, ran_seconds: int = 1) -> Container:
    record = Container("c" * 64, "/c", "sha256:x", {}, {"RestartPolicy": {"Name": policy, "MaximumRetryCount": retries}})
    record.state.set_running(1, go_time(100 * SECOND))
    record.state.set_stopped(exit_code, go_time((100 + ran_seconds) * SECOND))
    record.has_been_started_before = True
    return record


@pytest.mark.parametrize("policy, retries, exit_code, manual, count, expected", [
    ("no", 0, 1, False, 0, False),
    ("", 0, 1, False, 0, False),
    ("always", 0, 0, False, 0, True),
    ("always", 0, 0, True, 0, True),  # the manual stop is the restart manager's cancel, not the decision
    ("unless-stopped", 0, 0, False, 5, True),
    ("unless-stopped", 0, 1, True, 0, False),
    ("on-failure", 0, 0, False, 0, False),
    ("on-failure", 0, 3, False, 100, True),  # 0 retries: no maximum
    ("on-failure", 2, 3, False, 1, True),
    ("on-failure", 2, 3, False, 2, False),
    ("on-failure", 2, 3, True, 0, True),
])
def test_the_decision_is_dockerds(policy, retries, exit_code, manual, count, expected):
    host_config = {"RestartPolicy": {"Name": policy, "MaximumRetryCount": retries}}
    assert should_restart(host_config, exit_code, manual, count) is expected


@pytest.mark.parametrize("host_config, message", [
    ({"RestartPolicy": {"Name": "sometimes"}}, "invalid restart policy 'sometimes'"),
    ({"RestartPolicy": {"Name": "always", "MaximumRetryCount": 3}},
     "maximum retry count cannot be used with restart policy 'always'"),
    ({"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": -1}}, "maximum retry count cannot be negative"),
    ({"RestartPolicy": {"Name": "always"}, "AutoRemove": True},
     "can't create 'AutoRemove' container with restart policy"),
])
def test_bad_policies_are_refused_in_dockerds_words(host_config, message):
    with pytest.raises(InvalidParameter, match=message):
        check_policy(host_config)


def test_good_policies_pass():
    for host_config in ({}, {"AutoRemove": True}, {"RestartPolicy": {"Name": "no"}, "AutoRemove": True},
                        {"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 4}}):
        check_policy(host_config)


def test_the_back_off_doubles_from_100ms_to_a_minute():
    timers = FakeTimers()
    policies = RestartPolicies(timers)
    record = _record("always")
    delays = []
    for _ in range(14):
        delays.append(policies.on_exit(record, lambda: None))
        assert policies.due(record.id)
    assert delays[:4] == [0.1, 0.2, 0.4, 0.8]
    assert delays[-1] == MAX_DELAY and max(delays) == MAX_DELAY


def test_ten_seconds_of_running_reset_the_back_off():
    policies = RestartPolicies(FakeTimers())
    short, long = _record("always", ran_seconds=9), _record("always", ran_seconds=10)
    for _ in range(3):
        policies.on_exit(short, lambda: None)
        policies.due(short.id)
    assert policies.on_exit(short, lambda: None) == 0.8
    policies.due(short.id)
    assert policies.on_exit(long, lambda: None) == 0.1


def test_the_back_off_advances_when_the_policy_declines():
    """As dockerd: the timeout is stepped before the decision."""
    policies = RestartPolicies(FakeTimers())
    record = _record("on-failure", exit_code=0)
    assert policies.on_exit(record, lambda: None) is None
    record.state.exit_code = 1
    assert policies.on_exit(record, lambda: None) == 0.2


def test_no_policy_schedules_nothing():
    timers = FakeTimers()
    assert RestartPolicies(timers).on_exit(_record("no"), lambda: None) is None
    assert timers.scheduled == []


def test_the_restart_fires_once_its_delay_is_scheduled():
    timers, fired = FakeTimers(), []
    policies = RestartPolicies(timers)
    record = _record("always")
    policies.on_exit(record, lambda: fired.append(policies.due(record.id)))
    assert policies.pending(record.id)
    timers.fire_last()
    assert fired == [True] and not policies.pending(record.id)


def test_a_cancel_stops_the_pending_restart_and_the_next_ones():
    timers = FakeTimers()
    policies = RestartPolicies(timers)
    record = _record("always")
    policies.on_exit(record, lambda: None)
    assert policies.cancel(record.id) is True
    assert timers.scheduled[-1][2] is True  # the timer cancelled
    assert not policies.due(record.id)  # a timer already firing finds it cancelled
    assert policies.on_exit(record, lambda: None) is None  # cancelled until reset
    assert policies.cancel(record.id) is False  # nothing was pending
    policies.reset(record.id)  # a manual start
    assert policies.on_exit(record, lambda: None) == 0.1


def test_close_cancels_every_pending_restart():
    timers = FakeTimers()
    policies = RestartPolicies(timers)
    policies.on_exit(_record("always"), lambda: None)
    policies.close()
    assert timers.scheduled[-1][2] is True


@pytest.mark.parametrize("policy, exit_code, manual, running, expected", [
    ("always", 0, True, False, True),  # a new engine: always ignores the manual stop
    ("unless-stopped", 0, True, False, False),
    ("unless-stopped", 137, False, False, True),
    ("on-failure", 1, False, False, True),
    ("on-failure", 0, False, False, False),
    ("no", 1, False, False, False),
    ("always", 0, False, True, False),  # running: kept as it is
])
def test_what_an_engine_start_brings_back(policy, exit_code, manual, running, expected):
    record = _record(policy, exit_code=exit_code)
    record.has_been_manually_stopped = manual
    record.state.running = running
    assert RestartPolicies.wanted_at_engine_start(record) is expected


def test_a_container_never_started_is_not_started_at_engine_start():
    record = _record("always")
    record.has_been_started_before = False
    assert not RestartPolicies.wanted_at_engine_start(record)
