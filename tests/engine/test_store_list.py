"""engine.store's ``ps``: newest first, all/limit, every container filter,
the legacy since/before parameters, and no disk access per list."""
import builtins
import threading

import pytest

from engine.errors import InvalidParameter
from engine.store import Container, ContainerStore, State, go_time, new_id
from engine.store import containers as store_module

BASE = 1_796_527_952_000_000_000
STARTED = go_time(BASE + 5)


@pytest.fixture
def store(tmp_path):
    store = ContainerStore(str(tmp_path / "containers"))
    store.load()
    return store


def added(store, name, age, state=None, labels=None, image="sha256:busybox", **fields):
    """A record created ``age`` seconds before the newest possible one."""
    container_id = fields.pop("container_id", None) or new_id()
    record = Container(id=container_id, name=store.reserve_name(container_id, name), image=image,
                       config={"Labels": labels or {}}, host_config={}, created=go_time(BASE - age * 10**9),
                       state=state or State(), **fields)
    store.add(record)
    return record


def running():
    return State(running=True, pid=10, started_at=STARTED)


def exited(code):
    return State(exit_code=code, started_at=STARTED, finished_at=go_time(BASE + 9))


def names(records):
    return [r.name.lstrip("/") for r in records]


@pytest.fixture
def fleet(store):
    added(store, "old", 50, exited(0), {"app": "db"})
    added(store, "up", 40, running(), {"app": "web", "com.docker.compose.project": "p"})
    added(store, "made", 30, None, {"app": "web"})
    added(store, "failed", 20, exited(3), {"com.docker.compose.project": "p"})
    added(store, "paused", 10, State(running=True, paused=True, started_at=STARTED))
    return store


def test_newest_first_and_only_running_by_default(fleet):
    assert names(fleet.list_containers(all=True)) == ["paused", "failed", "made", "up", "old"]
    assert names(fleet.list_containers()) == ["paused", "up"]


def test_order_survives_a_reload_and_adds_in_any_order(fleet):
    added(fleet, "middle", 35)
    again = ContainerStore(fleet.root)
    again.load()
    assert names(again.list_containers(all=True)) == ["paused", "failed", "made", "middle", "up", "old"]


def test_a_limit_counts_stopped_containers_too(fleet):
    assert names(fleet.list_containers(limit=3)) == ["paused", "failed", "made"]
    assert names(fleet.list_containers(limit=2, filters_param='{"label":{"app":true}}')) == ["made", "up"]


def test_label_filters_as_compose_sends_them(fleet):
    compose = '{"label":{"com.docker.compose.project=p":true}}'
    assert names(fleet.list_containers(all=True, filters_param=compose)) == ["failed", "up"]
    assert names(fleet.list_containers(all=True, filters_param='{"label":["app=web"]}')) == ["made", "up"]
    assert names(fleet.list_containers(all=True, filters_param='{"label":{"app":true,"com.docker.compose.project=p"'
                                                                ':true}}')) == ["up"]


def test_name_filters_are_expressions_on_the_name_with_or_without_its_slash(fleet):
    assert names(fleet.list_containers(all=True, filters_param='{"name":{"^/?(up|made)$":true}}')) == ["made", "up"]
    assert names(fleet.list_containers(all=True, filters_param='{"name":{"ai":true}}')) == ["failed"]


def test_an_id_filter_takes_a_unique_prefix(store):
    one = added(store, "one", 3, container_id="ab12" + "0" * 60)
    added(store, "two", 2, container_id="ab34" + "0" * 60)
    assert names(store.list_containers(all=True, filters_param='{"id":{"ab1":true}}')) == ["one"]
    assert store.list_containers(all=True, filters_param='{"id":{"ab":true}}') == []  # ambiguous
    assert names(store.list_containers(all=True, filters_param='{"id":["%s"],"name":["one"]}' % one.id)) == ["one"]
    assert store.list_containers(all=True, filters_param='{"id":["%s"],"name":["two"]}' % one.id) == []


def test_status_filters_list_stopped_ones_without_all(fleet):
    assert names(fleet.list_containers(filters_param='{"status":{"exited":true}}')) == ["failed", "old"]
    assert names(fleet.list_containers(filters_param='{"status":["created","paused"]}')) == ["paused", "made"]


def test_a_bad_filter_lists_nothing_and_says_why(fleet):
    with pytest.raises(InvalidParameter, match="^Invalid filter 'status=up'$"):
        fleet.list_containers(filters_param='{"status":{"up":true}}')
    with pytest.raises(InvalidParameter, match="^invalid filter$"):
        fleet.list_containers(filters_param="{")


