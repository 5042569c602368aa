"""Linux capabilities: names, and applying the five sets of process.capabilities.

Order matters, as in runc: the bounding set is trimmed while we still hold
CAP_SETPCAP; keep-caps carries the permitted set across the switch to the
container's uid; then effective/permitted/inheritable are set at once and
the ambient set raised."""
from runpy_oci import kernel as k

NAMES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
    "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
    "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)
NUMBERS = {name: i for i, name in enumerate(NAMES)}
KINDS = ("bounding", "effective", "inheritable", "permitted", "ambient")


def last_cap():
    """The highest capability this kernel knows."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return len(NAMES) - 1


def mask(names):
    bits = 0
    for name in names:
        bits |= 1 << NUMBERS[name]
    return bits


class Plan:
    """The capability sets of a process, as bit masks."""

    __slots__ = ("bounding", "effective", "inheritable", "permitted", "ambient")

    def __init__(self, capabilities):
        for kind in KINDS:
            setattr(self, kind, mask(capabilities.get(kind, [])))

    def before_user_switch(self):
        sys = k.get()
        for cap in range(last_cap() + 1):
            if not self.bounding & (1 << cap):
                sys.prctl(k.PR_CAPBSET_DROP, cap)
        sys.prctl(k.PR_SET_KEEPCAPS, 1)

    def after_user_switch(self):
        sys = k.get()
        sys.prctl(k.PR_SET_KEEPCAPS, 0)
        sys.capset(self.effective, self.permitted, self.inheritable)
        sys.prctl(k.PR_CAP_AMBIENT, k.PR_CAP_AMBIENT_CLEAR_ALL)
        # The kernel keeps an ambient capability only while it is both
        # permitted and inheritable (runc's default spec asks for ambient
        # ones it does not make inheritable): raise what it can hold.
        raisable = self.ambient & self.permitted & self.inheritable
        for cap in range(last_cap() + 1):
            if raisable & (1 << cap):
                sys.prctl(k.PR_CAP_AMBIENT, k.PR_CAP_AMBIENT_RAISE, cap)
