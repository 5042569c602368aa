"""Supervision: a `kill -9` of containerd-py stops no container, and a restarted
daemon finds every task again. Bad requests get containerd's codes and leave
nothing half-made."""
import json
import os
import signal
import subprocess
import time

import grpc
import pytest
from google.protobuf import any_pb2

from conftest import Client, Process, our_daemon_argv, running
from containerd_py.api.containerd.services import (containers_pb2, containers_pb2_grpc, snapshots_pb2, tasks_pb2,
                                                   tasks_pb2_grpc)
from containerd_py.api.containerd.types import task_pb2
from test_tasks_ctr import IMAGE, RUNTIMES, Runner

pytestmark = pytest.mark.root

SPEC_TYPE = "types.containerd.io/opencontainers/runtime-spec/1/Spec"


@pytest.fixture
def own_daemon():
    """A daemon of this test alone, which the test may kill."""
    with running(our_daemon_argv, "containerd-py-restart") as proc:
        yield proc


@pytest.mark.parametrize("runtime", sorted(RUNTIMES))
def test_kill_9_of_the_daemon_loses_nothing(own_daemon, ns, busybox_tar, runtime, tmp_path):
    r = Runner(own_daemon.address, ns, RUNTIMES[runtime])
    r("images", "import", str(busybox_tar))
    log = tmp_path / "ticks.log"
    r.run("-d", "--log-uri", f"file://{log}", IMAGE, "ticker", "sh", "-c", "while true; do echo tick; sleep 0.05; done")
    r.run("-d", IMAGE, "quitter", "sleep", "1000")
    r.run("-d", IMAGE, "sleeper", "sleep", "1000")
    before = {row.split()[0]: row.split()[1] for row in r("tasks", "ls").stdout.splitlines()[1:]}
    quitter_pid = int(before["quitter"])

    own_daemon.proc.send_signal(signal.SIGKILL)
    own_daemon.proc.wait()
    os.kill(quitter_pid, signal.SIGKILL)  # exits while no daemon runs
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{quitter_pid}") and time.monotonic() < deadline:
        time.sleep(0.05)
    size = log.stat().st_size
    time.sleep(0.3)
    assert log.stat().st_size > size, "the container's output stopped with the daemon"

    os.unlink(own_daemon.address)
    again = Process(our_daemon_argv(own_daemon.workdir), own_daemon.workdir, own_daemon.address)
    again.wait_ready()
    own_daemon.proc = again.proc  # the fixture stops the new one
    try:
        rows = {row.split()[0]: row.split()[1:] for row in r("tasks", "ls").stdout.splitlines()[1:]}
        assert rows["ticker"] == [before["ticker"], "RUNNING"]
        assert rows["sleeper"] == [before["sleeper"], "RUNNING"]
        assert rows["quitter"] == [before["quitter"], "STOPPED"]
        client = Client(again.address)
        deleted = tasks_pb2_grpc.TasksStub(client.channel).Delete(
            tasks_pb2.DeleteTaskRequest(container_id="quitter"), metadata=client.md(ns))
        client.close()
        assert (deleted.pid, deleted.exit_status) == (quitter_pid, 137)
        r("tasks", "kill", "-s", "SIGKILL", "sleeper")
        r.wait_status("sleeper", "STOPPED")  # the exit of a task found again is still seen
        r("tasks", "rm", "sleeper")
        assert sorted(r("tasks", "ls", "-q").stdout.split()) == ["ticker"]
    finally:
        r.remove_everything()


