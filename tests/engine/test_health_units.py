"""The healthcheck state machine as daemon/health.go runs it, without
containers: streaks, retries, the start period, the log of five, the
merge of the image's HEALTHCHECK, a probe over its timeout; the monitors
driven inline with a fake clock and fake probes."""
import signal
import threading

import pytest

from engine.errors import Conflict
from engine.services.health import (
    ExecProbes, HealthMonitors, LimitedOutput, apply_result, merged_healthcheck, probe_command, probe_result,
)
from engine.store import Container, go_time

SECOND = 10**9
T0 = 1_700_000_000 * SECOND


class FakeClock:
    """Monotonic seconds and wall nanoseconds that move only when told."""

    def __init__(self):
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def wall_ns(self) -> int:
        return T0 + int(self.now * SECOND)


class FakeProbes:
    """Exit codes (and output) to hand out in turn; ``hang`` makes a probe
    last until its monitor's timeout has fired."""

    def __init__(self, clock: FakeClock, results, monitors_of=lambda: None):
        self.clock, self.results, self.monitors_of = clock, list(results), monitors_of
        self.ran, self.signals = [], []

    def create(self, record, argv):
        self.ran.append(argv)
        return f"exec-{len(self.ran)}"

    def run(self, exec_id, output):
        result = self.results.pop(0)
        if result == "hang":
            self.clock.now += 100
            self.monitors_of().run_due()  # the scheduler fires the timeout meanwhile
            return 137
        if isinstance(result, Exception):
            raise result
        code, text = result
        output(text.encode())
        return code

    def signal(self, container_id, exec_id, number):
        self.signals.append((exec_id, number))


def container(check: dict | None, running: bool = True) -> Container:
    record = Container("c" * 64, "/web", "sha256:" + "1" * 64, {"Image": "busybox", "Healthcheck": check}, {})
    if running:
        record.state.set_running(42, go_time(T0))
    return record


def monitored(results, check: dict, record: Container | None = None):
    """(monitors, probes, record, events) with the record started under them."""
    clock = FakeClock()
    events, saved = [], []
    monitors = HealthMonitors(saved.append, lambda r, action, attributes: events.append(action),
                              clock=clock.monotonic, wall_ns=clock.wall_ns, inline=True)
    probes = FakeProbes(clock, results, lambda: monitors)
    record = record or container(check)
    monitors.begin(probes, lambda _id: threading.RLock(), [record])
    return monitors, probes, record, events, clock


def tick(monitors, clock, seconds: float = 1.0) -> None:
    clock.now += seconds
    monitors.run_due()


def result(code: int, start_s: float = 0, output: str = "") -> dict:
    return probe_result(T0 + int(start_s * SECOND), T0 + int(start_s * SECOND), code, output)


# -- the state machine ------------------------------------------------------------------------------------------------


def test_a_success_is_healthy_and_clears_the_streak():
    health = {"Status": "unhealthy", "FailingStreak": 4, "Log": []}
    assert apply_result(health, result(0), {}, go_time(T0))
    assert (health["Status"], health["FailingStreak"]) == ("healthy", 0)
    assert not apply_result(health, result(0), {}, go_time(T0))


def test_failures_count_up_to_the_retries_then_unhealthy():
    health = {"Status": "healthy", "FailingStreak": 0, "Log": []}
    statuses = []
    for _ in range(4):
        apply_result(health, result(1), {"Retries": 3}, go_time(T0))
        statuses.append((health["Status"], health["FailingStreak"]))
    assert statuses == [("healthy", 1), ("healthy", 2), ("unhealthy", 3), ("unhealthy", 4)]


@pytest.mark.parametrize("retries", [None, 0, -1])
def test_retries_unset_or_not_positive_are_dockerds_three(retries):
    health = {"Status": "healthy", "FailingStreak": 2, "Log": []}
    apply_result(health, result(1), {"Retries": retries}, go_time(T0))
    assert health["Status"] == "unhealthy"


