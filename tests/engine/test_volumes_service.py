"""The volume service over a store in a temp dir: dockerd's create checks
and words, list filters, in-use refusal, prune, and records that survive a
new store (an engine restart)."""
import json
import os
import re

import pytest

from engine.errors import Conflict, InvalidParameter, NotFound, System
from engine.services.volumes import VolumeService
from engine.store.volumes import VolumeStore


@pytest.fixture
def users():
    return {}


@pytest.fixture
def volumes(tmp_path, users):
    store = VolumeStore(str(tmp_path / "volumes"))
    store.load()
    return VolumeService(store, lambda name: users.get(name, []))


def reloaded(service, users) -> VolumeService:
    store = VolumeStore(service.store.root)
    store.load()
    return VolumeService(store, lambda name: users.get(name, []))


def test_create_keeps_the_layout_and_shape_of_dockerd(volumes, users, tmp_path):
    shown = volumes.create({"Name": "data", "Labels": {"a": "b"}})
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)", shown.pop("CreatedAt"))
    assert shown == {"Driver": "local", "Labels": {"a": "b"}, "Mountpoint": str(tmp_path / "volumes/data/_data"),
                     "Name": "data", "Options": None, "Scope": "local"}
    assert os.path.isdir(tmp_path / "volumes/data/_data")
    assert volumes.create({"Name": "data", "Labels": {"other": "1"}})["Labels"] == {"a": "b"}
    generated = volumes.create({})
    assert re.fullmatch(r"[0-9a-f]{64}", generated["Name"]) and generated["Labels"] is None
    assert reloaded(volumes, users).inspect("data") == volumes.inspect("data")


def test_a_create_body_of_the_wrong_shape_is_refused(volumes):
    for body in ([], {"Name": 1}, {"Labels": {"a": 1}}, {"DriverOpts": ["type"]}):
        with pytest.raises(InvalidParameter, match="^invalid volume create request"):
            volumes.create(body)
    assert volumes.list()["Volumes"] == []


@pytest.mark.parametrize("body, kind, message", [
    ({"Name": "x"}, InvalidParameter,
     "create x: volume name is too short, names should be at least two alphanumeric characters"),
    ({"Name": "a/b"}, InvalidParameter,
     'create a/b: "a/b" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" '
     "are allowed. If you intended to pass a host directory, use absolute path"),
    ({"Name": "v3", "Driver": "nope"}, NotFound,
     'create v3: error looking up volume plugin nope: plugin "nope" not found'),
    ({"Name": "v3", "DriverOpts": {"foo": "1"}}, InvalidParameter, 'create v3: invalid option: "foo"'),
    ({"Name": "v3", "DriverOpts": {"type": "tmpfs"}}, InvalidParameter,
     'create v3: missing required option: "device"'),
    ({"Name": "v3", "DriverOpts": {"o": "size=1m"}}, InvalidParameter,
     'create v3: missing required option: "device"'),
])
def test_create_refuses_in_dockerds_words(volumes, body, kind, message):
    with pytest.raises(kind) as err:
        volumes.create(body)
    assert str(err.value) == message
    assert volumes.list()["Volumes"] == []


def test_list_filters(volumes, users):
    volumes.create({"Name": "one", "Labels": {"tier": "db"}})
    volumes.create({"Name": "two"})
    users["two"] = ["c1"]

    def names(**wanted):
        return [v["Name"] for v in volumes.list(json.dumps({k: [v] for k, v in wanted.items()}))["Volumes"]]
    assert names() == ["one", "two"]
    assert names(dangling="true") == ["one"] and names(dangling="0") == ["two"]
    assert names(label="tier=db") == ["one"] and names(name="^t") == ["two"]
    assert names(driver="loc") == [] and names(driver="local") == ["one", "two"]
    with pytest.raises(InvalidParameter, match=r"^Invalid filter 'dangling=\[x\]'$"):
        names(dangling="x")
    with pytest.raises(InvalidParameter, match="^Invalid filter 'foo'$"):
        names(foo="1")


