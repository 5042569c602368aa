"""Fixtures for the container service's tests: a private containerd-py (or
real containerd) started by tests/containerd_py/conftest.py's own code, a
namespace of the test's own with busybox imported into it, and a service over
a data-root in the test's directory. Test modules import the fixtures they
use (tests/engine has no conftest.py)."""
import glob
import importlib.util
import subprocess
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest

import cgroup_trees
from containerd_py.transfer import archive
from containerd_py.transfer.manifests import DEFAULT_PLATFORM
from engine.containerd import connect
from engine.containerd.tasks import ContainerdTasks
from engine.services.containers import ContainerService
from engine.store import ContainerStore
from leaks import mounts_under

TESTS = Path(__file__).resolve().parents[1]


def _load_daemon_fixtures():
    """tests/containerd_py/conftest.py as a module: its daemon starters, reused rather than copied."""
    spec = importlib.util.spec_from_file_location("containerd_py_daemon_fixtures",
                                                  TESTS / "containerd_py" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


daemons = _load_daemon_fixtures()


@pytest.fixture(scope="session")
def containerd_py():
    """Our containerd, private to the session (garbage collection on request only)."""
    with daemons.running(daemons._shared_daemon_argv, "engine-containerd-py") as proc:
        yield proc


@pytest.fixture(scope="session")
def real_containerd():
    with daemons.running(daemons._containerd_argv, "engine-containerd") as proc:
        yield proc


@pytest.fixture(scope="session")
def busybox(tmp_path_factory):
    """busybox as an OCI archive (docker.io/library/busybox:latest), made once."""
    out = tmp_path_factory.mktemp("busybox") / "busybox.tar"
    subprocess.run([str(daemons.REPO / "bundles" / "make-busybox-image.py"), str(out)], check=True)
    return out


class Engine:
    """A container service as the engine would assemble it, and how to make it again (a restart)."""

    def __init__(self, address: str, data_root: Path, namespace: str, **options):
        self.address, self.data_root, self.namespace, self.options = address, data_root, namespace, options
        self.client = connect(address, namespace)
        self.service = self._new_service()

    def _new_service(self) -> ContainerService:
        store = ContainerStore(str(self.data_root / "containers"))
        store.load()
        return ContainerService(store, ContainerdTasks(self.client), str(self.data_root),
                                cgroup_parent=f"/{self.namespace}", **self.options)

    def restart(self) -> ContainerService:
        """A new service over the same records and containerd, as after an engine restart."""
        self.service.close()
        self.service = self._new_service()
        return self.service

    def close(self) -> None:
        for record in self.service.store.all():
            self.service.remove(record.id, force=True)
        self.service.close()
        self.client.close()


@contextmanager
def engine_on(address: str, data_root: Path, busybox_tar: Path, **options):
    """A service in a namespace of its own with busybox imported; afterwards
    no container, mount or cgroup of it is left."""
    namespace = f"engine-test-{uuid.uuid4().hex[:12]}"
    engine = Engine(address, data_root, namespace, **options)
    try:
        with open(busybox_tar, "rb") as f:
            archive.import_archive(engine.client.backend, namespace, f, DEFAULT_PLATFORM, "overlayfs")
        yield engine
    finally:
        engine.close()
        leaked = mounts_under(str(data_root))
        left = [why for path in glob.glob(f"/sys/fs/cgroup/{namespace}") + glob.glob(f"/sys/fs/cgroup/*/{namespace}")
                for why in cgroup_trees.remove(path)]
        assert not leaked, f"mounts left behind: {leaked}"
        assert not left, f"cgroups left in use: {left}"


@pytest.fixture
def engine(containerd_py, busybox, tmp_path):
    with engine_on(containerd_py.address, tmp_path / "data", busybox) as made:
        yield made


# A shell that says when its trap is set, so a signal never races it. USR1, not
# TERM: this branch's containerd-py shim hands its children SIGTERM ignored, which
# a shell cannot trap (fixed on main); test_containers_containerd.py stops with
# SIGTERM over real containerd.
TRAPPING = ["sh", "-c", "trap 'echo got USR1; exit 7' USR1; echo ready; while :; do sleep 0.1; done"]


def output(engine, record) -> str:
    """What the container printed on stdout (the default log sink's file)."""
    with open(engine.service.store.container_dir(record.id) + "/stdout.log") as f:
        return f.read()


def eventually(check):
    """Polls until check() holds; the deadline only guards against a hang."""
    deadline = time.monotonic() + 60
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def wait_for_output(engine, record, text):
    eventually(lambda: text in output(engine, record) or not record.state.running)
    assert text in output(engine, record), output(engine, record)
