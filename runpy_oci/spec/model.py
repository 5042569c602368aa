"""The OCI runtime-spec config as typed objects, validated on construction.

Only what the executor uses is modelled; every check raises ConfigError with
the JSON path of the offending field, before any state is made.
"""
import os

from runpy_oci.capabilities import KINDS, NUMBERS
from runpy_oci.errors import ConfigError
from runpy_oci.kernel import RLIMITS
from runpy_oci.spec.fields import Fields
from runpy_oci.spec.resources import Resources

SUPPORTED_MAJOR = 1
UINT64_MAX = (1 << 64) - 1  # rlimits are uint64 in the runtime-spec; this is also "unlimited"

NAMESPACE_TYPES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")

RLIMIT_NAMES = tuple(sorted(RLIMITS))

DEVICE_TYPES = ("c", "u", "b", "p")
DEVICE_TYPE_BITS = {"c": 0o020000, "u": 0o020000, "b": 0o060000, "p": 0o010000}  # S_IFCHR, S_IFBLK, S_IFIFO

# sysctl prefixes and the namespace that makes them the container's own
NAMESPACED_SYSCTLS = (
    ("kernel.msgmax", "ipc"), ("kernel.msgmnb", "ipc"), ("kernel.msgmni", "ipc"),
    ("kernel.sem", "ipc"), ("kernel.shmall", "ipc"), ("kernel.shmmax", "ipc"),
    ("kernel.shmmni", "ipc"), ("kernel.shm_rmid_forced", "ipc"), ("fs.mqueue.", "ipc"),
    ("net.", "network"), ("kernel.hostname", "uts"), ("kernel.domainname", "uts"),
)

PROPAGATIONS = ("private", "rprivate", "slave", "rslave", "shared", "rshared", "unbindable", "runbindable")


class User:
    __slots__ = ("uid", "gid", "umask", "additional_gids")

    def __init__(self, f):
        self.uid = f.uint32("uid", required=True)
        self.gid = f.uint32("gid", required=True)
        self.umask = f.int("umask", minimum=0, maximum=0o7777)
        self.additional_gids = f.int_list("additionalGids")


class Rlimit:
    __slots__ = ("type", "soft", "hard")

    def __init__(self, f):
        self.type = f.str("type", required=True)
        if self.type not in RLIMIT_NAMES:
            raise ConfigError(f"{f.where('type')}: unknown rlimit {self.type!r}")
        self.hard = f.int("hard", required=True, minimum=0, maximum=UINT64_MAX)
        self.soft = f.int("soft", required=True, minimum=0, maximum=UINT64_MAX)
        if self.soft > self.hard:
            raise ConfigError(f"{f.path}: soft limit {self.soft} exceeds hard limit {self.hard}")


class Process:
    __slots__ = (
        "terminal", "console_size", "user", "args", "env", "cwd", "rlimits",
        "no_new_privileges", "oom_score_adj", "capabilities", "apparmor_profile",
        "selinux_label",
    )

    def __init__(self, f):
        self.terminal = f.bool("terminal")
        size = f.obj("consoleSize")
        self.console_size = (size.int("height", True, minimum=0), size.int("width", True, minimum=0)) if size else None
        self.user = User(f.obj("user", required=True))
        self.args = f.str_list("args", required=True)
        if not self.args:
            raise ConfigError(f"{f.where('args')}: must name at least the program to run")
        self.env = f.str_list("env")
        self.cwd = f.str("cwd", required=True)
        if not self.cwd.startswith("/"):
            raise ConfigError(f"{f.where('cwd')}: must be an absolute path, got {self.cwd!r}")
        self.rlimits = []
        for rf in f.obj_list("rlimits"):
            rlimit = Rlimit(rf)
            if any(r.type == rlimit.type for r in self.rlimits):
                raise ConfigError(f"{rf.where('type')}: {rlimit.type} given twice")
            self.rlimits.append(rlimit)
        self.no_new_privileges = f.bool("noNewPrivileges")
        self.oom_score_adj = f.int("oomScoreAdj", minimum=-1000, maximum=1000)
        self.capabilities = _capabilities(f.obj("capabilities"))
        self.apparmor_profile = f.str("apparmorProfile")
        self.selinux_label = f.str("selinuxLabel")


def _capabilities(caps):
    """Each set checked against the kernel's names; unknown names are refused."""
    if caps is None:
        return None
    sets = {}
    for kind in KINDS:
        names = caps.str_list(kind)
        for i, name in enumerate(names):
            if name not in NUMBERS:
                raise ConfigError(f"{caps.where(kind)}[{i}]: unknown capability {name!r}")
        sets[kind] = names
    return sets


