"""Restart policies as dockerd 20.10's restartmanager applies them: the
decision at a container's exit (``no``, ``always``, ``unless-stopped``,
``on-failure[:N]``), its back-off (100 ms doubling per restart, back to
100 ms once the container ran 10 s, at most a minute) and the pending
restart's timer, which a manual stop or kill cancels.

The back-off and the cancel live in memory only, as dockerd's: an engine
restart starts them afresh, so ``always`` brings back a container stopped by
hand, while ``unless-stopped`` reads the record's HasBeenManuallyStopped.
"""
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.errors import InvalidParameter
from engine.store import Container
from engine.store.record import ZERO_TIME, parse_go_time

INITIAL_DELAY = 0.1  # seconds, dockerd's defaultTimeout
MAX_DELAY = 60.0  # dockerd's maxRestartTimeout
RESET_AFTER = 10.0  # seconds of running that bring the back-off back to INITIAL_DELAY

# (delay, action) -> a cancel; threading.Timer's shape, faked in unit tests
Schedule = Callable[[float, Callable[[], None]], Callable[[], None]]


def policy_of(host_config: dict) -> tuple[str, int]:
    """(Name, MaximumRetryCount); an empty name is "no"."""
    policy = host_config.get("RestartPolicy") or {}
    return policy.get("Name") or "no", policy.get("MaximumRetryCount") or 0


def check_policy(host_config: dict) -> None:
    """dockerd's create-time checks of HostConfig.RestartPolicy, in its words."""
    name, retries = policy_of(host_config)
    if name in ("always", "unless-stopped", "no"):
        if retries != 0:
            raise InvalidParameter(f"maximum retry count cannot be used with restart policy '{name}'")
    elif name == "on-failure":
        if retries < 0:
            raise InvalidParameter("maximum retry count cannot be negative")
    else:
        raise InvalidParameter(f"invalid restart policy '{name}'")
    if name != "no" and host_config.get("AutoRemove"):
        raise InvalidParameter("can't create 'AutoRemove' container with restart policy")


def should_restart(host_config: dict, exit_code: int, manually_stopped: bool, restart_count: int) -> bool:
    """The policy's answer alone (restartmanager.ShouldRestart's switch)."""
    name, retries = policy_of(host_config)
    if name == "always":
        return True
    if name == "unless-stopped":
        return not manually_stopped
    if name == "on-failure":
        return exit_code != 0 and (retries == 0 or restart_count < retries)
    return False


def ran_for(record: Container) -> float:
    """Seconds between the last start and the last exit, as dockerd's executionDuration."""
    if ZERO_TIME in (record.state.started_at, record.state.finished_at):
        return 0.0
    return (parse_go_time(record.state.finished_at) - parse_go_time(record.state.started_at)) / 1e9


def _thread_timer(delay: float, action: Callable[[], None]) -> Callable[[], None]:
    timer = threading.Timer(delay, action)
    timer.daemon = True
    timer.start()
    return timer.cancel


@dataclass
class _Manager:
    """One container's restartmanager: its back-off, whether a manual stop
    cancelled it, and the cancel of a restart waiting out its delay."""
    delay: float = 0.0
    cancelled: bool = False
    pending: Callable[[], None] | None = field(default=None)


class RestartPolicies:
    """The restart managers of all containers. The container service calls
    ``on_exit`` at every exit under the container's lock and ``due`` when
    the timer fires, again under it, so a stop in between wins."""

    def __init__(self, schedule: Schedule = _thread_timer):
        self._schedule = schedule
        self._managers: dict[str, _Manager] = {}

    def on_exit(self, record: Container, restart: Callable[[], None]) -> float | None:
        """The delay after which ``restart`` is called (scheduled already),
        or None when the policy lets the container stay exited. The record
        holds the exit (ExitCode, FinishedAt) and its RestartCount so far."""
        if policy_of(record.host_config)[0] == "no":
            return None
        manager = self._managers.setdefault(record.id, _Manager())
        if manager.cancelled or manager.pending is not None:
            return None
        if ran_for(record) >= RESET_AFTER:
            manager.delay = 0.0
        manager.delay = INITIAL_DELAY if manager.delay == 0 else min(manager.delay * 2, MAX_DELAY)
        if not should_restart(record.host_config, record.state.exit_code, record.has_been_manually_stopped,
                              record.restart_count):
            return None
        manager.pending = self._schedule(manager.delay, restart)
        return manager.delay

    def due(self, container_id: str) -> bool:
        """The timer fired: True when the restart is still wanted (not cancelled meanwhile)."""
        manager = self._managers.get(container_id)
        if manager is None or manager.pending is None:
            return False
        manager.pending = None
        return True

    def pending(self, container_id: str) -> bool:
        manager = self._managers.get(container_id)
        return manager is not None and manager.pending is not None

    def cancel(self, container_id: str) -> bool:
        """dockerd's ExitOnNext (a stop, a kill): no restart until the next
        manual start; True when a restart waiting out its delay was cancelled."""
        manager = self._managers.setdefault(container_id, _Manager())
        manager.cancelled = True
        cancel, manager.pending = manager.pending, None
        if cancel is not None:
            cancel()
        return cancel is not None

    def reset(self, container_id: str) -> None:
        """A manual start or a removal: a fresh manager next time (dockerd's ResetRestartManager)."""
        manager = self._managers.pop(container_id, None)
        if manager is not None and manager.pending is not None:
            manager.pending()

    def close(self) -> None:
        """The engine stops: no restart fires; the records stay as they are."""
        for container_id in list(self._managers):
            self.reset(container_id)

    @staticmethod
    def wanted_at_engine_start(record: Container) -> bool:
        """dockerd's restore: a container that ran before and exited since is
        started again when its policy says so, with a fresh back-off (so
        ``always`` ignores a manual stop; ``unless-stopped`` does not)."""
        return (record.has_been_started_before and not record.state.running
                and not record.state.removal_in_progress and not record.state.dead
                and should_restart(record.host_config, record.state.exit_code,
                                   record.has_been_manually_stopped, record.restart_count))
