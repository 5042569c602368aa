"""Fixtures for containerd_py: our daemon and real containerd, each private to a
temporary directory, and a gRPC client for either.

Every daemon a fixture starts is stopped by its finalizer, which then fails
the test if anything stayed mounted under its directory.
"""
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest
from google.protobuf import empty_pb2

import cgroup_trees
from leaks import kill_processes_mentioning as _kill_processes_mentioning, mounts_under
from containerd_py import mount as mountlib
from containerd_py.api.containerd.services import (content_pb2_grpc, diff_pb2_grpc, images_pb2_grpc,
                                                   introspection_pb2_grpc, leases_pb2_grpc, namespaces_pb2_grpc,
                                                   snapshots_pb2_grpc, version_pb2_grpc)
from containerd_py.types import Mount

REPO = Path(__file__).resolve().parents[2]
START_DEADLINE = 60  # seconds; only guards against a hang, never asserted on


def _unmount_all(path: str) -> list[str]:
    leaked = mounts_under(path)
    for point in reversed(leaked):
        subprocess.run(["umount", "-l", point], check=False)
    return leaked


class Client:
    """Stubs of every service on one channel; calls take the namespace explicitly."""

    def __init__(self, address: str):
        self.address = address
        self.channel = grpc.insecure_channel(f"unix:{address}",
                                             options=[("grpc.max_receive_message_length", 16 << 20)])
        self.version = version_pb2_grpc.VersionStub(self.channel)
        self.introspection = introspection_pb2_grpc.IntrospectionStub(self.channel)
        self.namespaces = namespaces_pb2_grpc.NamespacesStub(self.channel)
        self.leases = leases_pb2_grpc.LeasesStub(self.channel)
        self.content = content_pb2_grpc.ContentStub(self.channel)
        self.images = images_pb2_grpc.ImagesStub(self.channel)
        self.snapshots = snapshots_pb2_grpc.SnapshotsStub(self.channel)
        self.diff = diff_pb2_grpc.DiffStub(self.channel)

    @staticmethod
    def md(ns: str) -> list[tuple[str, str]]:
        return [("containerd-namespace", ns)]

    def close(self):
        self.channel.close()


