"""Healthchecks through the docker CLI at engine-py and at real dockerd side
by side: a passing check makes the container healthy, a failing one
unhealthy after its retries, a hanging one is cut at its timeout, the
image's HEALTHCHECK applies and --no-healthcheck removes it; inspect's
State.Health, `ps`'s status and `ps --filter health=`, and the
health_status events compared with IDs and times masked."""
import json
import re
import time
import uuid

import pytest

pytestmark = pytest.mark.root
DEADLINE = 90  # seconds; only guards against a hang, never asserted on


def inspect(daemon, name: str) -> dict:
    return json.loads(daemon.docker("inspect", name).stdout)[0]


def wait_for_status(daemon, name: str, status: str) -> dict:
    """The container's State.Health once its status is ``status``."""
    deadline = time.monotonic() + DEADLINE
    while True:
        health = inspect(daemon, name)["State"].get("Health") or {}
        if health.get("Status") == status or time.monotonic() > deadline:
            return health
        time.sleep(0.2)


def masked(health: dict) -> dict:
    """State.Health with its times masked (their format kept) and the log's length apart."""
    stamp = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
    return {**health, "Log": [{**entry, "Start": bool(stamp.match(entry["Start"])),
                               "End": bool(stamp.match(entry["End"]))} for entry in health["Log"][-1:]]}


@pytest.fixture
def run(engine_py, dockerd):
    """``run(daemon, *args)``: a detached container of the test's own on that daemon (its name)."""
    made = []

    def start(daemon, *args) -> str:
        name = f"health-{uuid.uuid4().hex[:8]}"
        daemon.docker("run", "-d", "--name", name, *args)
        made.append((daemon, name))
        return name

    def remove(daemon) -> None:
        for made_on, name in list(made):
            if made_on is daemon:
                daemon.docker("rm", "-f", name, check=False)
                made.remove((made_on, name))

    start.remove = remove
    yield start
    for daemon in (engine_py, dockerd):
        remove(daemon)


def test_a_passing_check_makes_the_container_healthy(engine_py, dockerd, run):
    seen = {}
    for daemon in (engine_py, dockerd):
        name = run(daemon, "--health-cmd", "echo fine", "--health-interval", "1s", "busybox", "sleep", "60")
        health = wait_for_status(daemon, name, "healthy")
        status = daemon.docker("ps", "--filter", f"name={name}", "--format", "{{.Status}}").stdout
        filtered = {state: daemon.docker("ps", "-q", "--filter", f"name={name}", "--filter",
                                         f"health={state}").stdout.strip() != ""
                    for state in ("healthy", "unhealthy", "starting", "none")}
        config = inspect(daemon, name)["Config"]["Healthcheck"]
        seen[daemon] = (masked(health), re.sub(r"Up .* \(", "Up (", status.strip()), filtered, config)
    assert seen[engine_py] == seen[dockerd]
    assert seen[engine_py][0]["Log"][-1]["Output"] == "fine\n"
    assert seen[engine_py][1] == "Up (healthy)"


def test_a_failing_check_makes_it_unhealthy_after_its_retries(engine_py, dockerd, run):
    seen = {}
    for daemon in (engine_py, dockerd):
        since = f"{time.time() - 1:.3f}"
        name = run(daemon, "--health-cmd", "echo bad >&2; exit 1", "--health-interval", "1s", "--health-retries", "2",
                   "busybox", "sleep", "60")
        health = wait_for_status(daemon, name, "unhealthy")
        events = daemon.docker("events", "--since", since, "--until", f"{time.time():.3f}", "--filter",
                               f"container={name}", "--filter", "event=health_status",
                               "--format", "{{.Action}}").stdout.split("\n")
        unhealthy = daemon.docker("ps", "-q", "--filter", f"name={name}", "--filter", "health=unhealthy").stdout
        seen[daemon] = (masked(health) | {"FailingStreak": health["FailingStreak"] >= 2}, events, bool(unhealthy))
    assert seen[engine_py] == seen[dockerd]
    assert seen[engine_py][0]["Log"][-1]["Output"] == "bad\n" and seen[engine_py][2]


