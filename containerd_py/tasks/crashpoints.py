"""Named points of task creation where a test can have the daemon kill itself
(`CONTAINERD_PY_CRASH_AT=NAME` in its environment), to prove that a restarted
daemon mends what a `kill -9` there leaves (tests/containerd_py/test_tasks_crash.py)."""
import os
import signal

_AT = os.environ.get("CONTAINERD_PY_CRASH_AT", "")


def reached(point: str) -> None:
    if point == _AT:
        os.kill(os.getpid(), signal.SIGKILL)
