"""The OCI runtime spec (config.json) dockerd 20.10 generates for a
container, from its parsed Config and HostConfig (daemon/oci_linux.go's
createSpec, in the same steps).

Everything about the machine comes in: host paths in ``SpecInputs``, facts
and files through a ``Host`` (engine/oci/host.py). What dockerd adds for its
own plumbing is left to the caller: the libnetwork prestart hook, AppArmor
and SELinux labels.
"""
import posixpath
import re
from dataclasses import dataclass, field

from engine.errors import InvalidParameter, System
from engine.oci import mounts as mnt
from engine.oci import security, users
from engine.oci.request import ContainerConfig, HostConfig

OCI_VERSION = "1.0.2-dev"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_CGROUP_PARENT = "/docker"
DEFAULT_MASKED_PATHS = ("/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware")
DEFAULT_READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
# null, zero, full, random, urandom, tty, console, ptmx allowed; /dev/pts etc. denied.
_DEFAULT_DEVICE_RULES = ((False, "", None, None), (True, "c", 1, 5), (True, "c", 1, 3), (True, "c", 1, 9),
                         (True, "c", 1, 8), (True, "c", 5, 0), (True, "c", 5, 1), (False, "c", 10, 229))
_UINT64 = (1 << 64) - 1  # a ulimit of -1 (unlimited) is RLIM_INFINITY
_CGROUP_RULE = re.compile(r"^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$")


@dataclass(frozen=True)
class SpecInputs:
    """What the daemon knows of this container beyond its configs:
    ``namespace_paths`` maps "network", "ipc", "pid" to the namespace to join
    for `container:<x>` modes (/proc/<pid>/ns/...), "network" to the host's
    for `host` networking and to the container's sandbox on bridge networks."""
    container_id: str
    rootfs: str
    paths: mnt.MountPaths = field(default_factory=mnt.MountPaths)
    namespace_paths: dict = field(default_factory=dict)
    default_cgroup_parent: str = DEFAULT_CGROUP_PARENT


def command(config: ContainerConfig) -> list[str]:
    """Entrypoint + Cmd, or 400 when neither the request nor the image gave one."""
    args = list(config.entrypoint or ()) + list(config.cmd or ())
    if not args:
        raise InvalidParameter("No command specified")
    return args


def environment(config: ContainerConfig, hostname: str) -> list[str]:
    """PATH, HOSTNAME (and TERM with a TTY), overridden by Config.Env."""
    defaults = [f"PATH={DEFAULT_PATH}", f"HOSTNAME={hostname}"] + (["TERM=xterm"] if config.tty else [])
    return replace_or_append_env(defaults, config.env)


def replace_or_append_env(defaults: list[str], overrides) -> list[str]:
    """moby's ReplaceOrAppendEnvValues: an override replaces the default of
    its name or is appended; one without "=" unsets a default."""
    env = list(defaults)
    index = {e.split("=", 1)[0]: i for i, e in enumerate(env)}
    for entry in overrides:
        key, sep, _ = entry.partition("=")
        if not sep:
            if key in index:
                env[index[key]] = ""
        elif key in index:
            env[index[key]] = entry
        else:
            env.append(entry)
    return [e for e in env if e]


def _is_container_mode(mode):
    return mode.startswith("container:")


def _joined(kind, inputs):
    path = inputs.namespace_paths.get(kind)
    if not path:  # the daemon resolves container:<x> to a running container's namespace first
        raise System(f"no {kind} namespace given to join")
    return {"type": kind, "path": path}


def namespaces(config, hc: HostConfig, inputs: SpecInputs, host) -> list[dict]:
    """dockerd's WithNamespaces over the default five (mount, network, uts, pid, ipc)."""
    spaces = {kind: {"type": kind} for kind in ("mount", "network", "uts", "pid", "ipc")}
    if not config.network_disabled:
        if _is_container_mode(hc.network_mode):
            spaces["network"] = _joined("network", inputs)
        elif hc.network_mode == "host":
            if inputs.namespace_paths.get("network"):
                spaces["network"] = _joined("network", inputs)
            else:
                del spaces["network"]
        elif inputs.namespace_paths.get("network"):  # the sandbox the engine wired to its networks
            spaces["network"] = _joined("network", inputs)
    if _is_container_mode(hc.ipc_mode):
        spaces["ipc"] = _joined("ipc", inputs)
    elif hc.ipc_mode == "host":
        del spaces["ipc"]
    if _is_container_mode(hc.pid_mode):
        spaces["pid"] = _joined("pid", inputs)
    elif hc.pid_mode == "host":
        del spaces["pid"]
    if hc.uts_mode == "host":
        del spaces["uts"]
    if cgroupns_mode(hc, host) == "private":
        spaces["cgroup"] = {"type": "cgroup"}
    return list(spaces.values())


