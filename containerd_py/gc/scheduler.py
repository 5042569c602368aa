"""When to collect: soon after something was deleted (schedule_delay), once
after start (startup_delay), and at once when a caller asks to wait (sync)."""
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(self, collect: Callable[[], object], schedule_delay: float, startup_delay: float):
        self._collect = collect
        self._delay = schedule_delay
        self._due: float | None = time.monotonic() + startup_delay
        self._cond = threading.Condition()
        self._running = threading.Lock()  # one collection at a time
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name="gc-scheduler", daemon=True)
        self._thread.start()

    def deleted(self, sync: bool = False) -> None:
        """Notes a deletion; with sync, collects before returning."""
        if sync:
            self.collect_now()
            return
        with self._cond:
            due = time.monotonic() + self._delay
            self._due = due if self._due is None else min(self._due, due)
            self._cond.notify()

    def collect_now(self) -> None:
        with self._running:
            self._collect()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (self._due is None or self._due > time.monotonic()):
                    self._cond.wait(None if self._due is None else self._due - time.monotonic())
                if self._stopped:
                    return
                self._due = None
            try:
                self.collect_now()
            except Exception:  # noqa: BLE001 - a failed collection must not end the scheduler
                log.exception("garbage collection failed")

    def close(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._thread.join()
