"""Healthchecks as dockerd 20.10 runs them (daemon/health.go): the
container's Config.Healthcheck (the image's HEALTHCHECK merged under the
request's at create) probed every Interval through an exec while the
container runs unpaused, each result logged in State.Health (the last five),
a FailingStreak of Retries making it "unhealthy", one success "healthy",
failures within the StartPeriod of a container never yet healthy not counted,
and every change of status a ``health_status: <status>`` event.

All monitors share one scheduler thread (a heap of due times), and probes run
on a small pool of worker threads: an engine with many containers probed
every second keeps a few threads, not one per container as dockerd's
goroutines. A probe over its Timeout is logged as dockerd logs it, sent
SIGTERM, and SIGKILL TERM_GRACE seconds later; the next probe is due an
Interval after the last one ended, as dockerd's timer is reset after each.
"""
import heapq
import itertools
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from engine.errors import EngineError
from engine.timestamps import go_duration
from engine.services.exec_io import Attached
from engine.store import Container, go_time
from engine.store.record import parse_go_time

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = DEFAULT_TIMEOUT = 30 * 10**9  # ns, dockerd's defaultProbeInterval/Timeout
DEFAULT_RETRIES = 3
MAX_LOG_ENTRIES = 5
MAX_OUTPUT = 4096  # bytes of a probe's output kept, as dockerd's limitedBuffer
TERM_GRACE = 10.0  # seconds from a timed-out probe's SIGTERM to its SIGKILL (dockerd's termProcessTimeout)
PROBE_WORKERS = 64  # probes running at once (more wait their turn); threads are made only as needed
_DEFAULT_SHELL = ("/bin/sh", "-c")
# (record, action, attributes) of a container event, as the events service takes it
Publish = Callable[[Container, str, dict | None], None]


def merged_healthcheck(requested: dict | None, image: dict | None) -> dict:
    """``{"Healthcheck": ...}`` for the record's Config as daemon/commit.go's
    merge makes it (the image's Test and settings fill what the request left
    empty), or {} when neither has one. The request's null and zero fields
    are dropped as Go's omitempty drops them (compose sends StartPeriod: null)."""
    requested = {key: value for key, value in (requested or {}).items() if value}
    if not image:
        return {"Healthcheck": requested} if requested else {}
    if not requested:
        return {"Healthcheck": dict(image)}
    merged = dict(requested)
    for key in ("Test", "Interval", "Timeout", "StartPeriod", "Retries"):
        if not merged.get(key) and image.get(key):
            merged[key] = image[key]
    return {"Healthcheck": merged}


def probe_command(config: dict) -> list[str] | None:
    """What a probe execs (CMD's argv, CMD-SHELL's command in the container's
    Shell); None for NONE, no test, or a type dockerd does not know."""
    test = (config.get("Healthcheck") or {}).get("Test") or []
    if test[:1] == ["CMD"]:
        return list(test[1:])
    if test[:1] == ["CMD-SHELL"]:
        return [*(config.get("Shell") or _DEFAULT_SHELL), *test[1:]]
    return None


def new_health(health: dict | None) -> dict:
    """State.Health at a start (initHealthMonitor): starting again, the log kept."""
    return {"Status": "starting", "FailingStreak": 0, "Log": list((health or {}).get("Log") or [])}


def probe_result(start_ns: int, end_ns: int, exit_code: int, output: str) -> dict:
    """One entry of State.Health.Log (types.HealthcheckResult)."""
    return {"Start": go_time(start_ns), "End": go_time(end_ns), "ExitCode": exit_code, "Output": output}


def apply_result(health: dict, result: dict, check: dict, started_at: str) -> bool:
    """handleProbeResult: ``result`` logged, the streak and status moved;
    True when the status changed. A failure while still starting within the
    StartPeriod (from the container's start to the probe's) does not count."""
    old = health.get("Status")
    health["Log"] = [*(health.get("Log") or []), result][-MAX_LOG_ENTRIES:]
    if result["ExitCode"] == 0:
        health["FailingStreak"], health["Status"] = 0, "healthy"
    elif old != "starting" or \
            parse_go_time(result["Start"]) - parse_go_time(started_at) >= (check.get("StartPeriod") or 0):
        health["FailingStreak"] = health.get("FailingStreak", 0) + 1
        if health["FailingStreak"] >= ((check.get("Retries") or 0) if (check.get("Retries") or 0) > 0
                                       else DEFAULT_RETRIES):
            health["Status"] = "unhealthy"
    return health["Status"] != old


class LimitedOutput:
    """A probe's stdout and stderr together, the first MAX_OUTPUT bytes kept
    and "..." after them when more came, as dockerd's limitedBuffer."""

    def __init__(self):
        self._data, self._truncated = bytearray(), False

    def write(self, data: bytes) -> None:
        keep = MAX_OUTPUT - len(self._data)
        self._data += data[:max(keep, 0)]
        self._truncated = self._truncated or len(data) > keep

    def text(self) -> str:
        return self._data.decode("utf-8", "replace") + ("..." if self._truncated else "")


