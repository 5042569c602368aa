"""Containers and tasks as containerd's own `ctr` drives them: every scenario runs
against our daemon and real containerd, each with runpy-oci and with real runc as
the runtime (`--runc-binary`), and what a user sees must be the same."""
import os
import re
import shutil
import signal
import subprocess
import threading
import time

import pytest

from conftest import REPO, Ctr
from containerd_py import errors
from containerd_py.client import Client
from containerd_py.types import Stdio

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(shutil.which("ctr") is None, reason="ctr (Debian package containerd) not installed")]

IMAGE = "docker.io/library/busybox:latest"
RUNPY_OCI = str(REPO / ".venv" / "bin" / "runpy-oci")
RUNTIMES = {"runpy-oci": RUNPY_OCI, "runc": "/usr/sbin/runc"}
POLL = 0.05


class Runner(Ctr):
    """ctr for one daemon and one runtime binary, in a namespace holding the busybox image."""

    def __init__(self, address: str, ns: str, runtime: str):
        super().__init__(address, ns)
        self.runtime = runtime

    def run(self, *args, check=True):
        """`ctr run` with this runner's runtime; args are ctr run's flags, then image, id and command."""
        return self("run", "--runc-binary", self.runtime, *args, check=check)

    def status(self, cid: str) -> str:
        rows = [line.split() for line in self("tasks", "ls").stdout.splitlines()[1:]]
        return next((row[2] for row in rows if row[0] == cid), "")

    def wait_status(self, cid: str, want: str) -> None:
        deadline = time.monotonic() + 30
        while self.status(cid) != want:
            assert time.monotonic() < deadline, f"task {cid} never became {want}: {self('tasks', 'ls').stdout}"
            time.sleep(POLL)

    def remove_everything(self) -> None:
        for cid in self("tasks", "ls", "-q", check=False).stdout.split():
            self("tasks", "kill", "-s", "SIGKILL", cid, check=False)
            self("tasks", "rm", "-f", cid, check=False)
        for cid in self("containers", "ls", "-q", check=False).stdout.split():
            self("containers", "rm", cid, check=False)


@pytest.fixture(params=["containerd-py", "containerd"])
def daemon_address(request):
    return request.getfixturevalue("daemon" if request.param == "containerd-py" else "containerd").address


@pytest.fixture(params=sorted(RUNTIMES))
def runner(request, daemon_address, ns, busybox_tar):
    r = Runner(daemon_address, ns, RUNTIMES[request.param])
    r("images", "import", str(busybox_tar))
    yield r
    r.remove_everything()


def test_run_rm_prints_and_exits_with_the_status(runner):
    r = runner.run("--rm", IMAGE, "c1", "sh", "-c", "echo out; echo err >&2; exit 7", check=False)
    assert (r.returncode, r.stdout, r.stderr) == (7, "out\n", "err\n")
    assert runner("containers", "ls", "-q").stdout == ""
    assert "c1" not in runner("snapshots", "ls").stdout


def test_run_gives_the_container_its_own_pid_namespace_and_hostname(runner):
    r = runner.run("--rm", IMAGE, "c1", "sh", "-c", "echo $$; cat /proc/1/cmdline | tr '\\0' ' '; echo")
    assert r.stdout.splitlines() == ["1", "sh -c echo $$; cat /proc/1/cmdline | tr '\\0' ' '; echo "]


def test_detached_task_listed_killed_and_removed(runner):
    runner.run("-d", IMAGE, "d1", "sleep", "1000")
    assert runner.status("d1") == "RUNNING"
    (row,) = runner("tasks", "ls").stdout.splitlines()[1:]
    pid = int(row.split()[1])
    assert os.path.exists(f"/proc/{pid}")
    ps = runner("tasks", "ps", "d1").stdout.splitlines()
    assert ps[0].split() == ["PID", "INFO"] and ps[1].split() == [str(pid), "-"]
    running_rm = runner("tasks", "rm", "d1", check=False)
    assert running_rm.returncode != 0 and "running" in running_rm.stderr
    runner("tasks", "kill", "-s", "SIGKILL", "d1")
    runner.wait_status("d1", "STOPPED")
    runner("tasks", "rm", "d1")
    assert runner.status("d1") == ""
    assert runner("containers", "ls", "-q").stdout.split() == ["d1"]
    runner("containers", "rm", "d1")
    assert runner("containers", "ls", "-q").stdout == ""