class Mount:
    __slots__ = ("destination", "type", "source", "options")

    def __init__(self, f):
        self.destination = f.str("destination", required=True)
        if not self.destination:
            raise ConfigError(f"{f.where('destination')}: must not be empty")
        self.type = f.str("type", default="")
        self.source = f.str("source", default="")
        self.options = f.str_list("options")


class Namespace:
    __slots__ = ("type", "path")

    def __init__(self, f):
        self.type = f.str("type", required=True)
        if self.type not in NAMESPACE_TYPES:
            raise ConfigError(
                f"{f.where('type')}: unknown namespace type {self.type!r} "
                f"(one of {', '.join(NAMESPACE_TYPES)})"
            )
        self.path = f.str("path", default="")
        if self.path and not self.path.startswith("/"):
            raise ConfigError(f"{f.where('path')}: must be an absolute path, got {self.path!r}")


class IdMapping:
    __slots__ = ("container_id", "host_id", "size")

    def __init__(self, f):
        self.container_id = f.uint32("containerID", required=True)
        self.host_id = f.uint32("hostID", required=True)
        self.size = f.uint32("size", required=True)


class Device:
    __slots__ = ("type", "path", "major", "minor", "file_mode", "uid", "gid")

    def __init__(self, f):
        self.type = f.str("type", required=True)
        if self.type not in DEVICE_TYPES:
            raise ConfigError(f"{f.where('type')}: unknown device type {self.type!r} (one of c, u, b, p)")
        self.path = f.str("path", required=True)
        if not self.path.startswith("/dev/"):
            raise ConfigError(f"{f.where('path')}: must be under /dev, got {self.path!r}")
        needs_numbers = self.type != "p"
        self.major = f.int("major", required=needs_numbers, default=0, minimum=0)
        self.minor = f.int("minor", required=needs_numbers, default=0, minimum=0)
        self.file_mode = f.uint32("fileMode")
        if self.file_mode is not None:
            # podman passes st_mode, file-type bits included (runc and crun
            # accept it): keep the permission bits once the type agrees.
            kind, perm = self.file_mode & 0o170000, self.file_mode & ~0o170000
            if kind and kind != DEVICE_TYPE_BITS[self.type]:
                raise ConfigError(f"{f.where('fileMode')}: file type bits {kind:#o} do not match "
                                  f"device type {self.type!r}")
            if perm > 0o7777:
                raise ConfigError(f"{f.where('fileMode')}: {self.file_mode} has bits beyond a file mode")
            self.file_mode = perm
        self.uid = f.uint32("uid")
        self.gid = f.uint32("gid")


class Hook:
    __slots__ = ("path", "args", "env", "timeout")

    def __init__(self, f):
        self.path = f.str("path", required=True)
        if not self.path.startswith("/"):
            raise ConfigError(f"{f.where('path')}: must be an absolute path, got {self.path!r}")
        self.args = f.str_list("args")
        self.env = f.str_list("env")
        self.timeout = f.int("timeout", minimum=1)


HOOK_KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")


class Linux:
    __slots__ = (
        "namespaces", "uid_mappings", "gid_mappings", "devices", "cgroups_path",
        "resources", "rootfs_propagation", "masked_paths", "readonly_paths",
        "sysctl", "seccomp", "mount_label", "time_offsets",
    )

    def __init__(self, f):
        self.namespaces = []
        for nf in f.obj_list("namespaces"):
            ns = Namespace(nf)
            if self.namespace(ns.type):
                raise ConfigError(f"{nf.where('type')}: namespace {ns.type!r} listed twice")
            self.namespaces.append(ns)
        self.uid_mappings = [IdMapping(m) for m in f.obj_list("uidMappings")]
        self.gid_mappings = [IdMapping(m) for m in f.obj_list("gidMappings")]
        if (self.uid_mappings or self.gid_mappings) and not self.namespace("user"):
            raise ConfigError(f"{f.where('uidMappings')}: id mappings need a user namespace in linux.namespaces")
        self.devices = [Device(d) for d in f.obj_list("devices")]
        self.cgroups_path = f.str("cgroupsPath", default="")
        res = f.obj("resources")
        self.resources = Resources(res) if res else Resources.empty(f.where("resources"))
        self.rootfs_propagation = f.str("rootfsPropagation", default="")
        if self.rootfs_propagation and self.rootfs_propagation not in PROPAGATIONS:
            raise ConfigError(
                f"{f.where('rootfsPropagation')}: unknown propagation {self.rootfs_propagation!r}"
            )
        self.masked_paths = f.str_list("maskedPaths")
        self.readonly_paths = f.str_list("readonlyPaths")
        self.sysctl = f.str_map("sysctl")
        seccomp = f.obj("seccomp")
        self.seccomp = None
        if seccomp:
            from runpy_oci.spec.seccomp import Seccomp  # only then: create is a hot path

            self.seccomp = Seccomp(seccomp)
        self.mount_label = f.str("mountLabel", default="")
        offsets = f.obj("timeOffsets")
        self.time_offsets = {}
        if offsets:
            for clock in offsets.data:
                if clock not in ("monotonic", "boottime"):
                    raise ConfigError(f"{offsets.where(clock)}: unknown clock (monotonic or boottime)")
                c = offsets.obj(clock, required=True)
                self.time_offsets[clock] = (c.int("secs", default=0), c.int("nanosecs", default=0, minimum=0))

    def namespace(self, ns_type):
        for ns in self.namespaces:
            if ns.type == ns_type:
                return ns
        return None


