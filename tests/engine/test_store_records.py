"""engine.store's records on disk: dockerd's layout and time format, reload
after a restart, removal, and what a writer killed half-way leaves behind."""
import json
import logging
import os
from types import SimpleNamespace

import pytest

from engine.errors import System
from engine.store import ZERO_TIME, Container, ContainerStore, State, go_time, new_id, parse_go_time
from engine.store import containers as store_module
from engine.store import record as record_module


def new_store(tmp_path):
    store = ContainerStore(str(tmp_path / "containers"))
    assert store.load() == []
    return store


def added(store, name=None, **fields):
    container_id = new_id()
    record = Container(id=container_id, name=store.reserve_name(container_id, name), image="sha256:" + "ab" * 32,
                       config={"Image": "busybox", "Cmd": ["true"], "Labels": {"a": "1"}},
                       host_config={"Memory": 0, "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}},
                       path="true", driver="overlayfs", **fields)
    store.add(record)
    return record


def test_ids_are_64_hex_and_their_short_form_never_all_digits(monkeypatch):
    draws = iter(["1234567890ab" + "0" * 52, "123456789012" + "f" * 52, "0123456789ab" + "c" * 52])
    monkeypatch.setattr(record_module, "os", SimpleNamespace(urandom=lambda n: bytes.fromhex(next(draws))))
    assert new_id() == "1234567890ab" + "0" * 52
    assert new_id() == "0123456789ab" + "c" * 52  # the all-digit one was drawn again
    monkeypatch.undo()
    ids = {new_id() for _ in range(50)}
    assert len(ids) == 50 and all(len(i) == 64 and int(i, 16) >= 0 for i in ids)


@pytest.mark.parametrize("ns, text", [
    (0, "1970-01-01T00:00:00Z"),
    (1_796_527_952_926_365_265, "2026-12-06T03:32:32.926365265Z"),
    (1_796_527_952_900_000_000, "2026-12-06T03:32:32.9Z"),
])
def test_times_are_gos_rfc3339nano(ns, text):
    assert go_time(ns) == text and parse_go_time(text) == ns


def test_other_offsets_and_the_zero_time_parse():
    assert parse_go_time("2026-12-06T04:32:32.5+01:00") == parse_go_time("2026-12-06T03:32:32.5Z")
    assert parse_go_time(ZERO_TIME) < 0


def test_the_record_is_dockerds_layout(tmp_path):
    store = new_store(tmp_path)
    record = added(store, "web")
    directory = tmp_path / "containers" / record.id
    assert sorted(os.listdir(directory)) == ["config.v2.json", "hostconfig.json"]
    body = json.loads((directory / "config.v2.json").read_text())
    assert body["ID"] == record.id and body["Name"] == "/web" and body["Config"]["Cmd"] == ["true"]
    assert body["State"]["StartedAt"] == ZERO_TIME and body["State"]["Health"] is None
    assert "HostConfig" not in body
    assert list(body)[:9] == ["StreamConfig", "State", "ID", "Created", "Managed", "Path", "Args", "Config", "Image"]
    assert json.loads((directory / "hostconfig.json").read_text())["RestartPolicy"]["Name"] == "no"


def test_inspect_has_dockerds_keys_in_its_order(tmp_path):
    record = added(new_store(tmp_path), "web")
    shown = record.inspect()
    assert list(shown) == ["Id", "Created", "Path", "Args", "State", "Image", "ResolvConfPath", "HostnamePath",
                           "HostsPath", "LogPath", "Name", "RestartCount", "Driver", "Platform", "MountLabel",
                           "ProcessLabel", "AppArmorProfile", "ExecIDs", "HostConfig", "GraphDriver", "Mounts",
                           "Config", "NetworkSettings"]
    assert shown["State"] == {"Status": "created", "Running": False, "Paused": False, "Restarting": False,
                              "OOMKilled": False, "Dead": False, "Pid": 0, "ExitCode": 0, "Error": "",
                              "StartedAt": ZERO_TIME, "FinishedAt": ZERO_TIME}
    assert shown["Platform"] == "linux" and shown["ExecIDs"] is None and shown["Mounts"] == []


@pytest.mark.parametrize("fields, status", [
    ({}, "created"),
    ({"running": True, "started_at": "2026-12-06T03:32:32Z"}, "running"),
    ({"running": True, "paused": True}, "paused"),
    ({"running": True, "restarting": True}, "restarting"),
    ({"removal_in_progress": True, "started_at": "2026-12-06T03:32:32Z"}, "removing"),
    ({"dead": True}, "dead"),
    ({"started_at": "2026-12-06T03:32:32Z", "exit_code": 3}, "exited"),
])
def test_status_is_derived_as_dockerds(fields, status):
    assert State(**fields).status == status


def test_health_shows_in_inspect_only_when_there_is_one():
    state = State(running=True, health={"Status": "healthy", "FailingStreak": 0, "Log": []})
    assert state.inspect()["Health"]["Status"] == "healthy" and state.health_status == "healthy"
    assert State().health_status == "none"


def test_a_new_store_over_the_same_directory_finds_everything(tmp_path):
    store = new_store(tmp_path)
    web = added(store, "web")
    web.state = State(running=True, pid=42, started_at=go_time())
    web.restart_count = 2
    store.save(web)
    other = added(store)
    again = ContainerStore(store.root)
    assert again.load() == []
    assert again.get("web") == web and again.get(other.id) == other
    assert [r.id for r in again.all()] == [other.id, web.id]


def test_a_changed_record_replaces_the_old_one_on_disk(tmp_path):
    store = new_store(tmp_path)
    record = added(store, "web")
    record.host_config["Memory"] = 1 << 30
    record.state.exit_code = 7
    store.save(record)
    reloaded = ContainerStore(store.root)
    reloaded.load()
    assert reloaded.get("web").host_config["Memory"] == 1 << 30 and reloaded.get("web").state.exit_code == 7


def test_a_write_killed_before_its_rename_leaves_the_old_record(tmp_path):
    store = new_store(tmp_path)
    record = added(store, "web")
    directory = tmp_path / "containers" / record.id
    (directory / ".tmp-config.v2.json").write_text('{"ID": "' + record.id[:20])  # half a file, never renamed
    again = ContainerStore(store.root)
    assert again.load() == []
    assert again.get("web") == record
    assert sorted(os.listdir(directory)) == ["config.v2.json", "hostconfig.json"]  # the leftover is swept


def test_a_create_or_remove_killed_half_way_leaves_nothing(tmp_path):
    store = new_store(tmp_path)
    kept = added(store, "kept")
    creating = tmp_path / "containers" / (".creating-" + new_id())
    creating.mkdir()
    (creating / ".tmp-hostconfig.json").write_text("{")
    removing = tmp_path / "containers" / (".removing-" + new_id())
    removing.mkdir()
    (removing / "config.v2.json").write_text("{}")
    again = ContainerStore(store.root)
    assert again.load() == []
    assert [r.id for r in again.all()] == [kept.id]
    assert os.listdir(tmp_path / "containers") == [kept.id]


def test_a_write_that_fails_keeps_the_old_file_and_no_temp(tmp_path, monkeypatch):
    store = new_store(tmp_path)
    record = added(store, "web")
    before = (tmp_path / "containers" / record.id / "config.v2.json").read_text()
    record.state.exit_code = 9

    def no_space(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store_module.os, "fsync", no_space)
    with pytest.raises(System, match=f"Error saving container {record.id} to disk: .*No space left on device"):
        store.save(record)
    monkeypatch.undo()
    assert (tmp_path / "containers" / record.id / "config.v2.json").read_text() == before
    assert sorted(os.listdir(tmp_path / "containers" / record.id)) == ["config.v2.json", "hostconfig.json"]


def test_a_failed_add_leaves_no_directory_and_frees_the_name(tmp_path, monkeypatch):
    store = new_store(tmp_path)
    monkeypatch.setattr(store_module, "write_json_atomically", lambda path, value: (_ for _ in ()).throw(
        OSError(28, "No space left on device")))
    with pytest.raises(System):
        added(store, "web")
    monkeypatch.undo()
    assert os.listdir(tmp_path / "containers") == []
    assert added(store, "web").name == "/web"


def edit(directory, **changes):
    path = directory / "config.v2.json"
    path.write_text(json.dumps(dict(json.loads(path.read_text()), **changes)))


@pytest.mark.parametrize("damage, reason", [
    (lambda d: (d / "config.v2.json").write_text('{"ID": "'), "Unterminated string"),
    (lambda d: (d / "config.v2.json").write_text("[]"), "not a JSON object"),
    (lambda d: (d / "config.v2.json").write_text('{"ID": "x"}'), "missing or invalid field Name"),
    (lambda d: (d / "config.v2.json").write_text('{"ID": 1}'), "ID is not a JSON string"),
    (lambda d: edit(d, Config=[]), "Config is not a JSON object"),
    (lambda d: edit(d, State="running"), "State is not a JSON object"),
    (lambda d: edit(d, Config={"Labels": ["a=1"]}), "Config.Labels is not a JSON object"),
    (lambda d: edit(d, State={"Running": 1}), "State.Running is not a JSON boolean"),
    (lambda d: edit(d, RestartCount=True), "RestartCount is not a JSON number"),
    (lambda d: edit(d, Created="yesterday"), "Invalid isoformat string"),
    (lambda d: (d / "config.v2.json").unlink(), "No such file or directory: config.v2.json"),
    (lambda d: (d / "hostconfig.json").write_text("{"), "Expecting property name"),
])
def test_a_corrupt_record_is_skipped_with_a_log_line(tmp_path, caplog, damage, reason):
    store = new_store(tmp_path)
    bad, good = added(store, "bad"), added(store, "good")
    damage(tmp_path / "containers" / bad.id)
    again = ContainerStore(store.root)
    with caplog.at_level(logging.ERROR):
        skipped = again.load()
    assert len(skipped) == 1 and skipped[0].startswith(f"failed to load container {bad.id}: ") and reason in skipped[0]
    assert skipped[0] in caplog.text
    assert [r.id for r in again.all()] == [good.id]
    assert os.path.isdir(tmp_path / "containers" / bad.id)  # left for the user, as dockerd leaves it
    assert added(again, "bad").name == "/bad"


def test_a_missing_hostconfig_reads_as_empty_as_dockerd_reads_it(tmp_path):
    store = new_store(tmp_path)
    record = added(store, "web")
    (tmp_path / "containers" / record.id / "hostconfig.json").unlink()
    again = ContainerStore(store.root)
    assert again.load() == [] and again.get("web").host_config == {}


def test_a_record_in_the_wrong_directory_is_skipped(tmp_path):
    store = new_store(tmp_path)
    record = added(store, "web")
    os.rename(tmp_path / "containers" / record.id, tmp_path / "containers" / ("f" * 64))
    again = ContainerStore(store.root)
    assert again.load() == [f"failed to load container {'f' * 64}: its config.v2.json names container {record.id}"]


def test_remove_deletes_the_directory_and_everything_in_it(tmp_path):
    store = new_store(tmp_path)
    record = added(store, "web")
    (tmp_path / "containers" / record.id / f"{record.id}-json.log").write_text("{}\n")
    assert store.remove(record.id) is record
    assert os.listdir(tmp_path / "containers") == [] and store.all() == []
    again = ContainerStore(store.root)
    assert again.load() == [] and again.all() == []


def test_two_saves_of_one_record_at_once_both_finish_whole(tmp_path, monkeypatch):
    store = new_store(tmp_path)
    record = added(store, "web")
    real_dump, nested = store_module.json.dump, []

    def dump_with_a_second_writer_in_between(value, f, **kwargs):
        if not nested and isinstance(value, dict) and "State" in value:
            nested.append(True)
            record.state.exit_code = 2
            store.save(record)  # the other writer runs its whole save meanwhile
            value = dict(value, State=dict(value["State"], ExitCode=1))
        real_dump(value, f, **kwargs)

    monkeypatch.setattr(store_module.json, "dump", dump_with_a_second_writer_in_between)
    store.save(record)
    monkeypatch.undo()
    again = ContainerStore(store.root)
    assert again.load() == [] and again.get("web").state.exit_code == 1
    assert sorted(os.listdir(tmp_path / "containers" / record.id)) == ["config.v2.json", "hostconfig.json"]


def test_state_transitions_as_dockerds():
    state = State()
    state.set_running(42, "2026-12-06T03:00:00Z")
    assert (state.status, state.pid, state.started_at) == ("running", 42, "2026-12-06T03:00:00Z")
    state.set_restarting(3, "2026-12-06T03:01:00Z")
    assert (state.status, state.pid, state.exit_code, state.finished_at) == ("restarting", 0, 3,
                                                                              "2026-12-06T03:01:00Z")
    state.set_running(43, "2026-12-06T03:02:00Z")
    assert (state.status, state.exit_code, state.error) == ("running", 0, "")
    state.set_stopped(137, "2026-12-06T03:03:00Z", oom_killed=True)
    assert (state.status, state.pid, state.exit_code, state.oom_killed) == ("exited", 0, 137, True)
    assert state.started_at == "2026-12-06T03:02:00Z"
    state.set_running(44, "x", initial=False)  # found running after a restart: its start time stays
    assert state.started_at == "2026-12-06T03:02:00Z"


def test_a_failed_start_keeps_a_code_it_already_has():
    never = State()
    never.set_start_failed('exec: "nope": executable file not found in $PATH', 127)
    assert (never.status, never.exit_code, never.error) == ("created", 127,
                                                            'exec: "nope": executable file not found in $PATH')
    ran = State(exit_code=2, started_at="2026-12-06T03:00:00Z")
    ran.set_start_failed("boom")
    assert ran.exit_code == 2 and ran.error == "boom"