def test_failures_in_the_start_period_do_not_count_while_starting():
    check = {"StartPeriod": 10 * SECOND, "Retries": 1}
    health = {"Status": "starting", "FailingStreak": 0, "Log": []}
    apply_result(health, result(1, start_s=9), check, go_time(T0))
    assert (health["Status"], health["FailingStreak"]) == ("starting", 0)
    apply_result(health, result(1, start_s=10), check, go_time(T0))
    assert (health["Status"], health["FailingStreak"]) == ("unhealthy", 1)


def test_once_healthy_the_start_period_no_longer_shields_failures():
    check = {"StartPeriod": 60 * SECOND, "Retries": 1}
    health = {"Status": "starting", "FailingStreak": 0, "Log": []}
    apply_result(health, result(0, start_s=1), check, go_time(T0))
    apply_result(health, result(1, start_s=2), check, go_time(T0))
    assert (health["Status"], health["FailingStreak"]) == ("unhealthy", 1)


def test_the_log_keeps_the_last_five_oldest_first():
    health = {"Status": "starting", "FailingStreak": 0, "Log": []}
    for code in range(7):
        apply_result(health, result(code), {}, go_time(T0))
    assert [entry["ExitCode"] for entry in health["Log"]] == [2, 3, 4, 5, 6]


def test_output_keeps_4096_bytes_and_marks_the_rest():
    output = LimitedOutput()
    output.write(b"a" * 4000)
    output.write(b"b" * 200)
    assert output.text() == "a" * 4000 + "b" * 96 + "..."
    short = LimitedOutput()
    short.write(b"ok\n")
    assert short.text() == "ok\n"


def test_the_image_check_fills_what_the_request_left_out():
    image = {"Test": ["CMD", "true"], "Interval": 5 * SECOND, "Retries": 2}
    assert merged_healthcheck(None, image) == {"Healthcheck": image}
    assert merged_healthcheck({"Interval": SECOND}, image) == \
        {"Healthcheck": {"Test": ["CMD", "true"], "Interval": SECOND, "Retries": 2}}
    assert merged_healthcheck({"Test": ["NONE"]}, image)["Healthcheck"]["Test"] == ["NONE"]
    assert merged_healthcheck(None, None) == {}


def test_probe_commands_as_dockerd_execs_them():
    assert probe_command({"Healthcheck": {"Test": ["CMD", "curl", "-f", "x"]}}) == ["curl", "-f", "x"]
    assert probe_command({"Healthcheck": {"Test": ["CMD-SHELL", "exit 0"]}}) == ["/bin/sh", "-c", "exit 0"]
    assert probe_command({"Healthcheck": {"Test": ["CMD-SHELL", "x"]}, "Shell": ["/bin/ash", "-e", "-c"]}) == \
        ["/bin/ash", "-e", "-c", "x"]
    assert probe_command({"Healthcheck": {"Test": ["NONE"]}}) is None
    assert probe_command({"Healthcheck": {"Test": ["WHAT", "x"]}}) is None
    assert probe_command({}) is None


# -- the monitors -----------------------------------------------------------------------------------------------------


def test_a_start_makes_it_starting_and_probes_every_interval():
    monitors, probes, record, events, clock = monitored([(0, "fine\n"), (0, "fine\n")],
                                                        {"Test": ["CMD-SHELL", "true"], "Interval": 2 * SECOND})
    assert record.state.health == {"Status": "starting", "FailingStreak": 0, "Log": []}
    tick(monitors, clock)
    assert probes.ran == []
    tick(monitors, clock)
    assert record.state.health["Status"] == "healthy" and events == ["health_status: healthy"]
    assert record.state.health["Log"] == [{"Start": go_time(T0 + 2 * SECOND), "End": go_time(T0 + 2 * SECOND),
                                           "ExitCode": 0, "Output": "fine\n"}]
    tick(monitors, clock, 2)
    assert len(probes.ran) == 2 and events == ["health_status: healthy"]


def test_failures_make_it_unhealthy_once_and_a_success_healthy_again():
    monitors, _probes, record, events, clock = monitored([(1, ""), (1, ""), (1, ""), (0, "")],
                                                         {"Test": ["CMD", "false"], "Interval": SECOND,
                                                          "Retries": 2})
    for _ in range(4):
        tick(monitors, clock)
    assert events == ["health_status: unhealthy", "health_status: healthy"]
    assert [entry["ExitCode"] for entry in record.state.health["Log"]] == [1, 1, 1, 0]