def test_exited_filters_only_containers_that_ran(fleet):
    assert names(fleet.list_containers(all=True, filters_param='{"exited":{"0":true}}')) == ["old"]
    assert names(fleet.list_containers(all=True, filters_param='{"exited":["3","0"]}')) == ["failed", "old"]


def test_before_and_since_cut_the_list_at_a_container(fleet):
    assert names(fleet.list_containers(all=True, filters_param='{"before":{"made":true}}')) == ["up", "old"]
    assert names(fleet.list_containers(all=True, filters_param='{"since":{"made":true}}')) == ["paused", "failed"]
    assert names(fleet.list_containers(all=True, since="/made", before="paused")) == ["failed"]


def test_health_filters(store):
    added(store, "sick", 3, State(running=True, started_at=STARTED, health={"Status": "unhealthy"}))
    added(store, "plain", 2, running())
    assert names(store.list_containers(filters_param='{"health":{"unhealthy":true}}')) == ["sick"]
    assert names(store.list_containers(filters_param='{"health":{"none":true}}')) == ["plain"]


def test_volume_filters_by_name_source_or_destination(store):
    added(store, "vol", 3, mount_points={"/data": {"Name": "dbdata", "Source": "", "Destination": "/data"}})
    added(store, "bind", 2, mount_points={"/src": {"Name": "", "Source": "/home/u/src", "Destination": "/src"}})
    listed = lambda value: names(store.list_containers(all=True, filters_param='{"volume":["%s"]}' % value))
    assert listed("dbdata") == ["vol"] and listed("/data") == ["vol"] and listed("/home/u/src") == ["bind"]
    assert listed("nope") == []


def test_network_filters_by_name_or_id_prefix(store):
    added(store, "onnet", 3, network_settings={"Networks": {"front": {"NetworkID": "f00d" + "0" * 60}}})
    added(store, "alone", 2, network_settings={"Networks": {}})
    listed = lambda value: names(store.list_containers(all=True, filters_param='{"network":["%s"]}' % value))
    assert listed("front") == ["onnet"] and listed("f00d") == ["onnet"] and listed("back") == []


def test_ancestor_filters_through_the_image_callback(store):
    added(store, "base", 3, image="sha256:base")
    added(store, "child", 2, image="sha256:child")
    added(store, "other", 1, image="sha256:other")
    family = {"busybox": ["sha256:base", "sha256:child"]}
    listed = store.list_containers(all=True, filters_param='{"ancestor":["busybox"]}', resolve_ancestors=family.get)
    assert names(listed) == ["child", "base"]
    assert store.list_containers(all=True, filters_param='{"ancestor":["nosuch"]}',
                                 resolve_ancestors=family.get) == []


def test_publish_and_expose_filters(store):
    ports = {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}], "53/udp": None}
    added(store, "ported", 2, running(), network_settings={"Ports": ports})
    added(store, "bare", 1, running())
    listed = lambda f: names(store.list_containers(filters_param=f))
    assert listed('{"publish":["8080"]}') == ["ported"] and listed('{"publish":["80"]}') == []
    assert listed('{"expose":["80/tcp"]}') == ["ported"] and listed('{"expose":["53/udp"]}') == ["ported"]
    assert listed('{"expose":["50-60/udp"]}') == ["ported"] and listed('{"expose":["53"]}') == []


def test_is_task_filters_swarm_managed_containers(store):
    added(store, "task", 2, running(), managed=True)
    added(store, "plain", 1, running())
    assert names(store.list_containers(filters_param='{"is-task":["true"]}')) == ["task"]
    assert names(store.list_containers(filters_param='{"is-task":["false"]}')) == ["plain"]


def test_a_list_touches_no_disk(fleet, monkeypatch):
    def no_disk(*args, **kwargs):
        raise AssertionError("the list read the disk")

    for name in ("listdir", "stat", "open", "scandir"):
        monkeypatch.setattr(store_module.os, name, no_disk)
    monkeypatch.setattr(builtins, "open", no_disk)
    assert names(fleet.list_containers(all=True, filters_param='{"label":{"com.docker.compose.project=p":true}}'))\
        == ["failed", "up"]
    assert fleet.get("up").name == "/up"


def test_a_list_does_not_wait_for_a_create_writing_to_disk(fleet, monkeypatch):
    real_write, seen = store_module.write_json_atomically, []

    def write_while_listing(path, value):
        lister = threading.Thread(target=lambda: seen.append(names(fleet.list_containers(all=True))))
        lister.start()
        lister.join(timeout=30)  # only guards against a hang: with the lock held it never ends
        real_write(path, value)

    monkeypatch.setattr(store_module, "write_json_atomically", write_while_listing)
    added(fleet, "newest", 0)
    assert seen[0] == ["paused", "failed", "made", "up", "old"]
    assert names(fleet.list_containers(all=True))[0] == "newest"