def test_sigterm_stops_the_daemon_while_a_ctr_run_waits(own_daemon, ns, busybox_tar):
    """A foreground `ctr run` holds a Wait call open; SIGTERM still stops the
    daemon (within its 2 s grace), the container lives on, and a restarted
    daemon finds it."""
    r = Runner(own_daemon.address, ns, RUNTIMES["runpy-oci"])
    r("images", "import", str(busybox_tar))
    waiting = subprocess.Popen(["ctr", "--address", own_daemon.address, "-n", ns, "run", "--runc-binary", r.runtime,
                                IMAGE, "waited", "sleep", "1000"], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        r.wait_status("waited", "RUNNING")
        time.sleep(0.3)  # ctr's Wait is in flight
        own_daemon.proc.send_signal(signal.SIGTERM)
        assert own_daemon.proc.wait(timeout=20) == 0
        assert waiting.wait(timeout=20) != 0  # its daemon went away
        again = Process(our_daemon_argv(own_daemon.workdir), own_daemon.workdir, own_daemon.address)
        again.wait_ready()
        own_daemon.proc = again.proc  # the fixture stops the new one
        assert r.status("waited") == "RUNNING"
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.wait()
        if own_daemon.proc.poll() is None and r("version", check=False).returncode != 0:
            own_daemon.proc.kill()  # it stopped serving but did not exit
            own_daemon.proc.wait()
        if own_daemon.proc.poll() is not None:  # a daemon to remove the container with
            again = Process(our_daemon_argv(own_daemon.workdir), own_daemon.workdir, own_daemon.address)
            again.wait_ready()
            own_daemon.proc = again.proc
        r.remove_everything()


def _spec(args):
    return {"ociVersion": "1.0.2", "process": {"args": args, "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}},
            "root": {"path": "rootfs"}, "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}}


def _create_container(client: Client, ns: str, cid: str, spec_bytes: bytes, snapshot_key: str = ""):
    stub = containers_pb2_grpc.ContainersStub(client.channel)
    c = containers_pb2.Container(id=cid, runtime=containers_pb2.Container.Runtime(name="io.containerd.runc.v2"),
                                 spec=any_pb2.Any(type_url=SPEC_TYPE, value=spec_bytes), snapshot_key=snapshot_key,
                                 snapshotter="overlayfs" if snapshot_key else "")
    stub.Create(containers_pb2.CreateContainerRequest(container=c), metadata=client.md(ns))
    return stub


def _code(call) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as e:
        call()
    return e.value.code(), e.value.details()


def test_bad_requests_get_containerd_codes_and_leave_nothing(client, daemon, ns):
    tasks = tasks_pb2_grpc.TasksStub(client.channel)
    md = client.md(ns)
    code, details = _code(lambda: tasks.Create(tasks_pb2.CreateTaskRequest(container_id="nope"), metadata=md))
    assert code == grpc.StatusCode.NOT_FOUND and "nope" in details

    containers = _create_container(client, ns, "badjson", b"{not json")
    code, details = _code(lambda: tasks.Create(tasks_pb2.CreateTaskRequest(container_id="badjson"), metadata=md))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "not valid JSON" in details
    bundles = os.path.join(daemon.workdir, "state", "io.containerd.runtime.v2.task", ns)
    assert not os.path.exists(os.path.join(bundles, "badjson"))

    # A rootfs that cannot be mounted: the error names it, no bundle or mount stays.
    _create_container(client, ns, "nomount", json.dumps(_spec(["true"])).encode())
    missing = tasks_pb2.CreateTaskRequest(container_id="nomount")
    missing.rootfs.add(type="overlay", source="overlay", options=["lowerdir=/nonexistent-lower"])
    code, details = _code(lambda: tasks.Create(missing, metadata=md))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "rootfs" in details
    assert not os.path.exists(os.path.join(bundles, "nomount"))

    # The runtime refuses the spec (nothing in its rootfs to run): its own message comes back.
    code, details = _code(lambda: tasks.Create(tasks_pb2.CreateTaskRequest(container_id="nomount"), metadata=md))
    assert code == grpc.StatusCode.UNKNOWN and "OCI runtime create failed" in details and '"true"' in details
    assert not os.path.exists(os.path.join(bundles, "nomount"))

    # The daemon still serves, and the containers can go.
    tasks.List(tasks_pb2.ListTasksRequest(), metadata=md)
    for cid in ("badjson", "nomount"):
        containers.Delete(containers_pb2.DeleteContainerRequest(id=cid), metadata=md)


def test_task_lifecycle_errors(daemon, ns, busybox_tar):
    r = Runner(daemon.address, ns, RUNTIMES["runpy-oci"])
    r("images", "import", str(busybox_tar))
    try:
        r.run("-d", IMAGE, "l1", "sleep", "1000")
        client = Client(daemon.address)
        tasks = tasks_pb2_grpc.TasksStub(client.channel)
        md = client.md(ns)
        code, _ = _code(lambda: tasks.Start(tasks_pb2.StartRequest(container_id="l1"), metadata=md))
        assert code == grpc.StatusCode.FAILED_PRECONDITION
        code, _ = _code(lambda: tasks.Delete(tasks_pb2.DeleteTaskRequest(container_id="l1"), metadata=md))
        assert code == grpc.StatusCode.FAILED_PRECONDITION
        code, _ = _code(lambda: tasks.Create(tasks_pb2.CreateTaskRequest(container_id="l1"), metadata=md))
        assert code == grpc.StatusCode.ALREADY_EXISTS
        code, _ = _code(lambda: tasks.Get(tasks_pb2.GetRequest(container_id="l1", exec_id="x"), metadata=md))
        assert code == grpc.StatusCode.NOT_FOUND
        containers = containers_pb2_grpc.ContainersStub(client.channel)
        code, _ = _code(lambda: containers.Delete(containers_pb2.DeleteContainerRequest(id="l1"), metadata=md))
        assert code == grpc.StatusCode.FAILED_PRECONDITION
        tasks.Kill(tasks_pb2.KillRequest(container_id="l1", signal=9), metadata=md)
        waited = tasks.Wait(tasks_pb2.WaitRequest(container_id="l1"), metadata=md, timeout=30)
        assert waited.exit_status == 137
        deleted = tasks.Delete(tasks_pb2.DeleteTaskRequest(container_id="l1"), metadata=md)
        assert deleted.exit_status == 137 and deleted.pid > 0
        code, _ = _code(lambda: tasks.Kill(tasks_pb2.KillRequest(container_id="l1", signal=9), metadata=md))
        assert code == grpc.StatusCode.NOT_FOUND
        client.close()
    finally:
        r.remove_everything()


def test_created_task_can_be_deleted_before_start(daemon, ns, busybox_tar):
    r = Runner(daemon.address, ns, RUNTIMES["runpy-oci"])
    r("images", "import", str(busybox_tar))
    client = Client(daemon.address)
    try:
        r("containers", "create", IMAGE, "c1", "sleep", "1000")
        md = client.md(ns)
        mounts = client.snapshots.Mounts(snapshots_pb2.MountsRequest(snapshotter="overlayfs", key="c1"), metadata=md)
        tasks = tasks_pb2_grpc.TasksStub(client.channel)
        created = tasks.Create(tasks_pb2.CreateTaskRequest(container_id="c1", rootfs=mounts.mounts), metadata=md)
        got = tasks.Get(tasks_pb2.GetRequest(container_id="c1"), metadata=md).process
        assert (got.pid, got.status) == (created.pid, task_pb2.CREATED)
        assert os.path.exists(f"/proc/{created.pid}")
        tasks.Delete(tasks_pb2.DeleteTaskRequest(container_id="c1"), metadata=md)
        deadline = time.monotonic() + 10
        while os.path.exists(f"/proc/{created.pid}") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not os.path.exists(f"/proc/{created.pid}")
        assert r("tasks", "ls", "-q").stdout == ""
    finally:
        client.close()
        r.remove_everything()


@pytest.mark.parametrize("runtime", sorted(RUNTIMES))
def test_update_changes_the_task_cgroup(daemon, ns, busybox_tar, runtime):
    r = Runner(daemon.address, ns, RUNTIMES[runtime])
    r("images", "import", str(busybox_tar))
    client = Client(daemon.address)
    try:
        r.run("-d", IMAGE, "u1", "sleep", "1000")
        md = client.md(ns)
        tasks = tasks_pb2_grpc.TasksStub(client.channel)
        pid = tasks.Get(tasks_pb2.GetRequest(container_id="u1"), metadata=md).process.pid
        resources = any_pb2.Any(type_url="types.containerd.io/opencontainers/runtime-spec/1/LinuxResources",
                                value=json.dumps({"pids": {"limit": 77}}).encode())
        tasks.Update(tasks_pb2.UpdateTaskRequest(container_id="u1", resources=resources), metadata=md)
        with open(f"/proc/{pid}/cgroup") as f:
            path = next(line.split(":", 2)[2].strip() for line in f if ":pids:" in line)
        with open(f"/sys/fs/cgroup/pids{path}/pids.max") as f:
            assert f.read().strip() == "77"
        bad = any_pb2.Any(type_url=resources.type_url, value=b"{not json")
        code, details = _code(lambda: tasks.Update(tasks_pb2.UpdateTaskRequest(container_id="u1", resources=bad),
                                                   metadata=md))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "not valid JSON" in details
    finally:
        client.close()
        r.remove_everything()
