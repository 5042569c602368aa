"""A container's Config and HostConfig as ``docker inspect`` shows them on
dockerd: the Go structs marshalled (every field in the struct's order, zero
values filled in, ``omitempty`` fields only when set) with the defaults
dockerd's create writes into them (ShmSize, IpcMode, CgroupnsMode, the
masked and read-only paths, OomKillDisable, MemorySwap twice a Memory
limit; PidsLimit <= 0 and MemorySwappiness -1 as unset; no Links as null).
The record keeps what the client sent (a docker-py or compose client sends
a few fields, the CLI all of them); the defaults shown are the ones the
spec is made with (engine/oci)."""
from engine.oci.request import DEFAULT_SHM_SIZE
from engine.oci.spec import DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS
from engine.services.images import go_config

_OMITTED = object()   # an omitempty field: shown only when set
_HOST_CONFIG_FIELDS = (
    ("Binds", None), ("ContainerIDFile", ""), ("LogConfig", {"Type": "", "Config": None}), ("NetworkMode", ""),
    ("PortBindings", None), ("RestartPolicy", {"Name": "", "MaximumRetryCount": 0}), ("AutoRemove", False),
    ("VolumeDriver", ""), ("VolumesFrom", None), ("CapAdd", None), ("CapDrop", None), ("CgroupnsMode", ""),
    ("Dns", None), ("DnsOptions", None), ("DnsSearch", None), ("ExtraHosts", None), ("GroupAdd", None),
    ("IpcMode", ""), ("Cgroup", ""), ("Links", None), ("OomScoreAdj", 0), ("PidMode", ""), ("Privileged", False),
    ("PublishAllPorts", False), ("ReadonlyRootfs", False), ("SecurityOpt", None), ("StorageOpt", _OMITTED),
    ("Tmpfs", _OMITTED), ("UTSMode", ""), ("UsernsMode", ""), ("ShmSize", 0), ("Sysctls", _OMITTED),
    ("Runtime", _OMITTED), ("ConsoleSize", [0, 0]), ("Isolation", ""),
    # Resources, embedded
    ("CpuShares", 0), ("Memory", 0), ("NanoCpus", 0), ("CgroupParent", ""), ("BlkioWeight", 0),
    ("BlkioWeightDevice", None), ("BlkioDeviceReadBps", None), ("BlkioDeviceWriteBps", None),
    ("BlkioDeviceReadIOps", None), ("BlkioDeviceWriteIOps", None), ("CpuPeriod", 0), ("CpuQuota", 0),
    ("CpuRealtimePeriod", 0), ("CpuRealtimeRuntime", 0), ("CpusetCpus", ""), ("CpusetMems", ""), ("Devices", None),
    ("DeviceCgroupRules", None), ("DeviceRequests", None), ("KernelMemory", 0), ("KernelMemoryTCP", 0),
    ("MemoryReservation", 0), ("MemorySwap", 0), ("MemorySwappiness", None), ("OomKillDisable", None),
    ("PidsLimit", None), ("Ulimits", None), ("CpuCount", 0), ("CpuPercent", 0), ("IOMaximumIOps", 0),
    ("IOMaximumBandwidth", 0),
    ("Mounts", _OMITTED), ("MaskedPaths", None), ("ReadonlyPaths", None), ("Init", _OMITTED),
)


def host_config_shown(host_config: dict, cgroup_version: int) -> dict:
    """The HostConfig in dockerd's shape, with dockerd's create-time defaults."""
    hc = dict(host_config)
    privileged = bool(hc.get("Privileged"))
    hc["ShmSize"] = hc.get("ShmSize") or DEFAULT_SHM_SIZE
    hc["IpcMode"] = hc.get("IpcMode") or "private"
    hc["CgroupnsMode"] = hc.get("CgroupnsMode") or ("private" if cgroup_version == 2 and not privileged else "host")
    hc["OomKillDisable"] = bool(hc.get("OomKillDisable"))
    if (hc.get("Memory") or 0) > 0 and not hc.get("MemorySwap"):
        hc["MemorySwap"] = 2 * hc["Memory"]
    hc["Links"] = hc.get("Links") or None   # inspect lists the legacy links it has, null for none
    if (hc.get("PidsLimit") or 0) <= 0:
        hc["PidsLimit"] = None
    if hc.get("MemorySwappiness") == -1:
        hc["MemorySwappiness"] = None
    if not privileged:
        for key, default in (("MaskedPaths", DEFAULT_MASKED_PATHS), ("ReadonlyPaths", DEFAULT_READONLY_PATHS)):
            if hc.get(key) is None:
                hc[key] = list(default)
    shown = {}
    for key, zero in _HOST_CONFIG_FIELDS:
        if zero is _OMITTED:
            if hc.get(key) not in (None, "", {}, []):
                shown[key] = hc[key]
        else:
            shown[key] = hc[key] if hc.get(key) is not None else zero
    return shown


def config_shown(config: dict) -> dict:
    """The Config in dockerd's shape (container.Config, as an image's)."""
    return go_config(config)