def test_remove_refuses_a_volume_in_use_and_forgives_a_missing_one_with_force(volumes, users, tmp_path):
    volumes.create({"Name": "used"})
    users["used"] = ["c1", "c2"]
    for force in (False, True):
        with pytest.raises(Conflict, match=r"^remove used: volume is in use - \[c1, c2\]$"):
            volumes.remove("used", force)
    with pytest.raises(NotFound, match="^get nope: no such volume$"):
        volumes.remove("nope")
    volumes.remove("nope", force=True)
    users.clear()
    volumes.remove("used")
    assert not os.path.exists(tmp_path / "volumes/used")
    with pytest.raises(NotFound, match="^get used: no such volume$"):
        reloaded(volumes, users).inspect("used")


def test_prune_removes_the_unused_ones_the_labels_keep(volumes, users):
    for name, labels in (("kept", None), ("old", {"x": "1"}), ("used", {"x": "1"})):
        volumes.create({"Name": name, "Labels": labels})
    users["used"] = ["c1"]
    with open(os.path.join(volumes.inspect("old")["Mountpoint"], "f"), "w") as f:
        f.write("12345")
    assert volumes.prune(json.dumps({"label": ["x"]})) == {"VolumesDeleted": ["old"], "SpaceReclaimed": 5}
    assert volumes.prune() == {"VolumesDeleted": ["kept"], "SpaceReclaimed": 0}
    assert volumes.prune() == {"VolumesDeleted": [], "SpaceReclaimed": 0}
    assert [v["Name"] for v in volumes.list()["Volumes"]] == ["used"]


def test_a_directory_without_a_record_is_still_a_volume(volumes, users, tmp_path):
    os.makedirs(tmp_path / "volumes/byhand/_data")
    assert reloaded(volumes, users).inspect("byhand")["Labels"] is None


def test_a_containers_volumes_resolved_copied_up_and_removed(volumes, users, tmp_path):
    """Named ones made when missing, anonymous ones for a lone path and for
    Config.Volumes not covered; the image's content copied into the empty
    ones but a nocopy one; rm -v takes the anonymous ones only."""
    from engine.oci.request import parse_host_config
    from engine.services.container_volumes import ContainerVolumes

    hc = parse_host_config({"Binds": ["data:/etc", "/anon", "empty:/usr:nocopy"]})
    mounts, points = ContainerVolumes(volumes).resolve(hc.mounts, {"/etc": {}, "/var/lib/x/": {}})
    named = {p["Destination"]: p["Name"] for p in points.values()}
    assert named["/etc"] == "data" and named["/usr"] == "empty"
    assert all(re.fullmatch(r"[0-9a-f]{64}", named[d]) for d in ("/anon", "/var/lib/x"))
    assert [(p["Mode"], p["RW"], p["Type"], p["Driver"], p["Propagation"]) for p in points.values()] == [
        ("z", True, "volume", "local", ""), ("", True, "volume", "local", ""),
        ("nocopy", True, "volume", "local", ""), ("", True, "volume", "local", "")]
    assert {m.destination: m.source for m in mounts} == {d: volumes.inspect(n)["Mountpoint"] for d, n in named.items()}

    rootfs = tmp_path / "rootfs"
    for directory in ("etc", "usr", "var/lib/x"):
        os.makedirs(rootfs / directory)
        (rootfs / directory / "file").write_text(directory)
    with open(os.path.join(volumes.inspect("data")["Mountpoint"], "kept"), "w"):
        pass
    ContainerVolumes.copy_up(mounts, str(rootfs))
    assert {d: sorted(os.listdir(volumes.inspect(n)["Mountpoint"])) for d, n in named.items()} == {
        "/etc": ["kept"], "/anon": [], "/usr": [], "/var/lib/x": ["file"]}

    users.update({name: ["c1"] for name in named.values()})
    ContainerVolumes(volumes).removed(points)
    assert len(volumes.list()["Volumes"]) == 4
    users.clear()
    ContainerVolumes(volumes).removed(points)
    assert [v["Name"] for v in volumes.list()["Volumes"]] == ["data", "empty"]


