"""``linux.seccomp`` as typed objects. The name tables here are what
validation accepts, what ``runpy_oci.seccomp`` maps onto libseccomp and what
``features`` reports."""
from runpy_oci.errors import ConfigError

# SCMP_ACT_NOTIFY hands the syscall to a seccomp agent listening on listenerPath.
ACTIONS = ("SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
           "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY")
NOTIFY = "SCMP_ACT_NOTIFY"
OPERATORS = ("SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
             "SCMP_CMP_MASKED_EQ")
ARCHES = ("SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
          "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL",
          "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64",
          "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_RISCV64")
FLAGS = ("SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW")


def _action(f, key, required):
    action = f.str(key, required=required)
    if action is not None and action not in ACTIONS:
        raise ConfigError(f"{f.where(key)}: unknown or unsupported seccomp action {action!r}")
    return action


class Arg:
    __slots__ = ("index", "value", "value_two", "op")

    def __init__(self, f):
        self.index = f.int("index", required=True, minimum=0, maximum=5)
        self.value = f.int("value", required=True, minimum=0, maximum=(1 << 64) - 1)
        self.value_two = f.int("valueTwo", default=0, minimum=0, maximum=(1 << 64) - 1)
        self.op = f.str("op", required=True)
        if self.op not in OPERATORS:
            raise ConfigError(f"{f.where('op')}: unknown seccomp operator {self.op!r}")


class Rule:
    __slots__ = ("path", "names", "action", "errno_ret", "args")

    def __init__(self, f):
        self.path = f.path
        self.names = f.str_list("names", required=True)
        if not self.names:
            raise ConfigError(f"{f.where('names')}: must name at least one syscall")
        self.action = _action(f, "action", True)
        self.errno_ret = f.uint32("errnoRet")
        self.args = [Arg(a) for a in f.obj_list("args")]


class Seccomp:
    __slots__ = ("path", "default_action", "default_errno_ret", "architectures", "flags", "syscalls",
                 "listener_path", "listener_metadata")

    def __init__(self, f):
        self.path = f.path
        self.default_action = _action(f, "defaultAction", True)
        if self.default_action == NOTIFY:
            raise ConfigError(f"{f.where('defaultAction')}: SCMP_ACT_NOTIFY cannot be the default action")
        self.default_errno_ret = f.uint32("defaultErrnoRet")
        self.architectures = f.str_list("architectures")
        for i, arch in enumerate(self.architectures):
            if arch not in ARCHES:
                raise ConfigError(f"{f.where('architectures')}[{i}]: unknown architecture {arch!r}")
        self.flags = f.str_list("flags")
        for i, flag in enumerate(self.flags):
            if flag not in FLAGS:
                raise ConfigError(f"{f.where('flags')}[{i}]: unknown seccomp flag {flag!r}")
        self.syscalls = [Rule(r) for r in f.obj_list("syscalls")]
        self.listener_path = f.str("listenerPath", default="")
        self.listener_metadata = f.str("listenerMetadata", default="")
        if self.notifies and not self.listener_path:
            raise ConfigError(f"{f.where('listenerPath')}: required when a rule uses SCMP_ACT_NOTIFY")
        if self.listener_path and not self.listener_path.startswith("/"):
            raise ConfigError(f"{f.where('listenerPath')}: must be an absolute path, got {self.listener_path!r}")

    @property
    def notifies(self):
        """Some syscall goes to a seccomp agent: the filter's listener fd must reach it."""
        return any(r.action == NOTIFY for r in self.syscalls)