def test_exec_runs_inside_the_container(runner):
    runner.run("-d", IMAGE, "e1", "sh", "-c", "echo marker > /tmp/m; exec sleep 1000")
    deadline = time.monotonic() + 10
    while True:
        r = runner("tasks", "exec", "--exec-id", "x1", "e1", "sh", "-c", "cat /tmp/m; echo $$; exit 4", check=False)
        if r.stdout.startswith("marker") or time.monotonic() > deadline:
            break
        time.sleep(POLL)  # the container's shell may not have written /tmp/m yet
    assert r.returncode == 4 and r.stdout.splitlines()[0] == "marker"
    assert int(r.stdout.splitlines()[1]) > 1  # not the container's init
    # The exec'd process was removed after it exited: its id can be used again.
    again = runner("tasks", "exec", "--exec-id", "x1", "e1", "true", check=False)
    assert again.returncode == 0, again.stderr


def test_pause_and_resume(runner):
    runner.run("-d", IMAGE, "p1", "sleep", "1000")
    runner("tasks", "pause", "p1")
    assert runner.status("p1") == "PAUSED"
    runner("tasks", "resume", "p1")
    assert runner.status("p1") == "RUNNING"


def test_run_with_a_terminal(runner):
    command = " ".join(["ctr", "--address", runner.address, "-n", runner.ns, "run", "-t", "--rm", "--runc-binary",
                        runner.runtime, IMAGE, "t1", "sh", "-c", "'tty; sleep 0.5; stty size; exit 5'"])
    r = subprocess.run(["script", "-qec", f"stty rows 30 cols 90; {command}", "/dev/null"], capture_output=True,
                       text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 5, r.stdout + r.stderr
    # (the pty's line ends are \r\r\n; ctr's console writes a NUL first, with containerd too)
    lines = [line.strip("\0^@") for line in r.stdout.replace("\r", "").splitlines() if line.strip("\0^@")]
    assert lines == ["/dev/pts/0", "30 90"]  # ctr's window size reached the container's pty


def test_log_uri_gets_both_streams(runner, tmp_path, request):
    if request.node.callspec.params["daemon_address"] == "containerd":
        # Seen in CI with either runtime: containerd 1.6's shim now and then loses
        # the stderr line of so short a task (never the file's: both streams share
        # one O_APPEND descriptor). A non-strict xfail: it passes most runs.
        request.applymarker(pytest.mark.xfail(strict=False, reason="containerd's shim sometimes drops a stream"))
    log = tmp_path / "out.log"
    runner.run("-d", "--log-uri", f"file://{log}", IMAGE, "l1", "sh", "-c", "echo out; echo err >&2")
    runner.wait_status("l1", "STOPPED")
    # containerd's shim copies the streams to the file on its own, and may
    # still be at it when the task is reported stopped (seen in CI).
    deadline = time.monotonic() + 10
    while sorted(log.read_text().split()) != ["err", "out"] and time.monotonic() < deadline:
        time.sleep(POLL)
    assert sorted(log.read_text().split()) == ["err", "out"]


def test_events_of_a_run(runner):
    seen = []
    events = subprocess.Popen(["ctr", "--address", runner.address, "events"], stdout=subprocess.PIPE, text=True)
    reader = threading.Thread(target=lambda: seen.extend(events.stdout), daemon=True)
    reader.start()
    try:
        time.sleep(0.5)  # subscribed
        runner.run("--rm", IMAGE, "v1", "true")
        deadline = time.monotonic() + 10
        while not any("/containers/delete" in line for line in seen) and time.monotonic() < deadline:
            time.sleep(POLL)
    finally:
        events.terminate()
        events.wait()
    topics = [m.group(1) for line in seen if runner.ns in line and (m := re.search(r" (/\S+) ", line))]
    for topic in ("/containers/create", "/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete",
                  "/containers/delete"):
        assert topic in topics, topics
    assert topics.index("/tasks/create") < topics.index("/tasks/start") < topics.index("/tasks/exit") \
        < topics.index("/tasks/delete")


def test_container_info_names_the_runtime_binary(runner):
    runner.run("-d", IMAGE, "i1", "sleep", "1000")
    info = runner("containers", "info", "i1").stdout
    assert '"Name": "io.containerd.runc.v2"' in info and '"SnapshotKey": "i1"' in info
    assert '"type_url": "containerd.runc.v1.Options"' in info


def test_start_twice_and_unknown_ids_are_refused(runner):
    runner.run("-d", IMAGE, "s1", "sleep", "1000")
    again = runner("tasks", "start", "s1", check=False)
    assert again.returncode != 0
    missing = runner("tasks", "kill", "nope", check=False)
    assert missing.returncode != 0 and "not found" in missing.stderr


def test_same_output_from_both_daemons(both, busybox_tar):
    """The differential: one script, each daemon, each runtime; byte-identical output and status."""
    script = "echo hi; ls /; id; hostname; exit 3"
    results = set()
    for c in both:
        c("images", "import", str(busybox_tar))
        for runtime in RUNTIMES.values():
            r = c("run", "--rm", "--runc-binary", runtime, IMAGE, "same", "sh", "-c", script, check=False)
            results.add((r.returncode, r.stdout, r.stderr))
    assert len(results) == 1, results


def test_metrics_of_a_running_task(runner):
    runner.run("-d", IMAGE, "m1", "sleep", "1000")
    out = runner("tasks", "metrics", "m1").stdout.splitlines()
    assert out[0].split() == ["ID", "TIMESTAMP"] and out[1].split()[0] == "m1"
    rows = {line.split()[0]: line.split(None, 1)[1].strip() for line in out[3:] if line.strip()}
    assert list(rows) == ["METRIC", "memory.usage_in_bytes", "memory.limit_in_bytes", "memory.stat.cache",
                          "cpuacct.usage", "cpuacct.usage_percpu", "pids.current", "pids.limit"]
    assert int(rows["memory.usage_in_bytes"]) > 0 and int(rows["cpuacct.usage"]) > 0
    assert rows["pids.current"] == "1"


def _topics_during(c: Ctr, action) -> list[str]:
    """The topics of the events of c's namespace while action runs."""
    seen = []
    events = subprocess.Popen(["ctr", "--address", c.address, "events", f"namespace=={c.ns}"],
                              stdout=subprocess.PIPE, text=True)
    threading.Thread(target=lambda: seen.extend(events.stdout), daemon=True).start()
    try:
        time.sleep(0.5)  # subscribed
        action()
        time.sleep(0.5)  # delivered
    finally:
        events.terminate()
        events.wait()
    return [m.group(1) for line in seen if (m := re.search(r" (/\S+) ", line))]


def test_image_snapshot_and_namespace_events_match_containerd(both, busybox_tar):
    def action(c):
        c("images", "import", str(busybox_tar))
        c("snapshots", "prepare", "s1", _chain(c))
        c("snapshots", "rm", "s1")
        c("images", "label", IMAGE, "a=b")
        c("images", "rm", IMAGE)
    ours, theirs = (_topics_during(c, lambda c=c: action(c)) for c in both)
    assert ours == theirs, (ours, theirs)
    assert "/images/create" in ours and "/snapshot/prepare" in ours and "/images/delete" in ours


def _chain(c: Ctr) -> str:
    """The committed snapshot of the busybox image (its only layer)."""
    rows = [line.split() for line in c("snapshots", "ls").stdout.splitlines()[1:]]
    return next(row[0] for row in rows if row[-1] == "Committed")


def test_out_of_memory_is_reported(runner):
    hog = "a=$(head -c 100000000 /dev/zero | tr '\\0' x); echo survived"
    topics = _topics_during(runner, lambda: runner.run("--rm", "--memory-limit", str(16 << 20), IMAGE, "o1",
                                                       "sh", "-c", hog, check=False))
    assert "/tasks/oom" in topics and topics.index("/tasks/oom") < topics.index("/tasks/exit"), topics


def test_a_signal_to_the_init_goes_to_its_pid_and_only_kill_all_runs_the_runtime(daemon, ns, busybox_tar, tmp_path):
    """A runtime `kill` of one process is a kill(2) of its pid: our daemon
    signals the init itself (as it does an exec), and spawns the runtime
    only for --all, which needs the container's cgroup."""
    calls = tmp_path / "runtime-calls"
    wrapper = tmp_path / "logging-runtime"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> {calls}\nexec {RUNPY_OCI} "$@"\n')
    wrapper.chmod(0o755)
    runner = Runner(daemon.address, ns, str(wrapper))
    runner("images", "import", str(busybox_tar))
    try:
        for cid in ("k1", "k2"):
            runner.run("-d", IMAGE, cid, "sleep", "1000")
        runner("tasks", "kill", "-s", "SIGKILL", "k1")
        runner("tasks", "kill", "-a", "-s", "SIGKILL", "k2")
        for cid in ("k1", "k2"):
            runner.wait_status(cid, "STOPPED")
        kills = [line.split() for line in calls.read_text().splitlines() if "kill" in line.split()]
        assert [args[args.index("kill"):] for args in kills] == [["kill", "--all", "k2", "9"]]
        assert runner("tasks", "kill", "k1", check=False).stderr.strip().endswith("not found")
        runner.run("-d", IMAGE, "k3", "sleep", "1000")
        client = Client(daemon.address, ns)
        try:
            client.tasks.exec("k3", "added", {"args": ["true"], "cwd": "/"}, Stdio())
            with pytest.raises(errors.FailedPrecondition, match="process not created"):   # as containerd's shim says
                client.tasks.kill("k3", signal.SIGKILL, exec_id="added")
        finally:
            client.close()
        assert runner.status("k3") == "RUNNING"
    finally:
        runner.remove_everything()