def test_a_volume_stays_mounted_while_another_running_container_uses_it():
    from types import SimpleNamespace

    from engine.services.container_volumes import ContainerVolumes, NoVolumes

    calls = []
    provider = NoVolumes()
    provider.mount = lambda name, container_id, destination, writable: calls.append(("mount", name, writable))
    provider.unmount = lambda name, container_id, last_user: calls.append(("unmount", name, last_user))
    shared = {"/s": {"Type": "volume", "Name": "shared", "Destination": "/s", "RW": False},
              "/o": {"Type": "volume", "Name": "own", "Destination": "/o", "RW": True},
              "/b": {"Type": "bind", "Name": ""}}
    others = [SimpleNamespace(id="c2", mount_points={"/x": {"Type": "volume", "Name": "shared"}})]
    volumes = ContainerVolumes(provider, lambda: others)
    volumes.starting("c1", shared)
    volumes.stopped("c1", shared)
    others.clear()
    volumes.stopped("c1", shared)
    assert calls == [("mount", "shared", False), ("mount", "own", True), ("unmount", "shared", False),
                     ("unmount", "own", True), ("unmount", "shared", True), ("unmount", "own", True)]


def test_a_tmpfs_volume_is_mounted_and_unmounted_and_a_bad_one_refused(volumes):
    from engine.services.volumes import _mounted_on

    options = {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}
    path = volumes.create({"Name": "tm", "DriverOpts": options})["Mountpoint"]
    try:
        volumes.mount("tm", "c1", "/t", True)
        volumes.mount("tm", "c2", "/t", True)
        assert _mounted_on(path)
        with open(os.path.join(path, "f"), "w"):
            pass
    finally:
        volumes.unmount("tm", "c2", last_user=True)
    assert not _mounted_on(path) and os.listdir(path) == []
    volumes.create({"Name": "bad", "DriverOpts": {"type": "nosuchfs", "device": "x"}})
    with pytest.raises(System, match=r"^error while mounting volume '.*/bad/_data': failed to mount local volume: "):
        volumes.mount("bad", "c1", "/b", True)


def test_a_refused_volume_leaves_no_anonymous_one_made_before_it(volumes):
    from engine.oci.request import parse_host_config
    from engine.services.container_volumes import ContainerVolumes

    hc = parse_host_config({"Binds": ["/anon", "x:/d"]})
    with pytest.raises(InvalidParameter, match="^create x: volume name is too short"):
        ContainerVolumes(volumes).resolve(hc.mounts, {})
    assert volumes.list()["Volumes"] == []


def test_rm_v_keeps_an_anonymous_volume_a_container_names(volumes, users):
    """dockerd's removeMountPoints skips a mount given by name (`-v <name>:/path`), even the name
    of an anonymous volume: compose recreates a container so, and `down -v` then leaves it."""
    from engine.oci.request import parse_host_config
    from engine.services.container_volumes import ContainerVolumes

    _, first = ContainerVolumes(volumes).resolve(parse_host_config({"Binds": ["/cache"]}).mounts, {})
    anonymous = first["/cache"]["Name"]
    hc = parse_host_config({"Binds": [f"{anonymous}:/cache:rw", "/other"]})
    _, second = ContainerVolumes(volumes).resolve(hc.mounts, {})
    ContainerVolumes(volumes).removed(second)
    assert [v["Name"] for v in volumes.list()["Volumes"]] == [anonymous]
    ContainerVolumes(volumes).removed(first)
    assert volumes.list()["Volumes"] == []
