"""The log promise of the engine (issue: "Survival — beyond dockerd"): a
container printing continuously keeps printing, and every line is kept,
while its manager is killed with -9 and restarted. The container's output
goes through a `binary://` log URI to engine-py-logger, a child of the
task's shim, so nothing on the way depends on a daemon being alive.

Run with containerd's own `ctr` against containerd-py and real containerd.
dockerd with live-restore, for comparison, blocks such a container as soon
as its FIFO is full, for as long as dockerd is down.
"""
import importlib.util
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from engine.logs import FileConfig, jsonfile, log_path, log_uri
from leaks import kill_processes_mentioning, mounts_under
from logs_fixtures import DEADLINE, GROWTH_WHILE_DOWN, PIPE_CAPACITY, PRINTER, entries_of, wait_growth

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(shutil.which("ctr") is None, reason="ctr (Debian package containerd) not installed")]

REPO = Path(__file__).resolve().parents[2]
IMAGE = "docker.io/library/busybox:latest"


def _daemons():
    """containerd_py's test daemons (Process, the argv of each), loaded from its
    conftest under another name: importing it as `conftest` here would shadow it."""
    spec = importlib.util.spec_from_file_location("containerd_py_daemons", REPO / "tests/containerd_py/conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


daemons = _daemons()


class Manager:
    """containerd-py or containerd in a directory of its own, killed and restarted at will."""

    def __init__(self, kind: str):
        self.workdir = tempfile.mkdtemp(prefix=f"logs-{kind}-")
        self.argv = (daemons.our_daemon_argv if kind == "containerd-py" else daemons._containerd_argv)(self.workdir)
        self.address = f"{self.workdir}/containerd.sock"
        self.proc = None
        self.start()

    def start(self):
        self.proc = daemons.Process(self.argv, self.workdir, self.address)
        self.proc.wait_ready()

    def kill9(self):
        self.proc.proc.kill()
        self.proc.proc.wait()

    def close(self) -> list[str]:
        left = daemons._remove_tasks(self.address) if self.proc.proc.poll() is None else []
        self.proc.stop()
        left += kill_processes_mentioning(self.workdir)
        leaked = mounts_under(self.workdir)
        for point in reversed(leaked):
            subprocess.run(["umount", "-l", point], check=False)
        shutil.rmtree(self.workdir, ignore_errors=True)
        return left + [f"mount {m}" for m in leaked]


busybox_tar = daemons.busybox_tar  # its fixtures, used here by name
ns = daemons.ns


@pytest.fixture(params=["containerd-py", "containerd"])
def manager(request, ns):
    if request.param == "containerd" and shutil.which("containerd") is None:
        pytest.skip("containerd is not installed")
    m = Manager(request.param)
    m.ctr = daemons.Ctr(m.address, ns)
    try:
        yield m
    finally:
        left = m.close()
        assert not left, f"left behind: {left}"


def test_no_line_lost_and_no_stall_while_the_manager_is_killed(manager, busybox_tar):
    ctr = manager.ctr
    ctr("images", "import", str(busybox_tar))
    log = log_path(f"{manager.workdir}/containers", "printer")
    os.makedirs(os.path.dirname(log))
    ctr("run", "-d", "--log-uri", log_uri(log, FileConfig(256 * 1024, 1000)), IMAGE, "printer", "sh", "-c", PRINTER)
    wait_growth(log, PIPE_CAPACITY)

    killed_at = time.time_ns()
    manager.kill9()
    wait_growth(log, GROWTH_WHILE_DOWN)
    restarted_at = time.time_ns()
    manager.start()
    wait_growth(log, PIPE_CAPACITY)

    ctr("tasks", "kill", "-s", "SIGKILL", "printer")
    deadline = time.monotonic() + DEADLINE
    while "STOPPED" not in ctr("tasks", "ls").stdout:
        assert time.monotonic() < deadline, ctr("tasks", "ls").stdout
        time.sleep(0.05)
    ctr("tasks", "rm", "printer")  # containerd's shim stops the logger here; ours at the exit
    ctr("containers", "rm", "printer")

    files = jsonfile.rotated_files(log)
    assert len(files) > 1  # rotated on the way
    raw = entries_of(*files)  # every line a JSON object, whole
    entries = list(jsonfile.read(log))
    assert len(entries) == len(raw)
    numbers = sorted(int(e.line.split()[0]) for e in entries)
    assert numbers == list(range(1, len(numbers) + 1)), "a line is missing"
    for e in entries:
        assert e.stream == ("stderr" if int(e.line.split()[0]) % 10 == 0 else "stdout")
        assert e.line.endswith(b"\n")
    down = [e for e in entries if killed_at < e.time < restarted_at]
    # Far more than a pipe holds was printed while nothing but the logger read it.
    assert sum(len(e.line) for e in down) > 4 * PIPE_CAPACITY
    assert [e.time for e in entries if e.stream == "stdout"] == sorted(e.time for e in entries if e.stream == "stdout")


def test_a_logging_binary_gets_what_containerd_gives_it(manager, busybox_tar):
    """containerd's contract for binary:// (its pkg/process/io.go): the query's
    keys and values as arguments (decoded as Go's url.ParseQuery does; in
    any order, as they come from a Go map), CONTAINER_ID and
    CONTAINER_NAMESPACE, stdout on fd 3, stderr on fd 4, readiness on fd 5."""
    where = Path(manager.workdir) / "a dir"  # what runs from there is ended with the manager
    where.mkdir()
    script = where / "logging binary"
    script.write_text(f"#!/bin/sh\nexec 5>&-\necho \"$CONTAINER_NAMESPACE/$CONTAINER_ID\" > '{where}/env'\n"
                      f"printf '%s\\n' \"$@\" > '{where}/args'\n"
                      f"cat <&4 > '{where}/err' &\ncat <&3 > '{where}/out'\nwait\n")
    script.chmod(0o755)
    ctr = manager.ctr
    ctr("images", "import", str(busybox_tar))
    uri = f"binary://{quote(str(script))}?only=one&spaced=a+b%26c%2Fd"
    ctr("run", "--log-uri", uri, IMAGE, "l1", "sh", "-c", "echo out; echo err >&2")
    ctr("containers", "rm", "l1")
    assert (where / "env").read_text() == f"{ctr.ns}/l1\n"
    args = (where / "args").read_text().splitlines()
    assert sorted(zip(args[::2], args[1::2])) == [("only", "one"), ("spaced", "a b&c/d")]
    assert (where / "out").read_text() == "out\n" and (where / "err").read_text() == "err\n"


@pytest.mark.parametrize("manager", ["containerd-py"], indirect=True)
def test_the_log_is_whole_when_the_exit_is_published(manager, busybox_tar):
    """containerd-py's shim records the exit only after the logger wrote what
    the pipes held (real containerd waits for it at the task's delete)."""
    ctr = manager.ctr
    ctr("images", "import", str(busybox_tar))
    log = log_path(f"{manager.workdir}/containers", "burst")
    os.makedirs(os.path.dirname(log))
    ctr("run", "-d", "--log-uri", log_uri(log), IMAGE, "burst", "sh", "-c",
        'i=0; while [ $i -lt 20000 ]; do i=$((i+1)); echo "$i"; done; echo done >&2')
    deadline = time.monotonic() + DEADLINE
    while "STOPPED" not in ctr("tasks", "ls").stdout:
        assert time.monotonic() < deadline, ctr("tasks", "ls").stdout
        time.sleep(0.01)
    entries = list(jsonfile.read(log))
    ctr("tasks", "rm", "burst")
    ctr("containers", "rm", "burst")
    assert sorted(int(e.line) for e in entries if e.stream == "stdout") == list(range(1, 20001))
    assert [e.line for e in entries if e.stream == "stderr"] == [b"done\n"]


@pytest.mark.parametrize("manager", ["containerd-py"], indirect=True)
def test_the_logger_is_stopped_and_waited_for_before_the_exit(manager, busybox_tar):
    """A logging binary that takes its time after SIGTERM: the task is
    reported stopped only once it has exited."""
    tmp_path = Path(manager.workdir)  # what runs from there is ended with the manager
    script = tmp_path / "slow-logger"
    script.write_text(f"#!/bin/sh\ntrap 'sleep 1; echo stopped > {tmp_path}/marker; exit 0' TERM\n"
                      "exec 5>&-\ncat <&3 >/dev/null & cat <&4 >/dev/null &\nwhile :; do sleep 0.1; done\n")
    script.chmod(0o755)
    ctr = manager.ctr
    ctr("images", "import", str(busybox_tar))
    ctr("run", "-d", "--log-uri", f"binary://{script}", IMAGE, "slow", "true")
    deadline = time.monotonic() + DEADLINE
    while "STOPPED" not in ctr("tasks", "ls").stdout:
        assert time.monotonic() < deadline, ctr("tasks", "ls").stdout
        time.sleep(0.01)
    marked = (tmp_path / "marker").exists()
    ctr("tasks", "rm", "slow")
    ctr("containers", "rm", "slow")
    assert marked