def test_a_probe_over_its_timeout_fails_with_dockerds_words(engine_py, dockerd, run):
    seen = {}
    for daemon in (engine_py, dockerd):
        name = run(daemon, "--health-cmd", "sleep 30", "--health-interval", "1s", "--health-timeout", "1s",
                   "--health-retries", "1", "busybox", "sleep", "60")
        seen[daemon] = masked(wait_for_status(daemon, name, "unhealthy"))
    assert seen[engine_py] == seen[dockerd]
    assert seen[engine_py]["Log"][-1]["Output"] == "Health check exceeded timeout (1s)"


def test_the_images_healthcheck_applies_and_no_healthcheck_removes_it(engine_py, dockerd, run):
    seen = {}
    for daemon in (engine_py, dockerd):
        image = f"health-image-{uuid.uuid4().hex[:8]}"
        daemon.docker("build", "-q", "-t", image, "-", input="FROM busybox\n"
                      "HEALTHCHECK --interval=1s --retries=1 CMD [\"sh\", \"-c\", \"exit 2\"]\n")
        try:
            checked = run(daemon, image, "sleep", "60")
            health = wait_for_status(daemon, checked, "unhealthy")
            unchecked = run(daemon, "--no-healthcheck", image, "sleep", "60")
            overridden = run(daemon, "--health-cmd", "true", "--health-interval", "1s", image, "sleep", "60")
            wait_for_status(daemon, overridden, "healthy")
            seen[daemon] = (masked(health), inspect(daemon, checked)["Config"]["Healthcheck"],
                            inspect(daemon, unchecked)["State"].get("Health"),
                            inspect(daemon, unchecked)["Config"]["Healthcheck"],
                            inspect(daemon, overridden)["Config"]["Healthcheck"],
                            daemon.docker("ps", "-q", "--filter", f"name={unchecked}", "--filter",
                                          "health=none").stdout != "")
        finally:
            run.remove(daemon)
            daemon.docker("rmi", image, check=False)
    assert seen[engine_py] == seen[dockerd]


def test_checks_resume_after_a_kill_9_of_the_engine():
    """Restored running containers are starting again and probed on (dockerd's restore)."""
    from engine_daemon import running_engine
    from engine.store.record import parse_go_time

    with running_engine() as engine:
        engine.docker("run", "-d", "--name", "checked", "--health-cmd", "true", "--health-interval", "1s",
                      "busybox", "sleep", "600")
        assert wait_for_status(engine, "checked", "healthy")["Status"] == "healthy"
        engine.kill()
        restarted_ns = time.time_ns()
        engine.start()
        deadline = time.monotonic() + DEADLINE
        while True:
            health = inspect(engine, "checked")["State"]["Health"]
            probed_since = [entry for entry in health["Log"] if parse_go_time(entry["Start"]) > restarted_ns]
            if (probed_since and health["Status"] == "healthy") or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert probed_since and health["Status"] == "healthy"
        assert inspect(engine, "checked")["State"]["Status"] == "running"


def test_a_stopped_container_keeps_its_last_health(engine_py, dockerd, run):
    seen = {}
    for daemon in (engine_py, dockerd):
        name = run(daemon, "--health-cmd", "true", "--health-interval", "1s", "busybox", "sleep", "60")
        wait_for_status(daemon, name, "healthy")
        daemon.docker("stop", "-t", "0", name)
        health = inspect(daemon, name)["State"]["Health"]
        status = daemon.docker("ps", "-a", "--filter", f"name={name}", "--format", "{{.Status}}").stdout
        filtered = [state for state in ("healthy", "unhealthy", "starting", "none")
                    if daemon.docker("ps", "-aq", "--filter", f"name={name}", "--filter", f"health={state}").stdout]
        seen[daemon] = (health["Status"], health["FailingStreak"], re.sub(r"\) .*", ")", status.strip()), filtered)
    assert seen[engine_py] == seen[dockerd]


def test_a_container_not_yet_probed_is_starting(engine_py, dockerd, run):
    seen = {}
    for daemon in (engine_py, dockerd):
        name = run(daemon, "--health-cmd", "true", "--health-interval", "1h", "busybox", "sleep", "60")
        status = daemon.docker("ps", "--filter", f"name={name}", "--format", "{{.Status}}").stdout
        starting = daemon.docker("ps", "-q", "--filter", f"name={name}", "--filter", "health=starting").stdout
        seen[daemon] = (inspect(daemon, name)["State"]["Health"], re.sub(r"Up .* \(", "Up (", status.strip()),
                        bool(starting))
    assert seen[engine_py] == seen[dockerd]
    assert seen[engine_py][1:] == ("Up (health: starting)", True)