def _rule(allow, kind, major, minor, access="rwm"):
    rule = {"allow": allow}
    if kind:
        rule["type"] = kind
    if major is not None:
        rule["major"] = major
    if minor is not None:
        rule["minor"] = minor
    rule["access"] = access
    return rule


def _device(d):
    return {"path": d.path, "type": d.type, "major": d.major, "minor": d.minor, "fileMode": d.file_mode,
            "uid": d.uid, "gid": d.gid}


def cgroupns_mode(hc: HostConfig, host) -> str:
    """The asked cgroup namespace mode, else the default: private on cgroup v2 unless privileged."""
    return hc.cgroupns_mode or ("private" if host.cgroup_version == 2 and not hc.privileged else "host")


def devices(hc: HostConfig, host):
    """linux.devices and the device cgroup rules (dockerd's WithDevices)."""
    if hc.privileged:
        nodes = list(host.all_devices())
        for m in hc.devices:
            if m.path_on_host != m.path_in_container:
                nodes += host.devices_from_path(m.path_on_host, m.path_in_container, "rwm")
        return [_device(d) for d in nodes], [_rule(True, "", None, None)]
    nodes, rules = [], [_rule(*r) for r in _DEFAULT_DEVICE_RULES]
    for m in hc.devices:
        found = host.devices_from_path(m.path_on_host, m.path_in_container, m.permissions)
        nodes += found
        rules += [_rule(True, d.type, d.major, d.minor, d.permissions) for d in found]
    for text in hc.device_cgroup_rules:
        kind, major, minor, access = _CGROUP_RULE.match(text).groups()
        rules.append(_rule(True, kind, -1 if major == "*" else int(major), -1 if minor == "*" else int(minor),
                           access))
    return [_device(d) for d in nodes], rules


def resources(hc: HostConfig, device_rules) -> dict:
    """linux.resources as dockerd's WithResources writes it (shares, the
    OOM flag and the blkio weight always; the rest when set)."""
    r = hc.resources
    memory = {}
    for key, value in (("limit", r.memory), ("reservation", r.memory_reservation), ("swap", r.memory_swap)):
        if value > 0:
            memory[key] = value
    if r.memory_swappiness is not None:
        memory["swappiness"] = r.memory_swappiness
    memory["disableOOMKiller"] = r.oom_kill_disable
    cpu = {"shares": r.cpu_shares}
    if r.nano_cpus > 0:
        cpu["period"] = 100_000
        cpu["quota"] = r.nano_cpus * 100_000 // 1_000_000_000
    if r.cpu_period:
        cpu["period"] = r.cpu_period
    if r.cpu_quota:
        cpu["quota"] = r.cpu_quota
    if r.cpuset_cpus:
        cpu["cpus"] = r.cpuset_cpus
    if r.cpuset_mems:
        cpu["mems"] = r.cpuset_mems
    out = {"devices": device_rules, "memory": memory, "cpu": cpu}
    if r.pids_limit is not None:
        out["pids"] = {"limit": r.pids_limit}
    out["blockIO"] = {"weight": r.blkio_weight}
    return out


def sysctls(config, hc: HostConfig, host) -> dict:
    values = {}
    if config.domainname:
        values["kernel.domainname"] = config.domainname
    if hc.network_mode != "host" and not _is_container_mode(hc.network_mode):
        # Ping and low ports for the container's own network namespace (20.10).
        if host.sysctl_exists("net.ipv4.ping_group_range"):
            values["net.ipv4.ping_group_range"] = "0 2147483647"
        if host.sysctl_exists("net.ipv4.ip_unprivileged_port_start"):
            values["net.ipv4.ip_unprivileged_port_start"] = "0"
    values.update(hc.sysctls)
    return values


