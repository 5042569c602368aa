"""The create request's Config and HostConfig, parsed into typed objects
before anything is made: a wrong type or value is a 400 naming the field,
in dockerd's words where it has them (`json: cannot unmarshal string into Go
struct field HostConfig.Memory of type int64`, `Minimum memory limit allowed
is 6MB`, `invalid volume specification: '...'`).

Only fields that shape the container's process and spec are read here;
dockerd's create-time defaults (MemorySwap = 2 x Memory, ShmSize 64 MiB,
IpcMode private) are applied so the objects say what will run.
"""
import json
import re
from dataclasses import dataclass, field

from engine.errors import InvalidParameter
from engine.oci import mounts as mnt
from engine.oci import security
from engine.oci.security import SecurityOptions

DEFAULT_SHM_SIZE = 64 << 20
MIN_MEMORY = 6 << 20
ULIMIT_NAMES = ("core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc",
                "rss", "rtprio", "rttime", "sigpending", "stack")
_UINT64 = (1 << 64) - 1
_JSON_KIND = {str: "string", bool: "bool", int: "number", float: "number", list: "array", dict: "object"}
_INT_RANGES = {"int64": (-(1 << 63), (1 << 63) - 1), "int": (-(1 << 63), (1 << 63) - 1), "uint16": (0, 65535)}
_CPUSET = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")


class JsonFields:
    """A JSON object of the request read as Go's encoding/json would fill
    its struct: null or absent is the zero value, a wrong type is an error."""

    def __init__(self, data, struct):
        if data is None:
            data = {}
        if not isinstance(data, dict):
            kind = _JSON_KIND.get(type(data), "value")
            raise InvalidParameter(f"json: cannot unmarshal {kind} into Go value of type {struct}")
        self.data, self.struct = data, struct

    @staticmethod
    def _type_error(struct, key, value, go_type):
        kind = _JSON_KIND.get(type(value), "value")
        if isinstance(value, float):
            kind = f"number {value:g}"
        return InvalidParameter(f"json: cannot unmarshal {kind} into Go struct field {struct}.{key} of type {go_type}")

    def _get(self, key, types, go_type):
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise self._type_error(self.struct, key, value, go_type)
        return value

    def str(self, key):
        return self._get(key, (str,), "string") or ""

    def bool(self, key):
        return self._get(key, (bool,), "bool") or False

    def opt_bool(self, key):
        return self._get(key, (bool,), "bool")

    def opt_int(self, key, go_type="int64"):
        value = self._get(key, (int,), go_type)
        low, high = _INT_RANGES[go_type]
        if value is not None and not low <= value <= high:
            raise InvalidParameter(f"json: cannot unmarshal number {value} into Go struct field "
                                   f"{self.struct}.{key} of type {go_type}")
        return value

    def int(self, key, go_type="int64"):
        return self.opt_int(key, go_type) or 0

    def strings(self, key):
        """An array of strings, or None when absent."""
        value = self._get(key, (list,), "[]string")
        if value is not None:
            for item in value:
                if not isinstance(item, str):
                    raise self._type_error(self.struct, key, item, "string")
            return tuple(value)
        return None

    def strslice(self, key):
        """Docker's StrSlice: a string or an array of strings (None when absent)."""
        value = self.data.get(key)
        return (value,) if isinstance(value, str) else self.strings(key)

    def str_map(self, key):
        value = self._get(key, (dict,), "map[string]string") or {}
        for item in value.values():
            if not isinstance(item, str):
                raise self._type_error(self.struct, key, item, "string")
        return dict(value)

    def obj(self, key):
        """A nested object as JsonFields, or None when absent."""
        value = self.data.get(key)
        return None if value is None else JsonFields(value, f"{self.struct}.{key}")

    def objects(self, key, go_type):
        return [JsonFields(item, f"{self.struct}.{key}") for item in self._get(key, (list,), go_type) or ()]


@dataclass(frozen=True)
class ContainerConfig:
    """Config: what runs. Cmd/Entrypoint are None when not given ([] is given)."""
    hostname: str = ""
    domainname: str = ""
    user: str = ""
    env: tuple[str, ...] = ()
    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    working_dir: str = ""
    tty: bool = False
    network_disabled: bool = False


@dataclass(frozen=True)
class Ulimit:
    name: str
    soft: int
    hard: int


