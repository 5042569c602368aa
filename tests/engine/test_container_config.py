"""The Config and HostConfig a record keeps, as dockerd stores them: a
sparse request (docker-py's, testcontainers') completed with every field
and dockerd's create-time defaults, the image's config merged in. Checked
against dockerd itself in test_dockerpy_scenarios."""
from engine.oci import parse_config, parse_host_config
from engine.oci.spec import DEFAULT_MASKED_PATHS
from engine.services.config_merge import image_metadata
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


# dockerd 20.10's answer for a compose container (docker-compose 1.29 sends these fields)
DOCKERD_HOST_CONFIG_KEYS = [
    "Binds", "ContainerIDFile", "LogConfig", "NetworkMode", "PortBindings", "RestartPolicy", "AutoRemove",
    "VolumeDriver", "VolumesFrom", "CapAdd", "CapDrop", "CgroupnsMode", "Dns", "DnsOptions", "DnsSearch", "ExtraHosts",
    "GroupAdd", "IpcMode", "Cgroup", "Links", "OomScoreAdj", "PidMode", "Privileged", "PublishAllPorts",
    "ReadonlyRootfs", "SecurityOpt", "UTSMode", "UsernsMode", "ShmSize", "Runtime", "ConsoleSize", "Isolation",
    "CpuShares", "Memory", "NanoCpus", "CgroupParent", "BlkioWeight", "BlkioWeightDevice", "BlkioDeviceReadBps",
    "BlkioDeviceWriteBps", "BlkioDeviceReadIOps", "BlkioDeviceWriteIOps", "CpuPeriod", "CpuQuota",
    "CpuRealtimePeriod", "CpuRealtimeRuntime", "CpusetCpus", "CpusetMems", "Devices", "DeviceCgroupRules",
    "DeviceRequests", "KernelMemory", "KernelMemoryTCP", "MemoryReservation", "MemorySwap", "MemorySwappiness",
    "OomKillDisable", "PidsLimit", "Ulimits", "CpuCount", "CpuPercent", "IOMaximumIOps", "IOMaximumBandwidth",
    "MaskedPaths", "ReadonlyPaths"]
DOCKERD_CONFIG_KEYS = ["Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr",
                       "ExposedPorts", "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd", "Image", "Volumes", "WorkingDir",
                       "Entrypoint", "OnBuild", "Labels"]
COMPOSE_HOST_CONFIG = {"NetworkMode": "cp_back", "VolumesFrom": [], "Binds": ["cp_data:/data:rw"],
                       "PortBindings": {"8081/tcp": [{"HostIp": "", "HostPort": "18081"}]}, "Links": [],
                       "LogConfig": {"Type": "json-file", "Config": {}}, "Runtime": "runpy-oci"}
COMPOSE_CONFIG = {"ExposedPorts": {"8081/tcp": {}}, "Tty": False, "OpenStdin": False, "StdinOnce": False,
                  "AttachStdin": False, "AttachStdout": False, "AttachStderr": False, "Cmd": ["sh"],
                  "Image": "cp-store:1", "Volumes": {"/data": {}}, "NetworkDisabled": False,
                  "Labels": {"com.docker.compose.service": "store"}, "Hostname": "0123456789ab",
                  "Env": ["PATH=/bin"], "Entrypoint": None, "WorkingDir": "", "User": ""}


def test_a_compose_containers_host_config_has_dockerds_fields_and_defaults():
    shown = stored(COMPOSE_HOST_CONFIG)
    assert list(shown) == DOCKERD_HOST_CONFIG_KEYS
    assert {k: v for k, v in shown.items() if k in COMPOSE_HOST_CONFIG} == {**COMPOSE_HOST_CONFIG, "Links": None}
    assert (shown["ShmSize"], shown["IpcMode"], shown["CgroupnsMode"], shown["OomKillDisable"]) == (
        67108864, "private", "host", False)
    assert shown["MaskedPaths"][0] == "/proc/asound" and shown["ReadonlyPaths"][-1] == "/proc/sysrq-trigger"
    assert (shown["RestartPolicy"], shown["ConsoleSize"], shown["Dns"]) == ({"Name": "", "MaximumRetryCount": 0},
                                                                            [0, 0], None)


def test_the_clis_unset_values_show_as_dockerd_shows_them():
    """The CLI sends PidsLimit 0 and MemorySwappiness -1 for unset; a privileged container masks nothing;
    cgroup v2 gives an unprivileged container its own cgroup namespace."""
    shown = stored({"PidsLimit": 0, "MemorySwappiness": -1, "Privileged": True, "Init": False, "Tmpfs": {},
                     "Links": []}, cgroup_version=2)
    assert (shown["PidsLimit"], shown["MemorySwappiness"], shown["MaskedPaths"], shown["Init"]) == (
        None, None, None, False)
    assert "Tmpfs" not in shown and shown["CgroupnsMode"] == "host"
    assert (shown["Links"], shown["MemorySwap"]) == (None, 0)
    assert stored({"PidsLimit": 10}, cgroup_version=2)["CgroupnsMode"] == "private"


def test_a_compose_containers_config_has_dockerds_fields():
    shown = stored_config(COMPOSE_CONFIG, parse_config(COMPOSE_CONFIG), {})
    assert list(shown) == DOCKERD_CONFIG_KEYS
    assert (shown["Domainname"], shown["OnBuild"]) == ("", None)


def test_a_memory_limit_shows_dockerds_swap_limit():
    """dockerd's create sets MemorySwap to twice Memory when only Memory is given (the spec has it so)."""
    assert stored({"Memory": 64 << 20})["MemorySwap"] == 128 << 20
    assert stored({"Memory": 64 << 20, "MemorySwap": -1})["MemorySwap"] == -1


def test_a_container_takes_the_images_ports_labels_stop_signal_and_volumes():
    """dockerd's merge at create: the image's EXPOSE, LABEL, STOPSIGNAL and VOLUME under the request's."""
    image = {"ExposedPorts": {"8080/tcp": {}, "8443/tcp": {}}, "Labels": {"tier": "web", "kept": "image"},
             "StopSignal": "SIGUSR1", "Volumes": {"/data": {}}}
    assert image_metadata({"ExposedPorts": {"9000/tcp": {}}, "Labels": {"kept": "request"}, "Volumes": {"/x": {}}},
                          image) == {
        "ExposedPorts": {"8080/tcp": {}, "8443/tcp": {}, "9000/tcp": {}}, "Labels": {"tier": "web", "kept": "request"},
        "StopSignal": "SIGUSR1", "Volumes": {"/x": {}, "/data": {}}}
    assert image_metadata({"StopSignal": "SIGINT"}, {}) == {"Labels": {}, "StopSignal": "SIGINT", "Volumes": None}
