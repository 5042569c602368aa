"""engine.store.summary: a record as ``docker ps`` receives it, compared with
what dockerd 20.10 answered for the same container, inspect's
NetworkSettings with the default network's address on top, and the list's
kept encoding, which must never show a record as it was before a save."""
import json

import pytest

from engine.store import Container, ContainerStore, State, go_time
from engine.store.record import inspect_network_settings
from engine.store.summary import encoded_list, human_duration, status_text, summary

NOW = 1_796_527_952_000_000_000
ENDPOINT = {"IPAMConfig": None, "Links": None, "Aliases": None, "NetworkID": "", "EndpointID": "", "Gateway": "",
            "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
            "MacAddress": "", "DriverOpts": None}


def ago(seconds):
    return go_time(NOW - int(seconds * 1e9))


@pytest.mark.parametrize("seconds, words", [
    (0.5, "Less than a second"), (1, "1 second"), (59, "59 seconds"), (60, "About a minute"), (119, "About a minute"),
    (120, "2 minutes"), (3599, "59 minutes"), (3600, "About an hour"), (5399, "About an hour"), (5400, "2 hours"),
    (47 * 3600, "47 hours"), (48 * 3600, "2 days"), (14 * 86400, "2 weeks"), (60 * 86400, "2 months"),
    (2 * 365 * 86400, "2 years"),
])
def test_durations_in_go_units_words(seconds, words):
    assert human_duration(seconds) == words


@pytest.mark.parametrize("state, text", [
    (State(), "Created"),
    (State(running=True, started_at=ago(300)), "Up 5 minutes"),
    (State(running=True, paused=True, started_at=ago(2)), "Up 2 seconds (Paused)"),
    (State(running=True, restarting=True, exit_code=1, started_at=ago(9), finished_at=ago(3)),
     "Restarting (1) 3 seconds ago"),
    (State(running=True, started_at=ago(30), health={"Status": "starting"}), "Up 30 seconds (health: starting)"),
    (State(running=True, started_at=ago(30), health={"Status": "healthy"}), "Up 30 seconds (healthy)"),
    (State(exit_code=137, started_at=ago(90), finished_at=ago(60)), "Exited (137) About a minute ago"),
    (State(removal_in_progress=True, started_at=ago(9)), "Removal In Progress"),
    (State(dead=True, started_at=ago(9)), "Dead"),
])
def test_status_in_dockerds_words(state, text):
    assert status_text(state, NOW) == text


def test_a_created_container_as_dockerd_listed_it():
    record = Container(
        id="02656d0222f6debd1a53ecd636222f16d3db3dfe1cc59e05d65f753edeac40b2", name="/web",
        image="sha256:e4da63c0f6805d2c60cde124673ecc4858a21256d2c519142ce2bee2f978bdfc",
        config={"Image": "busybox", "Cmd": ["sh"], "Labels": {}}, host_config={"NetworkMode": "default"},
        path="sh", created="2026-12-06T03:32:32.926365265Z",
        network_settings={"Networks": {"bridge": dict(ENDPOINT, IPAMOperational=False)}, "Ports": None},
        mount_points={"/data": {"Source": "", "Destination": "/data", "RW": True, "Name": "2d4d", "Driver": "local",
                                "Type": "volume", "Spec": {}, "SkipMountpointCreation": False}})
    assert summary(record, now_ns=NOW) == {
        "Id": record.id, "Names": ["/web"], "Image": "busybox", "ImageID": record.image, "Command": "sh",
        "Created": 1796527952, "Ports": [], "Labels": {}, "State": "created", "Status": "Created",
        "HostConfig": {"NetworkMode": "default"}, "NetworkSettings": {"Networks": {"bridge": ENDPOINT}},
        "Mounts": [{"Type": "volume", "Name": "2d4d", "Source": "", "Destination": "/data", "Driver": "local",
                    "Mode": "", "RW": True, "Propagation": ""}],
    }


def test_command_ports_and_sizes():
    record = Container(id="f" * 64, name="/x", image="sha256:i", config={}, host_config={}, path="sh",
                       args=["-c", "echo hi"], network_settings={"Ports": {
                           "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}], "53/udp": None}})
    entry = summary(record, image="sha256:i", sizes=(0, 1234), now_ns=NOW)
    assert entry["Command"] == "sh -c 'echo hi'" and entry["Image"] == "sha256:i"
    assert entry["Ports"] == [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
                              {"PrivatePort": 53, "Type": "udp"}]
    # a size of 0 is left out, as dockerd's omitempty leaves an unchanged container's SizeRw
    assert list(entry)[7:9] == ["SizeRootFs", "Labels"] and entry["SizeRootFs"] == 1234
    assert list(summary(record, sizes=(5, 1234), now_ns=NOW))[7:10] == ["SizeRw", "SizeRootFs", "Labels"]


def test_inspect_puts_the_default_networks_address_on_top():
    bridge = dict(ENDPOINT, IPAddress="172.17.0.2", Gateway="172.17.0.1", IPPrefixLen=16, IPAMOperational=False)
    shown = inspect_network_settings({"SandboxID": "s", "Networks": {"bridge": bridge}, "IsAnonymousEndpoint": False})
    assert shown["IPAddress"] == "172.17.0.2" and shown["Gateway"] == "172.17.0.1" and shown["IPPrefixLen"] == 16
    assert shown["SandboxID"] == "s" and "IsAnonymousEndpoint" not in shown
    assert "IPAMOperational" not in shown["Networks"]["bridge"]
    assert inspect_network_settings({})["IPAddress"] == "" and inspect_network_settings({})["Networks"] == {}


def listed(records, now_ns):
    return json.loads(encoded_list(records, now_ns))


def test_the_kept_encoding_is_the_summary_and_follows_every_change(tmp_path):
    store = ContainerStore(str(tmp_path / "containers"))
    store.load()
    record = Container(id="a" * 64, name=store.reserve_name("a" * 64, "web"), image="sha256:i",
                       config={"Image": "busybox", "Labels": {"é": "ü"}}, host_config={}, path="sleep", args=["9"],
                       network_settings={"Networks": {"bridge": dict(ENDPOINT)}, "Ports": None})
    store.add(record)
    other = Container(id="b" * 64, name=store.reserve_name("b" * 64, "db"), image="sha256:i", config={},
                      host_config={}, state=State(running=True, started_at=ago(2)))
    store.add(other)
    both = [record, other]
    assert encoded_list(both, NOW) == json.dumps([summary(r, now_ns=NOW) for r in both], separators=(",", ":"),
                                                  ensure_ascii=False).encode()
    # the clock moves: the kept encoding's Status with it
    assert listed(both, NOW + 60 * 10**9)[1]["Status"] == "Up About a minute"
    # a change of state is shown even before it is saved, State and Status together
    record.state.set_running(7, ago(1))
    assert [listed([record], NOW)[0][key] for key in ("State", "Status")] == ["running", "Up 1 second"]
    # a change saved (here, an address given at start) is shown at once
    record.network_settings["Networks"]["bridge"]["IPAddress"] = "172.17.0.2"
    store.save(record)
    assert listed([record], NOW)[0]["NetworkSettings"]["Networks"]["bridge"]["IPAddress"] == "172.17.0.2"
    store.rename(record.id, "front")
    assert listed([record], NOW)[0]["Names"] == ["/front"]