@dataclass(frozen=True)
class DeviceMapping:
    path_on_host: str
    path_in_container: str
    permissions: str = "rwm"


@dataclass(frozen=True)
class Resources:
    memory: int = 0
    memory_swap: int = 0
    memory_reservation: int = 0
    memory_swappiness: int | None = None
    oom_kill_disable: bool = False
    nano_cpus: int = 0
    cpu_shares: int = 0
    cpu_quota: int = 0
    cpu_period: int = 0
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    pids_limit: int | None = None
    blkio_weight: int = 0


@dataclass(frozen=True)
class HostConfig:
    mounts: tuple[mnt.MountPoint, ...] = ()  # Binds, Mounts, Tmpfs in that order
    readonly_rootfs: bool = False
    privileged: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    security: SecurityOptions = field(default_factory=SecurityOptions)
    devices: tuple[DeviceMapping, ...] = ()
    device_cgroup_rules: tuple[str, ...] = ()
    ulimits: tuple[Ulimit, ...] = ()
    resources: Resources = field(default_factory=Resources)
    sysctls: dict = field(default_factory=dict)
    shm_size: int = DEFAULT_SHM_SIZE
    group_add: tuple[str, ...] = ()
    pid_mode: str = ""
    ipc_mode: str = "private"
    uts_mode: str = ""
    network_mode: str = "default"
    cgroupns_mode: str = ""
    cgroup_parent: str = ""
    init: bool = False
    oom_score_adj: int = 0
    masked_paths: tuple[str, ...] | None = None
    readonly_paths: tuple[str, ...] | None = None


def _read_config(data, struct) -> ContainerConfig:
    f = JsonFields(data, struct)
    return ContainerConfig(f.str("Hostname"), f.str("Domainname"), f.str("User"), f.strings("Env") or (),
                           f.strslice("Cmd"), f.strslice("Entrypoint"), f.str("WorkingDir"), f.bool("Tty"),
                           f.bool("NetworkDisabled"))


def parse_config(data) -> ContainerConfig:
    """The request's Config, checked as dockerd checks it before the image's
    config is merged in (the image's own values are not checked)."""
    config = _read_config(data, "Config")
    for entry in config.env:
        if entry.split("=", 1)[0] == "":
            raise InvalidParameter(f"invalid environment variable: {entry}")
    if config.working_dir and not config.working_dir.startswith("/"):
        raise InvalidParameter(f"the working directory '{config.working_dir}' is invalid, "
                               "it needs to be an absolute path")
    return config


def merge_image_config(config: ContainerConfig, image: dict | None) -> ContainerConfig:
    """The image's config fills what the request left out, as dockerd's
    create does: User, WorkingDir, Env keys not set, Cmd and Entrypoint."""
    image = _read_config(image, "Image.Config")
    env = list(config.env)
    keys = {e.split("=", 1)[0] for e in env}
    env += [e for e in image.env if e.split("=", 1)[0] not in keys] if env else image.env
    cmd, entrypoint = config.cmd, config.entrypoint
    if not entrypoint:
        if not cmd:
            cmd = image.cmd
        if entrypoint is None:
            entrypoint = image.entrypoint
    return ContainerConfig(config.hostname, config.domainname, config.user or image.user, tuple(env), cmd,
                           entrypoint, config.working_dir or image.working_dir, config.tty, config.network_disabled)


