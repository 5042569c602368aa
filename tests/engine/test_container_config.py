"""The Config and HostConfig a record keeps, as dockerd stores them: a
sparse request (docker-py's, testcontainers') completed with every field
and dockerd's create-time defaults, the image's config merged in. Checked
against dockerd itself in test_dockerpy_scenarios."""
from engine.oci import parse_config, parse_host_config
from engine.oci.spec import DEFAULT_MASKED_PATHS
from engine.services.container_config import stored_config, stored_host_config
from engine_fakes import FakeHost


def stored(host_config: dict, cgroup_version: int = 1) -> dict:
    host = FakeHost()
    host.cgroup_version = cgroup_version
    return stored_host_config(host_config, parse_host_config(host_config), host)


def test_an_empty_host_config_gets_every_field_and_dockerds_defaults():
    shown = stored({})
    # as dockerd 20.10 shows a body without one
    assert len(shown) == 64 and "Runtime" not in shown and "Init" not in shown
    assert (shown["IpcMode"], shown["CgroupnsMode"], shown["ShmSize"], shown["NetworkMode"]) == \
        ("private", "host", 64 << 20, "default")
    assert shown["RestartPolicy"] == {"Name": "", "MaximumRetryCount": 0} and shown["ConsoleSize"] == [0, 0]
    assert shown["OomKillDisable"] is False and shown["PidsLimit"] is None and shown["SecurityOpt"] is None
    assert shown["MaskedPaths"] == list(DEFAULT_MASKED_PATHS)
    assert stored({}, cgroup_version=2)["CgroupnsMode"] == "private"
    unset = stored({"PidsLimit": -1, "MemorySwappiness": -1})
    assert (unset["PidsLimit"], unset["MemorySwappiness"]) == (None, None)
    assert stored({"PidsLimit": 5, "MemorySwappiness": 10})["PidsLimit"] == 5


def test_privileged_memory_and_host_ipc_as_dockerd_completes_them():
    shown = stored({"Privileged": True, "Memory": 16 << 20, "Runtime": "runc", "RestartPolicy": {}})
    assert (shown["MemorySwap"], shown["SecurityOpt"], shown["MaskedPaths"], shown["Runtime"]) == \
        (32 << 20, ["label=disable"], None, "runc")
    assert shown["RestartPolicy"] == {"Name": "", "MaximumRetryCount": 0}
    assert stored({"IpcMode": "host", "SecurityOpt": ["label=user:u"]})["SecurityOpt"] == ["label=user:u"]
    assert stored({"IpcMode": "host"})["SecurityOpt"] == ["label=disable"]


def test_the_images_labels_ports_volumes_and_stop_signal_are_merged_the_requests_winning():
    request = {"Image": "i", "Labels": {"a": "run"}, "ExposedPorts": {"80/tcp": {}}, "NetworkDisabled": False}
    image = {"Labels": {"a": "image", "b": "image"}, "ExposedPorts": {"53/udp": {}}, "Volumes": {"/data": {}},
             "StopSignal": "SIGUSR1", "Cmd": ["sh"]}
    shown = stored_config(request, parse_config({"Hostname": "h", "Cmd": ["sh"]}), image)
    assert shown["Labels"] == {"a": "run", "b": "image"} and shown["StopSignal"] == "SIGUSR1"
    assert shown["ExposedPorts"] == {"53/udp": {}, "80/tcp": {}} and shown["Volumes"] == {"/data": {}}
    assert "NetworkDisabled" not in shown and shown["Domainname"] == "" and shown["Hostname"] == "h"
    bare = stored_config({"Image": "i"}, parse_config({}), {})
    assert bare["Labels"] == {} and "StopSignal" not in bare and bare["Volumes"] is None
