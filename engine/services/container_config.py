"""The Config and HostConfig a container's record keeps, as dockerd stores
them at create: Go's container.Config and container.HostConfig marshalled
(every field, zero values where the request had none, `omitempty` ones only
when set), the image's Labels, ExposedPorts, Volumes and StopSignal merged in
(daemon/commit.go's merge, config_merge.py) and adaptContainerSettings' defaults applied. A
client sending only what it sets (docker-py, testcontainers) then reads the
same inspect as one sending everything (the CLI), and the image's STOPSIGNAL
and EXPOSE (for -P) act as with dockerd."""
from engine.oci import ContainerConfig, HostConfig, spec
from engine.services.config_merge import image_metadata
from engine.services.health import merged_healthcheck
from engine.services.images import go_config

_RESTART_ZERO = {"Name": "", "MaximumRetryCount": 0}
# container.HostConfig's fields in Go's order with their zero values; the
# `omitempty` ones (StorageOpt, Tmpfs, Sysctls, Runtime, Mounts, Init) apart
_HOST_CONFIG_ZERO = {
    "Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": "", "Config": None}, "NetworkMode": "",
    "PortBindings": None, "RestartPolicy": _RESTART_ZERO, "AutoRemove": False, "VolumeDriver": "",
    "VolumesFrom": None, "CapAdd": None, "CapDrop": None, "CgroupnsMode": "", "Dns": None, "DnsOptions": None,
    "DnsSearch": None, "ExtraHosts": None, "GroupAdd": None, "IpcMode": "", "Cgroup": "", "Links": None,
    "OomScoreAdj": 0, "PidMode": "", "Privileged": False, "PublishAllPorts": False, "ReadonlyRootfs": False,
    "SecurityOpt": None, "StorageOpt": None, "Tmpfs": None, "UTSMode": "", "UsernsMode": "", "ShmSize": 0,
    "Sysctls": None, "Runtime": "", "ConsoleSize": [0, 0], "Isolation": "",
    # Resources
    "CpuShares": 0, "Memory": 0, "NanoCpus": 0, "CgroupParent": "", "BlkioWeight": 0, "BlkioWeightDevice": None,
    "BlkioDeviceReadBps": None, "BlkioDeviceWriteBps": None, "BlkioDeviceReadIOps": None,
    "BlkioDeviceWriteIOps": None, "CpuPeriod": 0, "CpuQuota": 0, "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0,
    "CpusetCpus": "", "CpusetMems": "", "Devices": None, "DeviceCgroupRules": None, "DeviceRequests": None,
    "KernelMemory": 0, "KernelMemoryTCP": 0, "MemoryReservation": 0, "MemorySwap": 0, "MemorySwappiness": None,
    "OomKillDisable": None, "PidsLimit": None, "Ulimits": None, "CpuCount": 0, "CpuPercent": 0,
    "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
    "Mounts": None, "MaskedPaths": None, "ReadonlyPaths": None, "Init": None,
}
_HOST_CONFIG_OMITEMPTY = frozenset(("StorageOpt", "Tmpfs", "Sysctls", "Runtime", "Mounts", "Init"))


def stored_config(config: dict, parsed: ContainerConfig, image_config: dict) -> dict:
    """The request's Config with what runs (``parsed``, the image's config
    merged in: Hostname, Env, Cmd, Entrypoint, WorkingDir, User), its
    Healthcheck, and the image's Labels, ExposedPorts, Volumes and StopSignal
    merged as dockerd merges them (the request's win), marshalled as Go's."""
    image_config = image_config or {}
    merged = {**config, "Hostname": parsed.hostname, "Env": list(parsed.env), "Cmd": list(parsed.cmd or ()) or None,
              "Entrypoint": list(parsed.entrypoint) if parsed.entrypoint else None,
              "WorkingDir": parsed.working_dir, "User": parsed.user,
              **merged_healthcheck(config.get("Healthcheck"), image_config.get("Healthcheck"))}
    merged.update(image_metadata(config, image_config))
    return go_config(merged)


def stored_host_config(host_config: dict, parsed: HostConfig, host) -> dict:
    """The request's HostConfig with every field and dockerd's create-time
    defaults: MemorySwap twice a Memory without one, ShmSize, IpcMode and
    CgroupnsMode as the container gets them, OomKillDisable false, a
    PidsLimit <= 0 and a MemorySwappiness of -1 as unset (null), no Links as null,
    "label=disable" for a privileged or host-IPC/PID one (as
    generateSecurityOpt), the default masked and read-only paths unless
    privileged."""
    shown = {key: host_config.get(key, zero) for key, zero in _HOST_CONFIG_ZERO.items()
             if key not in _HOST_CONFIG_OMITEMPTY or host_config.get(key)
             or (key == "Init" and host_config.get(key) is not None)}  # a *bool: false is shown
    shown["Links"] = shown["Links"] or None  # dockerd lists its link graph's, null when none
    shown["RestartPolicy"] = {**_RESTART_ZERO, **(shown["RestartPolicy"] or {})}
    shown["ConsoleSize"] = shown["ConsoleSize"] or [0, 0]
    shown["NetworkMode"] = shown["NetworkMode"] or "default"
    if shown["Memory"] and not shown["MemorySwap"]:
        shown["MemorySwap"] = 2 * shown["Memory"]
    shown.update(ShmSize=parsed.shm_size, IpcMode=parsed.ipc_mode, CgroupnsMode=spec.cgroupns_mode(parsed, host))
    if shown["OomKillDisable"] is None:
        shown["OomKillDisable"] = False
    if (shown["PidsLimit"] or 0) <= 0:   # unlimited, as dockerd stores it
        shown["PidsLimit"] = None
    if shown["MemorySwappiness"] == -1:  # the CLI's "not set"
        shown["MemorySwappiness"] = None
    security_opt = shown["SecurityOpt"] or []
    if (parsed.privileged or parsed.ipc_mode == "host" or parsed.pid_mode == "host") \
            and not any(opt.partition("=")[0].partition(":")[0] == "label" for opt in security_opt):
        shown["SecurityOpt"] = [*security_opt, "label=disable"]
    if not parsed.privileged:
        for key, default in (("MaskedPaths", spec.DEFAULT_MASKED_PATHS),
                             ("ReadonlyPaths", spec.DEFAULT_READONLY_PATHS)):
            if shown[key] is None:
                shown[key] = list(default)
    return shown