def _ulimits(f):
    ulimits = []
    for item in f.objects("Ulimits", "[]*units.Ulimit"):
        name, soft, hard = item.str("Name"), item.int("Soft"), item.int("Hard")
        if name not in ULIMIT_NAMES:
            raise InvalidParameter(f"invalid ulimit type: {name}")
        if soft & _UINT64 > hard & _UINT64:
            raise InvalidParameter(f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")
        ulimits.append(Ulimit(name, soft, hard))
    return tuple(ulimits)


def _devices(f):
    devices = []
    for item in f.objects("Devices", "[]container.DeviceMapping"):
        on_host = item.str("PathOnHost")
        in_container = item.str("PathInContainer") or on_host
        permissions = item.str("CgroupPermissions") or "rwm"
        if not on_host:
            raise InvalidParameter("invalid device specification: PathOnHost must not be empty")
        if not permissions or any(c not in "rwm" for c in permissions):
            raise InvalidParameter(f"invalid device mode: {permissions}")
        for path in (on_host, in_container):
            if not path.startswith("/"):
                raise InvalidParameter(f"bad format for path: {path}")
        devices.append(DeviceMapping(on_host, in_container, permissions))
    rules = f.strings("DeviceCgroupRules") or ()
    for rule in rules:
        if not re.match(r"^[acb] ([0-9]+|\*):([0-9]+|\*) [rwm]{1,3}$", rule):
            raise InvalidParameter(f"invalid device cgroup rule format: '{rule}'")
    return tuple(devices), rules


def _resources(f) -> Resources:
    memory, swap, reservation = f.int("Memory"), f.int("MemorySwap"), f.int("MemoryReservation")
    if 0 < memory < MIN_MEMORY:
        raise InvalidParameter("Minimum memory limit allowed is 6MB")
    if memory > 0 and swap > 0 and swap < memory:
        raise InvalidParameter("Minimum memoryswap limit should be larger than memory limit, see usage")
    if memory == 0 and swap > 0:
        raise InvalidParameter("You should always set the Memory limit when using Memoryswap limit, see usage")
    swappiness = f.opt_int("MemorySwappiness")
    if swappiness is not None and swappiness != -1 and not 0 <= swappiness <= 100:
        raise InvalidParameter(f"Invalid value: {swappiness}, valid memory swappiness range is 0-100")
    if 0 < reservation < MIN_MEMORY:
        raise InvalidParameter("Minimum memory reservation allowed is 6MB")
    if memory > 0 and reservation > 0 and memory < reservation:
        raise InvalidParameter("Minimum memory limit can not be less than memory reservation limit, see usage")
    nano, period, quota, shares = f.int("NanoCpus"), f.int("CpuPeriod"), f.int("CpuQuota"), f.int("CpuShares")
    if nano > 0 and period > 0:
        raise InvalidParameter("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if nano > 0 and quota > 0:
        raise InvalidParameter("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    if nano < 0:
        raise InvalidParameter("Range of CPUs is from 0.01 to the number of CPUs available")
    if period != 0 and not 1000 <= period <= 1000000:
        raise InvalidParameter("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
    if 0 < quota < 1000:
        raise InvalidParameter("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    if shares < 0:
        raise InvalidParameter("shares: invalid argument")
    cpus, mems = f.str("CpusetCpus"), f.str("CpusetMems")
    for value, what in ((cpus, "cpus"), (mems, "mems")):
        if value and not _CPUSET.match(value):
            raise InvalidParameter(f"Invalid value {value} for cpuset {what}: invalid format: {value}")
    weight = f.int("BlkioWeight", "uint16")
    if weight and not 10 <= weight <= 1000:
        raise InvalidParameter("Range of blkio weight is from 10 to 1000")
    pids = f.opt_int("PidsLimit")
    return Resources(memory, swap if swap or memory <= 0 else 2 * memory, reservation,
                     None if swappiness == -1 else swappiness, bool(f.opt_bool("OomKillDisable")), nano, shares,
                     quota, period, cpus, mems, pids if pids and pids > 0 else None, weight)


def _namespace_mode(value, what, allowed):
    if value.startswith("container:"):
        if not value[len("container:"):]:
            raise InvalidParameter(f"Invalid {what} mode: {value}")
    elif allowed is not None and value not in allowed:
        raise InvalidParameter(f"Invalid {what} mode: {value}")
    return value


def _mount_fields(item):
    """One Mounts entry, type-checked into the plain values mounts.parse_mount reads."""
    bind, tmpfs = item.obj("BindOptions"), item.obj("TmpfsOptions")
    return {"Type": item.str("Type"), "Source": item.str("Source"), "Target": item.str("Target"),
            "ReadOnly": item.bool("ReadOnly"), "VolumeOptions": item.data.get("VolumeOptions"),
            "BindOptions": bind and {"Propagation": bind.str("Propagation"), "NonRecursive": bind.bool("NonRecursive")},
            "TmpfsOptions": tmpfs and {"SizeBytes": tmpfs.int("SizeBytes"), "Mode": tmpfs.int("Mode", "int")}}


def _user_mounts(f):
    user_mounts = [mnt.parse_bind(b) for b in f.strings("Binds") or ()]
    user_mounts += [mnt.parse_mount(_mount_fields(item)) for item in f.objects("Mounts", "[]mount.Mount")]
    mnt.check_duplicates(user_mounts)
    return user_mounts + mnt.parse_tmpfs(f.str_map("Tmpfs"), lenient=True)


def parse_host_config(data) -> HostConfig:
    f = JsonFields(data, "HostConfig")
    devices, rules = _devices(f)
    shm_size = f.int("ShmSize")
    if shm_size < 0:
        raise InvalidParameter("SHM size can not be less than 0")
    oom_score_adj = f.int("OomScoreAdj", "int")
    if not -1000 <= oom_score_adj <= 1000:
        raise InvalidParameter(f"Invalid value {oom_score_adj}, range for oom score adj is [-1000, 1000]")
    cgroupns = f.str("CgroupnsMode")
    if cgroupns not in ("", "host", "private"):
        raise InvalidParameter(f"invalid cgroup namespace mode: {cgroupns}")
    masked, readonly = f.strings("MaskedPaths"), f.strings("ReadonlyPaths")
    host_config = HostConfig(
        mounts=tuple(_user_mounts(f)),
        readonly_rootfs=f.bool("ReadonlyRootfs"),
        privileged=f.bool("Privileged"),
        cap_add=security.normalize_capabilities(f.strings("CapAdd") or (), "CapAdd"),
        cap_drop=security.normalize_capabilities(f.strings("CapDrop") or (), "CapDrop"),
        security=security.parse_security_opt(f.strings("SecurityOpt") or ()),
        devices=devices,
        device_cgroup_rules=rules,
        ulimits=_ulimits(f),
        resources=_resources(f),
        sysctls=f.str_map("Sysctls"),
        shm_size=shm_size or DEFAULT_SHM_SIZE,
        group_add=f.strings("GroupAdd") or (),
        pid_mode=_namespace_mode(f.str("PidMode"), "PID", None),
        ipc_mode=_namespace_mode(f.str("IpcMode") or "private", "IPC", ("private", "shareable", "host", "none")),
        uts_mode=_namespace_mode(f.str("UTSMode"), "UTS", None),
        network_mode=f.str("NetworkMode") or "default",
        cgroupns_mode=cgroupns,
        cgroup_parent=f.str("CgroupParent"),
        init=bool(f.opt_bool("Init")),
        oom_score_adj=oom_score_adj,
        masked_paths=masked,
        readonly_paths=readonly,
    )
    check_sysctls(host_config)
    return host_config


_IPC_SYSCTLS = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
                "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced")


def check_sysctls(hc: HostConfig):
    """runc's rule, checked at create: only sysctls of a namespace the
    container has of its own (the runtime would refuse the rest at start)."""
    for name in hc.sysctls:
        quoted = json.dumps(name)
        if name in _IPC_SYSCTLS or name.startswith("fs.mqueue."):
            if hc.ipc_mode == "host":
                raise InvalidParameter(f"sysctl {quoted} is not allowed in the hosts ipc namespace")
        elif name.startswith("net."):
            if hc.network_mode == "host":
                raise InvalidParameter(f"sysctl {quoted} not allowed in host network namespace")
        elif name == "kernel.domainname" and hc.uts_mode != "host":
            pass
        elif name == "kernel.hostname" and hc.uts_mode != "host":
            raise InvalidParameter(f'sysctl {quoted} is not allowed as it conflicts with the OCI "hostname" field')
        else:
            raise InvalidParameter(f"sysctl {quoted} is not in a separate kernel namespace")


def _cpu_set(text):
    cpus = set()
    for part in text.split(","):
        low, _, high = part.partition("-")
        cpus.update(range(int(low), int(high or low) + 1))
    return cpus


def check_against_host(hc: HostConfig, host):
    """What dockerd checks against the machine at create: CPUs and cpuset
    available, Mounts' bind sources present."""
    nano = hc.resources.nano_cpus
    if nano > 0 and not 10_000_000 <= nano <= host.ncpu * 1_000_000_000:
        raise InvalidParameter(f"Range of CPUs is from 0.01 to {host.ncpu}.00, as there are only "
                               f"{host.ncpu} CPUs available")
    cpus = hc.resources.cpuset_cpus
    if cpus and not _cpu_set(cpus) <= _cpu_set(host.online_cpus):
        raise InvalidParameter(f"Requested CPUs are not available - requested {cpus}, available: {host.online_cpus}")
    for m in hc.mounts:
        if m.source_must_exist and not host.exists(m.source):
            raise InvalidParameter(f'invalid mount config for type "bind": bind source path does not exist: {m.source}')