def process(config: ContainerConfig, hc: HostConfig, inputs: SpecInputs, host, hostname, caps) -> dict:
    """The spec's process: args (behind the init with --init), user, env, cwd, capabilities, rlimits."""
    args = command(config)
    if _with_init(hc):
        if not inputs.paths.init:
            raise System("--init needs an init binary, and none is configured")
        args = [mnt.INIT_PATH_IN_CONTAINER, "--", *args]
    user = users.resolve_user(config.user, hc.group_add, lambda path: host.read_rootfs_file(inputs.rootfs, path))
    out = {"terminal": True} if config.tty else {}
    out["user"] = {"uid": user.uid, "gid": user.gid, "additionalGids": list(user.additional_gids)}
    out["args"] = args
    out["env"] = environment(config, hostname)
    out["cwd"] = posixpath.normpath(config.working_dir) if config.working_dir else "/"
    # As dockerd: a user other than root gets the bounding set only, no effective capabilities.
    out["capabilities"] = ({"bounding": caps, "effective": caps, "permitted": caps} if user.uid == 0
                           else {"bounding": caps})
    if hc.ulimits:
        out["rlimits"] = [{"type": "RLIMIT_" + u.name.upper(), "hard": u.hard & _UINT64, "soft": u.soft & _UINT64}
                          for u in hc.ulimits]
    if hc.security.no_new_privileges:
        out["noNewPrivileges"] = True
    out["oomScoreAdj"] = hc.oom_score_adj
    return out


def _with_init(hc):
    return hc.init and hc.pid_mode != "host" and not _is_container_mode(hc.pid_mode)


def linux(config: ContainerConfig, hc: HostConfig, inputs: SpecInputs, host, caps) -> dict:
    """The spec's linux section but rootfsPropagation (which the mounts decide)."""
    out = {}
    if values := sysctls(config, hc, host):
        out["sysctl"] = values
    nodes, device_rules = devices(hc, host)
    out["resources"] = resources(hc, device_rules)
    parent = hc.cgroup_parent or inputs.default_cgroup_parent
    out["cgroupsPath"] = posixpath.normpath(posixpath.join(parent, inputs.container_id))
    out["namespaces"] = namespaces(config, hc, inputs, host)
    if nodes:
        out["devices"] = nodes
    seccomp = security.seccomp_for(hc.security, hc.privileged, caps, host.arch, host.kernel)
    if seccomp is not None:
        out["seccomp"] = seccomp
    # Explicit lists win; otherwise the defaults, none when privileged.
    for key, given, default in (("maskedPaths", hc.masked_paths, DEFAULT_MASKED_PATHS),
                                ("readonlyPaths", hc.readonly_paths, DEFAULT_READONLY_PATHS)):
        paths = given if given is not None else () if hc.privileged else default
        if paths:
            out[key] = list(paths)
    return out


def generate(config: ContainerConfig, hc: HostConfig, inputs: SpecInputs, host) -> dict:
    """config.json for the container: ``config`` already merged with the
    image's (request.merge_image_config), ``hc`` parsed by parse_host_config."""
    hostname = config.hostname or inputs.container_id[:12]
    caps = security.capabilities(hc.cap_add, hc.cap_drop, hc.privileged)
    spec = {"ociVersion": OCI_VERSION, "process": process(config, hc, inputs, host, hostname, caps),
            "root": {"path": inputs.rootfs, **({"readonly": True} if hc.readonly_rootfs else {})}}
    if hc.uts_mode != "host":
        spec["hostname"] = hostname
    mnt.check_propagation(hc.mounts, host)
    spec["mounts"], propagation = mnt.spec_mounts(
        hc.mounts, inputs.paths, ipc_mode=hc.ipc_mode, shm_size=hc.shm_size,
        readonly_rootfs=hc.readonly_rootfs, privileged=hc.privileged, with_init=_with_init(hc))
    spec["linux"] = linux(config, hc, inputs, host, caps)
    if propagation:
        spec["linux"]["rootfsPropagation"] = propagation
    return spec