class Probes(Protocol):
    """Where probes run: ``create`` an exec of ``argv`` (its ID), ``run`` it
    (its output to ``output``) to its exit code, ``signal`` it."""

    def create(self, record: Container, argv: list[str]) -> str: ...

    def run(self, exec_id: str, output: Callable[[bytes], None]) -> int | None: ...

    def signal(self, container_id: str, exec_id: str, number: int) -> None: ...


class ExecProbes:
    """Probes through the exec service, as dockerd's cmdProbe: the
    container's user, working directory and environment, no stdin, stdout
    and stderr captured, the exec events published."""

    def __init__(self, execs):
        self.execs = execs  # an ExecService (not imported: it imports the container service, which imports this)

    def create(self, record: Container, argv: list[str]) -> str:
        return self.execs.create(record.id, {"Cmd": argv, "AttachStdout": True, "AttachStderr": True})

    def run(self, exec_id: str, output: Callable[[bytes], None]) -> int | None:
        try:
            self.execs.start(exec_id, Attached(None, output, output))
            return self.execs.inspect(exec_id)["ExitCode"]
        finally:
            self.execs.forget(exec_id)

    def signal(self, container_id: str, exec_id: str, number: int) -> None:
        self.execs.execs.kill(container_id, exec_id, number)


@dataclass
class _Attempt:
    """One probe in flight."""
    start_ns: int
    exec_id: str = ""
    done: bool = False
    timed_out: bool = False


@dataclass
class _Monitor:
    """One container's monitor; a stopped one is no longer in the table, and
    what it still has scheduled or running is dropped."""
    record: Container
    argv: list[str]
    interval: float  # seconds
    timeout: float


