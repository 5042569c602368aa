"""The shim manager's side of a daemon killed mid-create, without a daemon or root: the
real shim, left as a killed daemon leaves it, over a fake runtime whose create leaves a
`sleep` behind; the shim manager of a "restarted daemon" then finds out what became of it."""
import os
import select
import signal
import subprocess
import threading

import pytest

from containerd_py.tasks import shim_manager
from containerd_py.tasks.bundle import Bundle
from containerd_py.tasks.runtime import Runtime
from containerd_py.tasks.shim_manager import ShimManager, shim_argv
from containerd_py.tasks.task import Task
from containerd_py.types import Stdio

HANG_GUARD = 30  # seconds; only guards a hang, never asserted on


class Gate:
    """Where the fake runtime's create waits: it says it has arrived, then waits to be let go."""

    def __init__(self, directory):
        self.entered, self.gate = directory / "entered", directory / "gate"
        os.mkfifo(self.entered)
        os.mkfifo(self.gate)
        self._arrivals = os.open(self.entered, os.O_RDONLY | os.O_NONBLOCK)

    def shell(self) -> str:
        """The lines of a runtime script that stop at this gate."""
        return f"echo > {self.entered}; read _ < {self.gate}"

    def arrived(self) -> None:
        assert select.select([self._arrivals], [], [], HANG_GUARD)[0], "the runtime's create never began"

    def release(self) -> None:
        """Opening the gate for writing waits for the runtime to open it for reading."""
        def write():
            with open(self.gate, "w") as f:
                f.write("go\n")
        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        writer.join(HANG_GUARD)
        assert not writer.is_alive(), "the runtime's create never came to the gate"

    def close(self) -> None:
        os.close(self._arrivals)


@pytest.fixture
def left(tmp_path):
    """make(go, exit_status) -> the init of a task whose shim a killed daemon left, let go (one
    byte on its stdin) or not, and the Gate its runtime's create waits at (then exiting with
    exit_status). The shims and what they started are killed at the end."""
    shims, gates = [], []

    def make(go: bool, exit_status: int = 0):
        gate = Gate(tmp_path)
        gates.append(gate)
        runtime = tmp_path / "runtime"
        runtime.write_text(f"""#!/bin/sh
while [ $# -gt 0 ]; do [ "$1" = --pid-file ] && pid_file=$2; shift; done
{gate.shell()}
[ {exit_status} = 0 ] || exit {exit_status}
sleep 1000 </dev/null >/dev/null 2>&1 &
echo $! > "$pid_file"
""")
        runtime.chmod(0o755)
        os.makedirs(tmp_path / "bundle")
        task = Task("ns", "c1", Bundle(str(tmp_path / "bundle")), Runtime(str(runtime), str(tmp_path / "root")),
                    Stdio(), False)
        shim = subprocess.Popen(shim_argv(task.init), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, cwd=task.bundle.path, start_new_session=True)
        shims.append(shim)
        task.init.shim = shim.pid
        if go:
            shim.stdin.write(b"1")
            shim.stdin.flush()
        shim.stdin.close()  # the daemon is gone: its pipes with it
        shim.stdout.close()
        return task.init, gate

    yield make
    for gate in gates:
        gate.close()
    for shim in shims:
        try:
            os.killpg(shim.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        shim.wait()


@pytest.fixture
def reading(monkeypatch):
    """Set once the shim manager waits for a report on a shim's pipe."""
    event = threading.Event()
    read_report = shim_manager._read_report

    def read_after_saying_so(fd):
        event.set()
        return read_report(fd)
    monkeypatch.setattr(shim_manager, "_read_report", read_after_saying_so)
    return event


def _reattach_releasing_once_read(p, gate, reading, on_exit=lambda *a: None) -> None:
    """Restore's reattach of p while the runtime's create waits, let go once the report is waited for."""
    gate.arrived()
    restore = threading.Thread(target=ShimManager(on_exit).reattach, args=(p,))
    restore.start()
    assert reading.wait(HANG_GUARD)
    gate.release()
    restore.join(HANG_GUARD)


def test_a_shim_never_let_go_does_nothing_and_ends(left):
    p, _ = left(go=False)
    ShimManager(lambda *a: None).reattach(p)
    assert (p.pid, p.shim, p.status()) == (0, 0, "created")
    assert not os.path.exists(p.file("pid"))


def test_the_report_of_a_shim_still_creating_is_read_from_its_pipe(left, reading):
    p, gate = left(go=True)
    got, ended = [], threading.Event()
    _reattach_releasing_once_read(p, gate, reading, lambda p, status, at: (got.append(status), ended.set()))
    with open(p.file("pid")) as f:
        assert p.pid == int(f.read()) and p.status() == "created"
    os.kill(p.pid, signal.SIGKILL)
    assert ended.wait(HANG_GUARD) and got == [137]  # watched again, to the shim's exit record


def test_a_failed_create_reported_to_a_restarted_daemon_leaves_no_pid_and_no_shim(left, reading):
    p, gate = left(go=True, exit_status=3)
    shim = p.shim
    _reattach_releasing_once_read(p, gate, reading)
    assert (p.pid, p.shim) == (0, 0)
    assert not shim_manager._is_shim_of(shim, p)