def _refuse_symlinked_rootfs(bundle, path):
    """runc refuses a root.path that is or passes through a symlink (the
    bundle's own path may): mounts and masks are resolved in the rootfs, and a
    link to / would set them up over the host's tree."""
    under_real_bundle = os.path.normpath(os.path.join(os.path.realpath(bundle), path))
    real = os.path.realpath(under_real_bundle)
    if real != under_real_bundle:
        raise ConfigError(f"root.path: invalid rootfs: not an absolute path, or a symlink: {path} resolves to {real}")


class Spec:
    """A validated config.json; ``root_path`` is absolute (resolved against the bundle)."""

    __slots__ = (
        "oci_version", "root_path", "root_readonly", "process", "hostname",
        "domainname", "mounts", "hooks", "annotations", "linux", "bundle",
    )

    def __init__(self, data, bundle):
        f = Fields(data)
        self.bundle = bundle
        self.oci_version = f.str("ociVersion", required=True)
        major = self.oci_version.split(".", 1)[0]
        if not major.isdigit() or int(major) != SUPPORTED_MAJOR:
            raise ConfigError(
                f"ociVersion: unsupported version {self.oci_version!r} (this runtime implements 1.x)"
            )
        root = f.obj("root", required=True)
        path = root.str("path", required=True)
        self.root_path = os.path.normpath(os.path.join(bundle, path))
        if not os.path.isdir(self.root_path):
            raise ConfigError(f"root.path: {self.root_path} is not a directory")
        _refuse_symlinked_rootfs(bundle, path)
        self.root_readonly = root.bool("readonly")
        self.process = Process(f.obj("process", required=True))
        self.hostname = f.str("hostname", default="")
        self.domainname = f.str("domainname", default="")
        self.mounts = [Mount(m) for m in f.obj_list("mounts")]
        hooks = f.obj("hooks")
        self.hooks = {}
        if hooks:
            for kind in hooks.data:
                if kind not in HOOK_KINDS:
                    raise ConfigError(f"{hooks.where(kind)}: unknown hook kind")
                self.hooks[kind] = [Hook(h) for h in hooks.obj_list(kind)]
        self.annotations = f.str_map("annotations")
        linux = f.obj("linux")
        self.linux = Linux(linux if linux else Fields({}, "linux"))
        self._check_namespace_needs(f)

    def _check_namespace_needs(self, f):
        """Settings that only make sense inside a namespace the config does not have."""
        if (self.hostname or self.domainname) and self.linux.namespace("uts") is None:
            # one joined by path is changed, as runc does: config.md allows either
            key = "hostname" if self.hostname else "domainname"
            raise ConfigError(
                f"{key}: setting it needs a uts namespace in linux.namespaces, or it would change the host"
            )
        self._check_sysctls()
        if self.linux.time_offsets:
            ns = self.linux.namespace("time")
            if ns is None or ns.path:
                raise ConfigError("linux.timeOffsets: needs a new time namespace in linux.namespaces")

    def _check_sysctls(self):
        """Refuse sysctls that would change the host, as runc does."""
        for key in self.linux.sysctl:
            for prefix, ns_type in NAMESPACED_SYSCTLS:
                if key == prefix or (prefix.endswith(".") and key.startswith(prefix)):
                    if self.linux.namespace(ns_type) is None:
                        raise ConfigError(
                            f"linux.sysctl.{key}: needs its own {ns_type} namespace, or it would change the host"
                        )
                    break
            else:
                raise ConfigError(f"linux.sysctl.{key}: not in a separate kernel namespace; refusing to set it")