class Process:
    """A daemon started by a test, with its log for failure messages."""

    def __init__(self, argv: list[str], workdir: str, address: str):
        self.workdir, self.address = workdir, address
        self.log_path = os.path.join(workdir, "daemon.log")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def log(self) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def wait_ready(self) -> None:
        """Waits until the socket answers a Version call (or the process dies)."""
        deadline = time.monotonic() + START_DEADLINE
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited with {self.proc.returncode}:\n{self.log()}")
            if os.path.exists(self.address):
                client = Client(self.address)
                try:
                    client.version.Version(empty_pb2.Empty(), timeout=5)
                    return
                except grpc.RpcError:
                    pass
                finally:
                    client.close()
            time.sleep(0.05)
        raise AssertionError(f"daemon did not answer on {self.address}:\n{self.log()}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


def our_daemon_argv(workdir: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "containerd_py.daemon", "--root", f"{workdir}/root", "--state",
            f"{workdir}/state", "--address", f"{workdir}/containerd.sock", *extra]


@contextmanager
def running(argv_for, name: str):
    """Starts a daemon in a fresh directory; stops it and checks for leaks after."""
    workdir = tempfile.mkdtemp(prefix=f"{name}-")
    proc = None
    try:
        proc = Process(argv_for(workdir), workdir, f"{workdir}/containerd.sock")
        proc.wait_ready()
        yield proc
    finally:
        if proc:
            left = _remove_tasks(proc.address) if proc.proc.poll() is None else []
            proc.stop()
            left += _kill_processes_mentioning(workdir)
        leaked = _unmount_all(workdir)
        shutil.rmtree(workdir, ignore_errors=True)
        assert not leaked, f"mounts left behind: {leaked}"
        assert not proc or not left, f"tasks or processes left behind: {left}"


def _remove_tasks(address: str) -> list[str]:
    """Kills and removes every task and container the daemon still has; returns what it found."""
    if shutil.which("ctr") is None:
        return []
    found = []
    namespaces = Ctr(address, "default")("namespaces", "ls", "-q", check=False).stdout.split()
    for ns in namespaces:
        c = Ctr(address, ns)
        for cid in c("tasks", "ls", "-q", check=False).stdout.split():
            found.append(f"task {ns}/{cid}")
            c("tasks", "kill", "-s", "SIGKILL", cid, check=False)
            c("tasks", "rm", "-f", cid, check=False)
        for cid in c("containers", "ls", "-q", check=False).stdout.split():
            c("containers", "rm", cid, check=False)
    return found


def _containerd_argv(workdir: str) -> list[str]:
    with open(f"{workdir}/config.toml", "w") as f:
        f.write(f"""version = 2
root = "{workdir}/root"
state = "{workdir}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.internal.v1.tracing",
                    "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "{workdir}/containerd.sock"
[ttrpc]
  address = "{workdir}/containerd.sock.ttrpc"
""")
    return ["containerd", "--config", f"{workdir}/config.toml"]


def _shared_daemon_argv(workdir: str) -> list[str]:
    """Garbage collection only when a call asks to wait for it (sync): tests that
    keep unleased content between calls, as many do, are not raced by a collector."""
    with open(f"{workdir}/config.toml", "w") as f:
        f.write('version = 2\n[plugins."io.containerd.gc.v1.scheduler"]\n'
                '  schedule_delay = "24h"\n  startup_delay = "24h"\n')
    return our_daemon_argv(workdir, "-c", f"{workdir}/config.toml")


@pytest.fixture(scope="session")
def daemon():
    """Our daemon, shared by the tests of a session; each test uses its own namespace."""
    with running(_shared_daemon_argv, "containerd-py") as proc:
        yield proc


@pytest.fixture(scope="session")
def client(daemon):
    c = Client(daemon.address)
    yield c
    c.close()


@pytest.fixture(scope="session")
def containerd():
    """Real containerd (Debian's), the oracle for differential tests."""
    if shutil.which("containerd") is None:
        pytest.skip("containerd is not installed")
    with running(_containerd_argv, "containerd") as proc:
        yield proc


@pytest.fixture
def ns():
    """A namespace name of this test alone. ctr puts a namespace's containers
    in the cgroup /<namespace>/<id>; the runtimes remove /<namespace>/<id>
    and, like containerd's, leave /<namespace>: removed here, so that the
    run leaves no cgroup (a cgroup with a process in it fails the test)."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    left = [why for path in glob.glob(f"/sys/fs/cgroup/{name}") + glob.glob(f"/sys/fs/cgroup/*/{name}")
            for why in cgroup_trees.remove(path)]
    assert not left, f"cgroups left in use: {left}"


@contextmanager
def mounted(mounts: list[Mount]):
    """Mounts a snapshot's mounts on a temporary directory, for checks from the outside."""
    parent = tempfile.mkdtemp(prefix="cpy-mnt-")
    try:
        with mountlib.temp_mount(mounts, parent) as target:
            yield target
    finally:
        leaked = _unmount_all(parent)
        shutil.rmtree(parent, ignore_errors=True)
        assert not leaked, f"mounts left behind: {leaked}"


@pytest.fixture(scope="session")
def busybox_tar(tmp_path_factory):
    """The busybox image as an OCI archive, made once from busybox-static."""
    if not os.path.exists("/bin/busybox"):
        pytest.skip("busybox-static is not installed")
    out = tmp_path_factory.mktemp("busybox") / "busybox.tar"
    subprocess.run([str(REPO / "bundles" / "make-busybox-image.py"), str(out)], check=True)
    return out


@pytest.fixture(scope="session")
def registry():
    """A plain-HTTP docker-registry shared by the session; tests use repositories of their own."""
    from registries import docker_registry  # here, not on top: registries imports this module
    with docker_registry() as r:
        yield r


class Ctr:
    def __init__(self, address: str, ns: str):
        self.address, self.ns = address, ns

    def __call__(self, *args, check=True) -> subprocess.CompletedProcess:
        result = subprocess.run(["ctr", "--address", self.address, "--connect-timeout", "30s", "-n", self.ns, *args],
                                capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        if check:
            assert result.returncode == 0, f"ctr {' '.join(args)} failed:\n{result.stderr}"
        return result


@pytest.fixture(params=["containerd-py", "containerd"])
def ctr(request, ns):
    """ctr bound to our daemon or to real containerd, in a namespace of the test's own."""
    proc = request.getfixturevalue("daemon" if request.param == "containerd-py" else "containerd")
    return Ctr(proc.address, ns)


@pytest.fixture
def both(request, ns, daemon):
    """ctr bound to each daemon, for comparing their outputs."""
    real = request.getfixturevalue("containerd")
    return Ctr(daemon.address, ns), Ctr(real.address, ns)