class HealthMonitors:
    """The monitors of the engine's containers, following their events
    (``container_event``) once ``begin`` has given them the probes."""

    def __init__(self, save: Callable[[Container], None], publish: Publish,
                 clock: Callable[[], float] = time.monotonic, wall_ns: Callable[[], int] = time.time_ns,
                 inline: bool = False):
        """``inline``: no threads, probes run where they are handed out and
        what is due runs at ``run_due()`` (tests, with a fake clock and probes)."""
        self._inline = inline
        self._save, self._publish, self._clock, self._wall_ns = save, publish, clock, wall_ns
        self._probes: Probes | None = None
        self._locked: Callable[[str], threading.RLock] | None = None
        self._monitors: dict[str, _Monitor] = {}
        self._due: list[tuple[float, int, Callable[[], None]]] = []  # heap of (when, order, action)
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._closing = False
        self._scheduler: threading.Thread | None = None
        self._workers: ThreadPoolExecutor | None = None

    def begin(self, probes: Probes, locked: Callable[[str], threading.RLock], records: Iterable[Container]) -> None:
        """Probes from now on; the running containers among ``records`` (the
        engine's at its start) are starting again, as dockerd's restore makes them."""
        self._probes, self._locked = probes, locked
        for record in records:
            if record.state.running:
                with locked(record.id):
                    self._started(record)

    def container_event(self, record: Container, action: str) -> None:
        """dockerd's initHealthMonitor at a start, updateHealthMonitor at a
        pause, unpause or exit (the monitor stopped or resumed); under the container's lock."""
        if action == "die" and record.state.health:
            record.state.health["Status"] = "unhealthy"  # as dockerd's SetStopped; saved with the exit
        if action in ("pause", "die", "destroy"):
            with self._changed:
                self._monitors.pop(record.id, None)
        elif self._probes is None:
            return
        elif action == "start":
            self._started(record)
        elif action == "unpause":
            self._watch(record)

    def close(self) -> None:
        """Stops probing (the containers keep running)."""
        with self._changed:
            self._closing = True
            self._monitors.clear()
            self._changed.notify_all()
        if self._scheduler is not None:
            self._scheduler.join()
        if self._workers is not None:
            self._workers.shutdown(wait=False, cancel_futures=True)

    # -- monitors -----------------------------------------------------------------------------------------------------

    def _started(self, record: Container) -> None:
        """Under the container's lock: its health starting, its monitor (re)started."""
        if probe_command(record.config) is None:
            return  # as dockerd: a NONE (--no-healthcheck) has no State.Health
        with self._changed:
            self._monitors.pop(record.id, None)
        record.state.health = new_health(record.state.health)
        self._save(record)
        self._watch(record)

    def _watch(self, record: Container) -> None:
        argv = probe_command(record.config)
        if record.state.health is None or argv is None or not record.state.running or record.state.paused:
            return
        check = record.config["Healthcheck"]
        monitor = _Monitor(record, argv, (check.get("Interval") or DEFAULT_INTERVAL) / 1e9,
                           (check.get("Timeout") or DEFAULT_TIMEOUT) / 1e9)
        with self._changed:
            if record.id not in self._monitors and not self._closing:
                self._monitors[record.id] = monitor
                self._schedule(monitor.interval, lambda: self._submit(monitor))

    def _current(self, monitor: _Monitor) -> bool:
        return self._monitors.get(monitor.record.id) is monitor

    # -- probes -------------------------------------------------------------------------------------------------------

    def _submit(self, monitor: _Monitor) -> None:
        """On the scheduler: the monitor's probe handed to a worker, its timeout scheduled."""
        if not self._current(monitor):
            return
        attempt = _Attempt(self._wall_ns())
        with self._changed:
            self._schedule(monitor.timeout, lambda: self._time_out(monitor, attempt))
        if self._inline:
            self._probe(monitor, attempt)
            return
        if self._workers is None:
            self._workers = ThreadPoolExecutor(PROBE_WORKERS, thread_name_prefix="health-probe")
        self._workers.submit(self._probe, monitor, attempt)

    def _probe(self, monitor: _Monitor, attempt: _Attempt) -> None:
        """On a worker: one probe run and its result recorded, unless it timed out; the next one scheduled."""
        output = LimitedOutput()
        try:
            attempt.exec_id = self._probes.create(monitor.record, monitor.argv)
            code = self._probes.run(attempt.exec_id, output.write)
            if code is None:
                raise EngineError(f"healthcheck for container {monitor.record.id} has no exit code")
            result = probe_result(attempt.start_ns, self._wall_ns(), code, output.text())
        except EngineError as err:
            log.warning("Health check for container %s error: %s", monitor.record.id, err)
            result = probe_result(attempt.start_ns, self._wall_ns(), -1, str(err))
        except Exception:  # noqa: BLE001 - a worker's failure must not end the container's monitoring
            log.exception("health check for container %s", monitor.record.id)
            result = None
        with self._changed:
            attempt.done = True
            timed_out = attempt.timed_out
        if result is not None and not timed_out:
            self._record(monitor, result)
        with self._changed:
            if self._current(monitor):
                self._schedule(monitor.interval, lambda: self._submit(monitor))

    def _time_out(self, monitor: _Monitor, attempt: _Attempt) -> None:
        """On the scheduler: a probe still running at its timeout counts as
        failed, with dockerd's output, and is sent SIGTERM (SIGKILL later)."""
        with self._changed:
            if attempt.done:
                return
            attempt.timed_out = True
        self._record(monitor, probe_result(
            attempt.start_ns, self._wall_ns(), -1,
            f"Health check exceeded timeout ({go_duration(int(monitor.timeout * 1e9))})"))
        self._signal(monitor, attempt, signal.SIGTERM)

    def _signal(self, monitor: _Monitor, attempt: _Attempt, number: int) -> None:
        if attempt.done or not attempt.exec_id:
            return
        try:
            self._probes.signal(monitor.record.id, attempt.exec_id, number)
        except EngineError as err:
            log.debug("signalling the health check of %s: %s", monitor.record.id, err)
        if number != signal.SIGKILL:
            with self._changed:
                self._schedule(TERM_GRACE, lambda: self._signal(monitor, attempt, signal.SIGKILL))

    def _record(self, monitor: _Monitor, result: dict) -> None:
        """The result in State.Health, under the container's lock, unless the monitor was stopped meanwhile."""
        record = monitor.record
        with self._locked(record.id):
            if not self._current(monitor) or record.state.health is None:
                return
            changed = apply_result(record.state.health, result, record.config["Healthcheck"],
                                   record.state.started_at)
            self._save(record)
            if changed:
                self._publish(record, "health_status: " + record.state.health["Status"], None)

    # -- the scheduler ------------------------------------------------------------------------------------------------

    def _schedule(self, delay: float, action: Callable[[], None]) -> None:
        """Under ``_changed``: ``action`` due on the scheduler thread in ``delay`` seconds."""
        if self._closing:
            return
        heapq.heappush(self._due, (self._clock() + delay, next(self._order), action))
        if self._scheduler is None and not self._inline:
            self._scheduler = threading.Thread(target=self._run, name="health-scheduler", daemon=True)
            self._scheduler.start()
        self._changed.notify_all()

    def _run(self) -> None:
        with self._changed:
            while not self._closing:
                wait = self._due[0][0] - self._clock() if self._due else None
                if wait is None or wait > 0:
                    self._changed.wait(wait)
                else:
                    self._run_first()

    def run_due(self) -> None:
        """What is due by the clock, run now (``inline`` monitors)."""
        with self._changed:
            while self._due and self._due[0][0] <= self._clock():
                self._run_first()

    def _run_first(self) -> None:
        """Under ``_changed``: the first action due, run without the lock."""
        action = heapq.heappop(self._due)[2]
        self._changed.release()
        try:
            action()
        except Exception:  # noqa: BLE001 - one monitor's failure must not stop the others'
            log.exception("health monitors")
        finally:
            self._changed.acquire()