def test_a_probe_that_cannot_run_fails_with_its_error():
    monitors, _probes, record, _events, clock = monitored(
        [Conflict("Container c is not running")], {"Test": ["CMD", "x"], "Interval": SECOND})
    tick(monitors, clock)
    assert record.state.health["Log"][-1]["ExitCode"] == -1
    assert record.state.health["Log"][-1]["Output"] == "Container c is not running"
    assert record.state.health["FailingStreak"] == 1


def test_a_probe_over_its_timeout_is_logged_as_dockerd_and_terminated():
    monitors, probes, record, _events, clock = monitored(["hang"], {"Test": ["CMD", "sleep", "9"],
                                                                    "Interval": SECOND, "Timeout": 1500 * 10**6})
    tick(monitors, clock)
    assert record.state.health["Log"] == [{"Start": go_time(T0 + SECOND), "End": go_time(T0 + 101 * SECOND),
                                           "ExitCode": -1, "Output": "Health check exceeded timeout (1.5s)"}]
    assert probes.signals == [("exec-1", signal.SIGTERM)]


def test_a_stopped_or_paused_container_is_not_probed_until_it_runs_again():
    monitors, probes, record, _events, clock = monitored([(0, "")], {"Test": ["CMD", "true"],
                                                                     "Interval": SECOND})
    monitors.container_event(record, "pause")
    tick(monitors, clock, 5)
    assert probes.ran == []
    record.state.paused = False
    monitors.container_event(record, "unpause")
    tick(monitors, clock)
    assert probes.ran == [["true"]]
    monitors.container_event(record, "die")
    tick(monitors, clock, 5)
    assert probes.ran == [["true"]]


def test_a_restart_is_starting_again_with_its_log_kept():
    monitors, _probes, record, _events, clock = monitored([(0, "")], {"Test": ["CMD", "true"], "Interval": SECOND})
    tick(monitors, clock)
    monitors.container_event(record, "die")
    monitors.container_event(record, "start")
    assert record.state.health["Status"] == "starting" and len(record.state.health["Log"]) == 1


def test_no_healthcheck_or_none_leaves_the_state_without_health():
    for check in (None, {"Test": ["NONE"]}):
        _monitors, probes, record, _events, _clock = monitored([], check)
        assert record.state.health is None and probes.ran == []


class FakeExecService:
    """The exec service's calls a probe makes, recorded."""

    def __init__(self, fail_start: Exception | None = None):
        self.fail_start, self.calls = fail_start, []

    def create(self, ref, config):
        self.calls.append(("create", ref, config["Cmd"]))
        return "e1"

    def start(self, exec_id, client):
        self.calls.append(("start", exec_id))
        if self.fail_start:
            raise self.fail_start
        client.stdout(b"out ")
        client.stderr(b"err")

    def inspect(self, exec_id):
        return {"ExitCode": 3}

    def forget(self, exec_id):
        self.calls.append(("forget", exec_id))


def test_probe_execs_capture_both_streams_and_are_forgotten_once_ended():
    execs, output = FakeExecService(), LimitedOutput()
    probes = ExecProbes(execs)
    exec_id = probes.create(container({"Test": ["CMD", "x"]}), ["x"])
    assert probes.run(exec_id, output.write) == 3 and output.text() == "out err"
    assert execs.calls == [("create", "c" * 64, ["x"]), ("start", "e1"), ("forget", "e1")]
    failing = FakeExecService(Conflict("Container c is not running"))
    with pytest.raises(Conflict):
        ExecProbes(failing).run("e1", output.write)
    assert failing.calls[-1] == ("forget", "e1")


def test_an_exit_leaves_it_unhealthy_even_before_the_probes_begin():
    monitors = HealthMonitors(lambda record: None, lambda *event: None, inline=True)
    record = container({"Test": ["CMD", "true"]})
    record.state.health = {"Status": "healthy", "FailingStreak": 0, "Log": []}
    monitors.container_event(record, "die")
    assert record.state.health["Status"] == "unhealthy"
