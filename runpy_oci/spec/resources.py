"""``linux.resources`` as typed objects, every value checked against its JSON
path before any cgroup is touched. Each object keeps its ``path`` so that the
cgroup layer can name the field when the host refuses a value.

``update -r`` reads the same objects from a bare LinuxResources document
(path prefix ""), which is why the prefix is a parameter.
"""
from runpy_oci.errors import ConfigError
from runpy_oci.spec.fields import Fields, join

INT64_MAX = (1 << 63) - 1
DEVICE_RULE_TYPES = ("a", "c", "b")
DEVICE_ACCESS = "rwm"
PAGE_SIZE_UNITS = ("KB", "MB", "GB", "TB", "PB")


def _int64(f, key, minimum=-(1 << 63)):
    return f.int(key, minimum=minimum, maximum=INT64_MAX)


def _uint64(f, key):
    return f.int(key, minimum=0, maximum=(1 << 64) - 1)


def _limit(f, key):
    """A byte/count limit: -1 means unlimited, anything else is >= 0."""
    return f.int(key, minimum=-1, maximum=INT64_MAX)


def check_cpu_list(where, text):
    """cpuset list syntax as the kernel takes it: "0-3,5,7-8"."""
    for part in text.split(","):
        lo, dash, hi = part.partition("-")
        if not lo.isdigit() or (dash and (not hi.isdigit() or int(hi) < int(lo))):
            raise ConfigError(f"{where}: invalid cpu/memory-node list {text!r}")


class Memory:
    __slots__ = ("path", "limit", "reservation", "swap", "kernel", "kernel_tcp", "swappiness",
                 "disable_oom_killer", "use_hierarchy")

    def __init__(self, f):
        self.path = f.path
        self.limit = _limit(f, "limit")
        self.reservation = _limit(f, "reservation")
        self.swap = _limit(f, "swap")
        self.kernel = _limit(f, "kernel")
        self.kernel_tcp = _limit(f, "kernelTCP")
        self.swappiness = f.int("swappiness", minimum=0, maximum=100)
        self.disable_oom_killer = f.bool("disableOOMKiller")
        self.use_hierarchy = f.bool("useHierarchy")
        if self.limit is not None and self.swap is not None and 0 < self.swap < self.limit:
            raise ConfigError(f"{f.where('swap')}: memory+swap limit {self.swap} is below the memory limit {self.limit}")


class Cpu:
    __slots__ = ("path", "shares", "quota", "burst", "period", "realtime_runtime", "realtime_period",
                 "cpus", "mems", "idle")

    def __init__(self, f):
        self.path = f.path
        # 0 is runc's "not set": dockerd writes shares always, 0 without --cpu-shares
        self.shares = f.int("shares", minimum=2, maximum=262144) if f.int("shares") != 0 else None
        self.quota = _int64(f, "quota", minimum=-1)
        self.burst = _uint64(f, "burst")
        self.period = f.int("period", minimum=1000, maximum=1000000)
        self.realtime_runtime = _int64(f, "realtimeRuntime", minimum=-1)
        self.realtime_period = _uint64(f, "realtimePeriod")
        self.cpus = f.str("cpus") or None
        self.mems = f.str("mems") or None
        self.idle = f.int("idle", minimum=0, maximum=1)
        for key, value in (("cpus", self.cpus), ("mems", self.mems)):
            if value is not None:
                check_cpu_list(f.where(key), value)


class Pids:
    __slots__ = ("path", "limit")

    def __init__(self, f):
        self.path = f.path
        # runc: zero or below means "no limit".
        self.limit = _int64(f, "limit")


class BlockDevice:
    """A weight or throttle entry: which device, and its value."""

    __slots__ = ("path", "major", "minor", "weight", "leaf_weight", "rate")

    def __init__(self, f, throttle):
        self.path = f.path
        self.major = f.int("major", required=True, minimum=0)
        self.minor = f.int("minor", required=True, minimum=0)
        if throttle:
            self.rate = _uint64(f, "rate") or 0
            self.weight = self.leaf_weight = None
        else:
            self.rate = None
            self.weight = f.int("weight", minimum=10, maximum=1000)
            self.leaf_weight = f.int("leafWeight", minimum=10, maximum=1000)


THROTTLES = (
    # spec key, v1 file, v2 io.max key
    ("throttleReadBpsDevice", "blkio.throttle.read_bps_device", "rbps"),
    ("throttleWriteBpsDevice", "blkio.throttle.write_bps_device", "wbps"),
    ("throttleReadIOPSDevice", "blkio.throttle.read_iops_device", "riops"),
    ("throttleWriteIOPSDevice", "blkio.throttle.write_iops_device", "wiops"),
)


