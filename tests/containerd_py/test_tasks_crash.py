"""Crash gaps of task creation: a `kill -9` of the daemon at any point of `ctr run -d`
leaves a task that a restarted daemon either finds with its real pid or removes
whole (shim ended, runtime state deleted, rootfs unmounted, bundle removed), and
`ctr tasks rm -f` works on what it finds."""
import os
import subprocess
import time

import pytest

from conftest import Client, Process, mounts_under, our_daemon_argv, running
from containerd_py.api.containerd.services import tasks_pb2, tasks_pb2_grpc
from containerd_py.api.containerd.types import task_pb2
from test_shim_manager import Gate
from test_tasks_ctr import IMAGE, RUNPY_OCI, Runner

pytestmark = pytest.mark.root

HANG_GUARD = 60  # seconds; only guards a hang, never asserted on
BUNDLES = "state/io.containerd.runtime.v2.task"
# The daemon's named points of create and start (containerd_py/tasks/crashpoints.py), in order.
CRASH_POINTS = ["bundle-made", "shim-recorded", "shim-reported", "created", "started"]


def _restart(daemon: Process, argv_for) -> Process:
    """Starts the daemon again on the killed one's directory (the fixture stops the new one)."""
    if os.path.exists(daemon.address):
        os.unlink(daemon.address)
    again = Process(argv_for(daemon.workdir), daemon.workdir, daemon.address)
    daemon.proc = again.proc
    return again


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def _assert_found_or_gone(r: Runner, workdir: str, runtime_root: str, cid: str) -> None:
    """The task is listed with a live pid and a status true to it, then `rm -f` removes it; or it is
    not listed and nothing of it is left. Either way no shim, bundle, rootfs mount or runtime state
    stays."""
    rows = {row.split()[0]: row.split()[1:] for row in r("tasks", "ls").stdout.splitlines()[1:]}
    if cid in rows:
        pid, status = int(rows[cid][0]), rows[cid][1]
        assert pid > 0 and _cmdline(pid), f"task {cid} listed with pid {pid}, which is not running"
        assert status == ("RUNNING" if _cmdline(pid).startswith(b"sleep") else "CREATED")
        r("tasks", "rm", "-f", cid)
    assert r("tasks", "ls", "-q").stdout == ""
    bundle = os.path.join(workdir, BUNDLES, r.ns, cid)
    assert not os.path.exists(bundle) and not mounts_under(bundle)
    assert not [e for e in os.listdir("/proc") if e.isdigit() and bundle.encode() in _cmdline(int(e))], "a shim is left"
    assert not os.path.exists(os.path.join(runtime_root, cid))
    r("containers", "rm", cid)


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_a_kill_9_at_each_point_of_create_is_mended_by_a_restart(point, ns, busybox_tar, monkeypatch):
    monkeypatch.setenv("CONTAINERD_PY_CRASH_AT", point)
    with running(our_daemon_argv, "containerd-py-crash") as daemon:
        monkeypatch.delenv("CONTAINERD_PY_CRASH_AT")  # the restarted daemon runs to the end
        r = Runner(daemon.address, ns, RUNPY_OCI)
        r("images", "import", str(busybox_tar))
        assert r.run("-d", IMAGE, "c1", "sleep", "1000", check=False).returncode != 0
        assert daemon.proc.wait(timeout=HANG_GUARD) == -9
        _restart(daemon, our_daemon_argv).wait_ready()
        try:
            _assert_found_or_gone(r, daemon.workdir, f"{daemon.workdir}/state/runtime/runpy-oci/{ns}", "c1")
        finally:
            r.remove_everything()


