"""engine-py as the docker CLI meets it: a daemon process of the test's own.

(Not a conftest.py, for the reason tests/engine/dockerd_oracle.py gives. The
session fixture `engine_py` in tests/conftest.py runs `running_engine()`, so
one engine serves every module of a run that does not need its own.)

`running_engine()` starts engine-py (with its own supervised containerd-py)
inside a network namespace the test creates, with private --data-root,
--exec-root, socket and cgroup parent, and busybox imported into its
containerd namespace as docker.io/library/busybox:latest. `Engine.docker()`
runs the docker CLI at it. `kill()` and `start()` let a test kill -9 the
engine and bring it back over the same directories. The finalizer removes
every container, stops the engine, and fails the run if a process, mount or
cgroup had to be forced away.
"""
import contextlib
import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import cgroup_trees
from leaks import kill_processes_mentioning, mounts_under

REPO = Path(__file__).resolve().parents[2]
ENGINE_PY = os.path.join(os.path.dirname(sys.executable), "engine-py")
DOCKER_CLIS = {"28": "/usr/local/bin/docker", "20.10": "/usr/bin/docker"}
START_DEADLINE = 60  # seconds; only guards against a hang, never asserted on
NAMESPACE = "engine-py"  # the engine's containerd namespace (its default)


class Engine:
    def __init__(self, workdir: str, netns: str):
        self.workdir, self.netns = workdir, netns
        self.socket = f"{workdir}/engine.sock"
        self.host = f"unix://{self.socket}"
        self.data_root, self.exec_root = f"{workdir}/data", f"{workdir}/exec"
        self.cgroup_parent = f"/{os.path.basename(workdir)}"
        self.containerd_socket = f"{self.exec_root}/containerd/containerd.sock"
        self.log_path = f"{workdir}/engine.log"
        self.proc = None
        self._log = None

    def argv(self, *extra: str) -> list[str]:
        return ["nsenter", f"--net=/run/netns/{self.netns}", ENGINE_PY, "--data-root", self.data_root,
                "--exec-root", self.exec_root, "--pidfile", f"{self.workdir}/engine.pid", "-H", self.host,
                "--cgroup-parent", self.cgroup_parent, *extra]

    def start(self, *extra: str) -> None:
        """Starts the engine (again) and waits until it answers."""
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv(*extra), stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        wait_answering(self, "engine-py")

    def kill(self) -> None:
        """kill -9 of the engine alone (its containerd-py and containers live on)."""
        self.proc.kill()
        self.proc.wait()
        self._log.close()

    def log(self) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def docker(self, *args, check: bool = True, input: str | None = None, cli: str = "28",
               timeout: float = 120) -> subprocess.CompletedProcess:
        """The docker CLI (28 or 20.10) at this engine."""
        env = {**os.environ, "DOCKER_HOST": self.host, "DOCKER_CONFIG": f"{self.workdir}/docker-config"}
        r = subprocess.run([DOCKER_CLIS[cli], *args], capture_output=True, text=True, env=env, timeout=timeout,
                           input=input, stdin=None if input is not None else subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed ({r.returncode}): {r.stderr}")
        return r

    def cli(self, version: str) -> SimpleNamespace:
        """This engine as the given CLI drives it: `.docker(...)`, for scenarios
        written once for it and for the dockerd fixture (whose CLI is 20.10)."""
        return SimpleNamespace(docker=functools.partial(self.docker, cli=version))

    def import_busybox(self, oci_tar: str) -> None:
        from containerd_py.client import Client
        from containerd_py.transfer import archive
        from containerd_py.transfer.manifests import DEFAULT_PLATFORM

        client = Client(self.containerd_socket, NAMESPACE)
        try:
            with open(oci_tar, "rb") as f:
                archive.import_archive(client.backend, NAMESPACE, f, DEFAULT_PLATFORM, "overlayfs")
        finally:
            client.close()

    def stop(self) -> list[str]:
        """Removes every container, stops the engine; what had to be forced."""
        return stop_docker_daemon(self, "engine-py")


def wait_answering(daemon, what: str) -> None:
    """Until `docker version` gets the daemon's answer (this engine or the
    dockerd oracle); its log in the failure if it exits or never answers."""
    deadline = time.monotonic() + START_DEADLINE
    while daemon.docker("version", check=False).returncode != 0:
        if daemon.proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"{what} did not start:\n{daemon.log()[-4000:]}")
        time.sleep(0.05)


def stop_docker_daemon(daemon, what: str) -> list[str]:
    """For this engine and the dockerd oracle alike: every container removed
    through the CLI, SIGTERM, and what had to be forced (a kill, processes
    still mentioning the daemon's directory)."""
    forced = []
    if daemon.proc is not None and daemon.proc.poll() is None:
        ids = daemon.docker("ps", "-aq", check=False).stdout.split()
        if ids:
            daemon.docker("rm", "-f", *ids, check=False)
        daemon.proc.send_signal(signal.SIGTERM)
        try:
            daemon.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            forced.append(f"{what} did not stop on SIGTERM")
            os.killpg(daemon.proc.pid, signal.SIGKILL)
            daemon.proc.wait()
    if daemon._log is not None:
        daemon._log.close()
    return forced + kill_processes_mentioning(daemon.workdir)


@contextlib.contextmanager
def running_engine(oci_busybox: str | None = None, containerd: str | None = None, extra: tuple[str, ...] = ()):
    """A private engine-py with busybox loaded (made here unless given), over
    its own containerd-py or, given a socket, over that containerd; `extra` flags for it."""
    workdir = tempfile.mkdtemp(prefix="engine-py-", dir="/var/tmp")
    netns = f"engine-test-{os.path.basename(workdir)}"
    engine = Engine(workdir, netns)
    if containerd:
        engine.containerd_socket = containerd
    forced, leaked, cgroups = [], [], []
    try:
        subprocess.run(["ip", "netns", "add", netns], check=True)
        subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)
        engine.start(*(["--containerd", containerd] if containerd else []), *extra)
        if oci_busybox is None:
            oci_busybox = f"{workdir}/busybox-oci.tar"
            subprocess.run([sys.executable, str(REPO / "bundles/make-busybox-image.py"), oci_busybox], check=True,
                           capture_output=True)
        engine.import_busybox(oci_busybox)
        yield engine
    finally:
        forced = engine.stop()
        leaked = mounts_under(workdir)
        for point in reversed(leaked):
            subprocess.run(["umount", "-l", point], check=False)
        cgroups = cgroup_trees.remove_in_every_hierarchy(engine.cgroup_parent)
        subprocess.run(["ip", "netns", "del", netns], check=False)
        shutil.rmtree(workdir, ignore_errors=True)
    assert not forced and not leaked and not cgroups, \
        f"forced: {forced}; mounts left: {leaked}; cgroups in use: {cgroups}"