class BlockIO:
    __slots__ = ("path", "weight", "leaf_weight", "weight_device", "throttles")

    def __init__(self, f):
        self.path = f.path
        # 0 is runc's "not set": dockerd writes the weight always, 0 without --blkio-weight
        self.weight = f.int("weight", minimum=10, maximum=1000) if f.int("weight") != 0 else None
        self.leaf_weight = f.int("leafWeight", minimum=10, maximum=1000)
        self.weight_device = [BlockDevice(d, False) for d in f.obj_list("weightDevice")]
        # spec key -> entries, only for the keys given
        self.throttles = {key: [BlockDevice(d, True) for d in f.obj_list(key)]
                          for key, _, _ in THROTTLES if f.has(key)}


class HugepageLimit:
    __slots__ = ("path", "page_size", "limit")

    def __init__(self, f):
        self.path = f.path
        self.page_size = f.str("pageSize", required=True)
        digits = self.page_size[:-2]
        if not digits.isdigit() or self.page_size[-2:] not in PAGE_SIZE_UNITS:
            raise ConfigError(f"{f.where('pageSize')}: expected a size like \"2MB\", got {self.page_size!r}")
        self.limit = f.int("limit", required=True, minimum=0, maximum=(1 << 64) - 1)


class DeviceRule:
    __slots__ = ("path", "allow", "type", "major", "minor", "access")

    def __init__(self, f):
        self.path = f.path
        if not f.has("allow"):
            raise ConfigError(f"{f.where('allow')}: required field is missing")
        self.allow = f.bool("allow")
        self.type = f.str("type", default="a")
        if self.type not in DEVICE_RULE_TYPES:
            raise ConfigError(f"{f.where('type')}: unknown device type {self.type!r} (one of a, c, b)")
        # -1 or absent: any number
        self.major = f.int("major", minimum=-1)
        self.minor = f.int("minor", minimum=-1)
        self.access = f.str("access", default=DEVICE_ACCESS)
        if not self.access or any(c not in DEVICE_ACCESS for c in self.access):
            raise ConfigError(f"{f.where('access')}: expected letters of \"rwm\", got {self.access!r}")

    def v1_line(self):
        """The rule as devices.allow/devices.deny take it: "c 1:3 rwm"."""
        if self.type == "a":
            return "a"
        major = "*" if self.major in (None, -1) else self.major
        minor = "*" if self.minor in (None, -1) else self.minor
        return f"{self.type} {major}:{minor} {self.access}"


class Network:
    __slots__ = ("path", "class_id", "priorities")

    def __init__(self, f):
        self.path = f.path
        self.class_id = f.uint32("classID")
        self.priorities = []
        for p in f.obj_list("priorities"):
            self.priorities.append((p.str("name", required=True), p.uint32("priority", required=True)))


class Rdma:
    __slots__ = ("path", "limits")

    def __init__(self, f):
        self.path = f.path
        self.limits = {}
        for device in f.data:
            d = f.obj(device)
            self.limits[device] = (d.uint32("hcaHandles"), d.uint32("hcaObjects"))


def _unified(f):
    """``unified``: cgroup v2 file name -> value; names must stay in the cgroup dir."""
    files = f.str_map("unified")
    for name in files:
        ctrl, dot, rest = name.partition(".")
        if "/" in name or not ctrl or not dot or not rest:
            raise ConfigError(f"{join(f.where('unified'), name)}: not a cgroup file name (\"<controller>.<file>\")")
    return files


class Resources:
    """Every part is None (or empty) when the config does not ask for it."""

    __slots__ = ("path", "memory", "cpu", "pids", "block_io", "hugepage_limits", "devices",
                 "network", "rdma", "unified")

    def __init__(self, f):
        self.path = f.path
        self.memory = _part(f, "memory", Memory)
        self.cpu = _part(f, "cpu", Cpu)
        self.pids = _part(f, "pids", Pids)
        self.block_io = _part(f, "blockIO", BlockIO)
        self.hugepage_limits = [HugepageLimit(h) for h in f.obj_list("hugepageLimits")]
        self.devices = [DeviceRule(d) for d in f.obj_list("devices")]
        self.network = _part(f, "network", Network)
        self.rdma = _part(f, "rdma", Rdma)
        self.unified = _unified(f)

    @classmethod
    def empty(cls, path="linux.resources"):
        return cls(Fields({}, path))


def _part(f, key, kind):
    sub = f.obj(key)
    return None if sub is None else kind(sub)