@pytest.mark.parametrize("point", ["exec-shim-recorded", "exec-shim-reported"])
def test_a_kill_9_during_an_exec_start_is_mended_by_a_restart(point, ns, busybox_tar, monkeypatch):
    """The exec is found running with its pid, or never started (as a failed start leaves it)."""
    monkeypatch.setenv("CONTAINERD_PY_CRASH_AT", point)
    with running(our_daemon_argv, "containerd-py-crash") as daemon:
        monkeypatch.delenv("CONTAINERD_PY_CRASH_AT")
        r = Runner(daemon.address, ns, RUNPY_OCI)
        r("images", "import", str(busybox_tar))
        try:
            r.run("-d", IMAGE, "c1", "sleep", "1000")
            # ctr waits for the output of an exec it failed to start (its FIFOs): not for us to wait
            execing = subprocess.Popen(["ctr", "--address", daemon.address, "-n", ns, "tasks", "exec", "--detach",
                                        "--exec-id", "e1", "c1", "sleep", "2000"], stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            assert daemon.proc.wait(timeout=HANG_GUARD) == -9
            execing.kill()
            execing.wait()
            _restart(daemon, our_daemon_argv).wait_ready()
            client = Client(daemon.address)
            try:
                e1 = tasks_pb2_grpc.TasksStub(client.channel).Get(
                    tasks_pb2.GetRequest(container_id="c1", exec_id="e1"), metadata=client.md(ns)).process
            finally:
                client.close()
            if point == "exec-shim-recorded":
                assert (e1.pid, e1.status) == (0, task_pb2.CREATED)
            else:
                assert e1.status == task_pb2.RUNNING and _cmdline(e1.pid) == b"sleep\x002000\x00"
        finally:
            r.remove_everything()


def _links(pid: int) -> set[str]:
    links = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            links.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            continue
    return links


def _shim_report_pipe_held_by(daemon_pid: int, workdir: str) -> bool:
    """The daemon has opened the report pipe of a shim that is still creating (the shim's one
    anonymous pipe: its stdin pipe is /dev/null by then)."""
    shims = [int(e) for e in os.listdir("/proc") if e.isdigit() and b"containerd-py-shim" in _cmdline(int(e))
             and workdir.encode() in _cmdline(int(e))]
    pipes = {link for shim in shims for link in _links(shim) if link.startswith("pipe:")}
    return bool(pipes & _links(daemon_pid))


def test_a_kill_9_while_the_runtime_creates_is_mended_by_a_restart(ns, busybox_tar, tmp_path):
    """The runtime's create is held until the daemon is dead and a new one waits for the shim's
    report: the task is found with the pid the shim reports. (Real containerd 1.6 is no oracle
    here: it kills the runtime's create with the call, then leaves its shim and bundle behind.)"""
    gate = Gate(tmp_path)
    runtime = tmp_path / "held-runtime"
    runtime.write_text(f"#!/bin/sh\n# create waits at the gate; every verb is runpy-oci's\n"
                       f"for a; do [ \"$a\" = create ] && {{ {gate.shell()}; break; }}; done\n"
                       f"exec {RUNPY_OCI} \"$@\"\n")
    runtime.chmod(0o755)
    with running(our_daemon_argv, "containerd-py-crash") as daemon:
        r = Runner(daemon.address, ns, str(runtime))
        r("images", "import", str(busybox_tar))
        run = None
        try:
            run = subprocess.Popen(["ctr", "--address", daemon.address, "-n", ns, "run", "-d", "--runc-binary",
                                    str(runtime), IMAGE, "c1", "sleep", "1000"], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            gate.arrived()
            daemon.proc.kill()
            daemon.proc.wait()
            again = _restart(daemon, our_daemon_argv)
            end = time.monotonic() + HANG_GUARD
            while not _shim_report_pipe_held_by(again.proc.pid, daemon.workdir):
                assert again.proc.poll() is None and time.monotonic() < end, again.log()
                time.sleep(0.05)
            gate.release()
            again.wait_ready()
            run.wait(timeout=HANG_GUARD)
            rows = {row.split()[0]: row.split()[1:] for row in r("tasks", "ls").stdout.splitlines()[1:]}
            assert rows["c1"][1] == "CREATED"
            _assert_found_or_gone(r, daemon.workdir, f"{daemon.workdir}/state/runtime/held-runtime/{ns}", "c1")
        finally:
            gate.close()
            if run and run.poll() is None:
                run.kill()
                run.wait()
            r.remove_everything()
