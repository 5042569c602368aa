"""Creating containers: dockerd's errors for bad input, and a create that
fails at any point leaves nothing (no record, name, snapshot, containerd
container, directory or mount)."""
import os
import socket

import pytest

from containers_helpers import busybox, containerd_py, engine  # noqa: F401 (fixtures)
from engine.errors import Conflict, InvalidParameter, NotFound, System
from engine.services import containers as service_module
from engine.store import ContainerStore

pytestmark = pytest.mark.root
ECHO = {"Image": "busybox", "Cmd": ["echo", "hi"]}


def _nothing_left(engine):
    service = engine.service
    assert service.store.all() == []
    assert engine.client.containers.list([]) == []
    assert [s.kind.name for s in engine.client.snapshots("overlayfs").walk()] == ["COMMITTED"]  # the image's layer
    assert os.listdir(service.store.root) == []
    assert os.listdir(engine.data_root / "tmp") == [] if (engine.data_root / "tmp").exists() else True
    # the name is free again
    service.remove(service.create(ECHO, {}, "probe").id)


def _failing(*_args, **_kwargs):
    raise System("injected failure")


@pytest.mark.parametrize("config,host_config,message", [
    ({"Image": "busybox", "Cmd": ["true"]}, {"Memory": "lots"},
     "json: cannot unmarshal string into Go struct field HostConfig.Memory of type int64"),
    ({"Image": "busybox", "Cmd": ["true"]}, {"Runtime": "nope"}, "Unknown runtime specified nope"),
    ({"Image": "busybox", "Cmd": ["true"], "WorkingDir": "rel"}, {},
     "the working directory 'rel' is invalid, it needs to be an absolute path"),
    ({"Image": "busybox", "Cmd": ["true"], "User": "nobody-here"}, {},
     "unable to find user nobody-here: no matching entries in passwd file"),
])
def test_bad_requests_are_refused_with_dockerds_words(engine, config, host_config, message):
    with pytest.raises((InvalidParameter, System)) as err:
        engine.service.create(config, host_config, "bad")
    assert str(err.value) == message
    _nothing_left(engine)


def test_an_unknown_image_is_a_404(engine):
    with pytest.raises(NotFound, match="^No such image: nosuchimage$"):
        engine.service.create({"Image": "nosuchimage"}, {}, "x")
    _nothing_left(engine)


def test_an_invalid_name_is_refused(engine):
    with pytest.raises(InvalidParameter, match=r"^Invalid container name \(a b\), only \[a-zA-Z0-9\]"):
        engine.service.create(ECHO, {}, "a b")
    _nothing_left(engine)


@pytest.mark.parametrize("where", ["prepare_snapshot", "create_container", "store_add", "network_files"])
def test_a_create_failing_at_any_point_leaves_nothing(engine, monkeypatch, where):
    service = engine.service
    if where == "store_add":
        monkeypatch.setattr(ContainerStore, "add", _failing)
    elif where == "network_files":
        monkeypatch.setattr(service_module.NetworkFiles, "write", _failing)
    else:
        monkeypatch.setattr(service.tasks, where, _failing)
    with pytest.raises(System, match="^injected failure$"):
        service.create(ECHO, {}, "doomed")
    monkeypatch.undo()
    _nothing_left(engine)


def test_names_conflict_as_in_dockerd_and_rename(engine):
    service = engine.service
    first = service.create(ECHO, {}, "one")
    with pytest.raises(Conflict, match=f'^Conflict. The container name "/one" is already in use by container '
                                       f'"{first.id}". You have to remove'):
        service.create(ECHO, {}, "one")
    second = service.create(ECHO, {}, "two")
    with pytest.raises(Conflict, match='^Error when allocating new name: Conflict. The container name "/two"'):
        service.rename("one", "two")
    service.rename("one", "three")
    assert service.store.get("three") is first and service.store.find_exact("one") is None
    service.create(ECHO, {}, "one")  # the old name is free
    assert second.name == "/two"


def test_a_created_container_has_its_network_files_and_runtime(engine):
    service = engine.service
    record = service.create({**ECHO, "Hostname": "box"}, {"NetworkMode": "none"})
    with open(record.hostname_path) as f:
        assert f.read() == "box\n"
    with open(record.hosts_path) as f:
        assert "127.0.0.1\tlocalhost\n" in f.read()
    assert record.host_config["Runtime"] == "runpy-oci"
    assert os.path.dirname(record.resolv_conf_path) == service.store.container_dir(record.id)


def _spec(engine, record) -> dict:
    import json
    return json.loads(engine.client.containers.get(record.id).spec.value)


def test_network_modes_none_host_and_another_containers(engine):
    from containers_helpers import TRAPPING, wait_for_output
    service = engine.service
    private = _spec(engine, service.create(ECHO, {}))
    assert {"type": "network"} in private["linux"]["namespaces"]  # loopback only, until networking exists
    host = service.create(ECHO, {"NetworkMode": "host"})
    assert "network" not in {n["type"] for n in _spec(engine, host)["linux"]["namespaces"]}
    with open(host.hosts_path) as f, open("/etc/hosts") as g:
        assert f.read() == g.read()
    assert host.config["Hostname"] == socket.gethostname()  # as dockerd, the host's name with its network
    with pytest.raises(Conflict, match="^cannot join network of a non running container: "):
        service.create(ECHO, {"NetworkMode": f"container:{host.id}"})
    owner = service.create({"Image": "busybox", "Cmd": TRAPPING}, {}, "owner")
    service.start("owner")
    wait_for_output(engine, owner, "ready")
    joined = service.create(ECHO, {"NetworkMode": "container:owner"})
    joined_namespaces = _spec(engine, joined)["linux"]["namespaces"]
    assert {"type": "network", "path": f"/proc/{owner.state.pid}/ns/net"} in joined_namespaces
    assert (joined.hosts_path, joined.resolv_conf_path) == (owner.hosts_path, owner.resolv_conf_path)
    service.start(joined.id)
    assert service.wait(joined.id) == {"StatusCode": 0, "Error": None}
