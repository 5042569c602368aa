"""Inspect's Config and HostConfig in dockerd 20.10's shape whatever the
client sent: docker-py and compose send a few HostConfig fields, and dockerd
shows every field of its structs with its create-time defaults (the keys
below are dockerd's answer for a compose container)."""
from engine.services.config_merge import image_metadata
from engine.services.inspect_shape import config_shown, host_config_shown

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
    shown = host_config_shown(COMPOSE_HOST_CONFIG, cgroup_version=1)
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
    shown = host_config_shown({"PidsLimit": 0, "MemorySwappiness": -1, "Privileged": True, "Init": False,
                               "Tmpfs": {}, "Links": []}, cgroup_version=2)
    assert (shown["PidsLimit"], shown["MemorySwappiness"], shown["MaskedPaths"], shown["Init"]) == (
        None, None, None, False)
    assert "Tmpfs" not in shown and shown["CgroupnsMode"] == "host"
    assert (shown["Links"], shown["MemorySwap"]) == (None, 0)
    assert host_config_shown({"PidsLimit": 10}, cgroup_version=2)["CgroupnsMode"] == "private"


def test_a_compose_containers_config_has_dockerds_fields():
    shown = config_shown(COMPOSE_CONFIG)
    assert list(shown) == DOCKERD_CONFIG_KEYS
    assert (shown["Domainname"], shown["OnBuild"]) == ("", None)


def test_a_memory_limit_shows_dockerds_swap_limit():
    """dockerd's create sets MemorySwap to twice Memory when only Memory is given (the spec has it so)."""
    assert host_config_shown({"Memory": 64 << 20}, cgroup_version=1)["MemorySwap"] == 128 << 20
    assert host_config_shown({"Memory": 64 << 20, "MemorySwap": -1}, cgroup_version=1)["MemorySwap"] == -1


def test_a_container_takes_the_images_ports_labels_stop_signal_and_volumes():
    """dockerd's merge at create: the image's EXPOSE, LABEL, STOPSIGNAL and VOLUME under the request's."""
    image = {"ExposedPorts": {"8080/tcp": {}, "8443/tcp": {}}, "Labels": {"tier": "web", "kept": "image"},
             "StopSignal": "SIGUSR1", "Volumes": {"/data": {}}}
    assert image_metadata({"ExposedPorts": {"9000/tcp": {}}, "Labels": {"kept": "request"}, "Volumes": {"/x": {}}},
                          image) == {
        "ExposedPorts": {"8080/tcp": {}, "8443/tcp": {}, "9000/tcp": {}}, "Labels": {"tier": "web", "kept": "request"},
        "StopSignal": "SIGUSR1", "Volumes": {"/x": {}, "/data": {}}}
    assert image_metadata({"StopSignal": "SIGINT"}, {}) == {"Labels": {}, "StopSignal": "SIGINT", "Volumes": None}
