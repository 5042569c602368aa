"""The container service's events over a private containerd-py: the actions
and attributes dockerd logs for each verb, in its order (kill before the die
it causes, die before stop); and the image service's, as the assembly wires them."""
import signal
import uuid

import pytest

from containerd_py.transfer import archive
from containerd_py.transfer.manifests import DEFAULT_PLATFORM
from containers_helpers import TRAPPING, busybox, containerd_py, engine_on, wait_for_output  # noqa: F401 (fixtures)
from engine.assembly import Assembly
from engine.daemon import Config
from engine.filters import Filters
from engine.services.containers import installed_runtimes
from engine.services.events import EventsService

pytestmark = pytest.mark.root


@pytest.fixture
def bus_and_engine(containerd_py, busybox, tmp_path):  # noqa: F811
    bus = EventsService()
    with engine_on(containerd_py.address, tmp_path / "data", busybox, publish=bus.container) as engine:
        yield bus, engine


def seen(bus) -> list[tuple[str, dict]]:
    past, subscription = bus.subscribe(0, None, Filters())
    subscription.close()
    return [(e["Action"], e["Actor"]["Attributes"]) for e in past]


def test_each_verb_logs_dockerds_events(bus_and_engine):
    bus, engine = bus_and_engine
    service = engine.service
    record = service.create({"Image": "busybox", "Cmd": TRAPPING, "StopSignal": "SIGUSR1", "Labels": {"a": "b"}},
                            {}, "ev")
    service.start(record.id)
    wait_for_output(engine, record, "ready")
    service.pause("ev")
    service.unpause("ev")
    service.rename("ev", "ev2")
    service.stop("ev2", timeout=-1)
    service.restart("ev2")
    service.remove("ev2", force=True)
    base = {"a": "b", "image": "busybox"}
    usr1, kill = str(int(signal.SIGUSR1)), str(int(signal.SIGKILL))
    assert seen(bus) == [
        ("create", {**base, "name": "ev"}), ("start", {**base, "name": "ev"}), ("pause", {**base, "name": "ev"}),
        ("unpause", {**base, "name": "ev"}), ("rename", {**base, "name": "ev2", "oldName": "/ev"}),
        ("kill", {**base, "name": "ev2", "signal": usr1}), ("die", {**base, "name": "ev2", "exitCode": "7"}),
        ("stop", {**base, "name": "ev2"}), ("start", {**base, "name": "ev2"}), ("restart", {**base, "name": "ev2"}),
        ("kill", {**base, "name": "ev2", "signal": kill}), ("die", {**base, "name": "ev2", "exitCode": "137"}),
        ("destroy", {**base, "name": "ev2"}),
    ]


def test_an_exit_of_its_own_logs_die_with_its_code_and_rm_destroy(bus_and_engine):
    bus, engine = bus_and_engine
    service = engine.service
    record = service.create({"Image": "busybox", "Cmd": ["sh", "-c", "exit 3"]}, {"AutoRemove": True})
    service.start(record.id)
    service.wait(record.id, "removed")
    name = record.name.lstrip("/")
    assert [(action, attributes.get("exitCode")) for action, attributes in seen(bus)] == [
        ("create", None), ("start", None), ("die", "3"), ("destroy", None)]
    assert all(attributes["name"] == name for _, attributes in seen(bus))


def test_an_oom_kill_logs_oom_before_die(bus_and_engine):
    bus, engine = bus_and_engine
    service = engine.service
    record = service.create({"Image": "busybox", "Cmd": ["tail", "/dev/zero"]},  # a line without end
                            {"Memory": 16 << 20, "MemorySwap": 16 << 20})
    service.start(record.id)
    service.wait(record.id)
    assert [(action, attributes.get("exitCode")) for action, attributes in seen(bus)] == [
        ("create", None), ("start", None), ("oom", None), ("die", "137")]


def test_the_assembly_publishes_image_events_as_dockerd(containerd_py, busybox, tmp_path):  # noqa: F811
    """`docker tag busybox mytag:1` then `docker rmi mytag:1` logged what dockerd 20.10 logged (recorded)."""
    namespace = f"engine-test-{uuid.uuid4().hex[:12]}"
    config = Config(containerd=containerd_py.address, containerd_namespace=namespace,
                    data_root=str(tmp_path / "data"), exec_root=str(tmp_path / "exec"), runtimes=installed_runtimes(),
                    bridge="none", iptables=False)  # in the test's process: no bridge, no rules in the host's netns
    assembly = Assembly(config, lambda: ("", ""))
    try:
        with open(busybox, "rb") as f:
            archive.import_archive(assembly.client.backend, namespace, f, DEFAULT_PLATFORM, "overlayfs")
        image_id = assembly.images.get("busybox").id
        assembly.images.tag("busybox", "mytag:1")
        assembly.images.remove("mytag:1")
        past, subscription = assembly.events.subscribe(0, None, Filters())
        subscription.close()
        assert [(e["status"], e["id"], e["Type"], e["Actor"]) for e in past] == [
            ("tag", image_id, "image", {"ID": image_id, "Attributes": {"name": "mytag:1"}}),
            ("untag", image_id, "image", {"ID": image_id, "Attributes": {"name": image_id}})]
    finally:
        for image in assembly.client.images.list([]):
            assembly.client.images.delete(image.name, sync=True)
        assembly.close()
