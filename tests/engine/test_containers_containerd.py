"""The container lifecycle over real containerd (Debian's) with runc picked
by HostConfig.Runtime: the service speaks containerd's API, not only ours."""
import pytest

from containerd_py.api.containerd.runtime import runc_options_pb2
from containers_helpers import busybox, engine_on, eventually, output, real_containerd, wait_for_output  # noqa: F401
from engine.errors import Conflict

pytestmark = pytest.mark.root
TERM_TRAPPING = ["sh", "-c", "trap 'echo got TERM; exit 7' TERM; echo ready; while :; do sleep 0.1; done"]


@pytest.fixture
def engine(real_containerd, busybox, tmp_path):
    with engine_on(real_containerd.address, tmp_path / "data", busybox) as made:
        yield made


def test_the_lifecycle_over_containerd_with_runc(engine):
    service = engine.service
    runc = {"Runtime": "runc"}
    echo = service.create({"Image": "busybox", "Cmd": ["sh", "-c", "echo hi; exit 3"]}, runc, "echo")
    service.start("echo")
    assert service.wait("echo") == {"StatusCode": 3, "Error": None}
    assert output(engine, echo) == "hi\n"

    stopped = service.create({"Image": "busybox", "Cmd": TERM_TRAPPING}, runc, "stopped")
    service.start("stopped")
    wait_for_output(engine, stopped, "ready")
    service.stop("stopped", timeout=-1)
    assert (stopped.state.exit_code, output(engine, stopped)) == (7, "ready\ngot TERM\n")

    killed = service.create({"Image": "busybox", "Cmd": ["sleep", "1000"]}, runc, "killed")
    service.start("killed")
    with pytest.raises(Conflict, match="^You cannot remove a running container"):
        service.remove("killed")
    service.kill("killed", "KILL")
    assert killed.state.exit_code == 137
    service.start("killed")
    service.remove("killed", force=True)

    brief = service.create({"Image": "busybox", "Cmd": ["true"]}, {**runc, "AutoRemove": True}, "brief")
    service.start("brief")
    eventually(lambda: service.store.find_exact(brief.id) is None)
    assert sorted(c.id for c in engine.client.containers.list([])) == sorted([echo.id, stopped.id])
    runtimes = {(c.runtime, runc_options_pb2.Options.FromString(c.runtime_options.value).binary_name)
                for c in engine.client.containers.list([])}
    assert runtimes == {("io.containerd.runc.v2", service.runtimes["runc"])}


def test_a_collection_during_create_leaves_the_snapshot(engine, monkeypatch):
    """containerd collects an active snapshot that nothing references; until the
    containerd container names it, a lease must: a collection forced in the
    middle of the create (by a synchronous lease delete) leaves it in place."""
    service = engine.service
    make_spec = service._spec

    def spec_after_a_collection(*args):
        lease = engine.client.leases.create()
        engine.client.leases.delete(lease.id, sync=True)  # runs the collector before it answers
        return make_spec(*args)

    monkeypatch.setattr(service, "_spec", spec_after_a_collection)
    service.create({"Image": "busybox", "Cmd": ["true"]}, {"Runtime": "runc"}, "collected")
    service.start("collected")
    assert service.wait("collected") == {"StatusCode": 0, "Error": None}
