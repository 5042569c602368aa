"""Binds, Mounts (type bind, volume and tmpfs) and Tmpfs: parsed with dockerd's
messages (its volume/mounts linux parser), then laid into the spec's mounts
as dockerd's WithMounts does: its default mounts, minus those a user mount
covers, then the user's, the network files and /dev/shm, shallow first.
"""
import json
import posixpath
from dataclasses import dataclass

from engine.errors import InvalidParameter, System

RPRIVATE = "rprivate"
PROPAGATIONS = ("private", "rprivate", "shared", "rshared", "slave", "rslave")
_RW_MODES = ("rw", "ro")
_LABEL_MODES = ("z", "Z")
_CONSISTENCY_MODES = ("consistent", "cached", "delegated", "default")

# oci.DefaultLinuxSpec()'s mounts; /dev/shm gets size=<ShmSize> when kept.
DEFAULT_MOUNTS = (
    ("/proc", "proc", "proc", ("nosuid", "noexec", "nodev")),
    ("/dev", "tmpfs", "tmpfs", ("nosuid", "strictatime", "mode=755", "size=65536k")),
    ("/dev/pts", "devpts", "devpts", ("nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5")),
    ("/sys", "sysfs", "sysfs", ("nosuid", "noexec", "nodev", "ro")),
    ("/sys/fs/cgroup", "cgroup", "cgroup", ("ro", "nosuid", "noexec", "nodev")),
    ("/dev/mqueue", "mqueue", "mqueue", ("nosuid", "noexec", "nodev")),
    ("/dev/shm", "tmpfs", "shm", ("nosuid", "noexec", "nodev", "mode=1777")),
)
INIT_PATH_IN_CONTAINER = "/sbin/docker-init"
NETWORK_FILES = ("/etc/resolv.conf", "/etc/hostname", "/etc/hosts")
# Never made read-only by ReadonlyRootfs.
_KEPT_WRITABLE = ("/proc", "/dev/pts", "/dev/shm", "/dev/mqueue", "/dev")

# moby/sys/mount's flag table as MergeTmpfsOptions reads it: options with the
# same key overwrite each other (the last wins); propagation is one key.
_FLAG_KEYS = {
    "ro": "rdonly", "rw": "rdonly", "suid": "nosuid", "nosuid": "nosuid", "dev": "nodev", "nodev": "nodev",
    "exec": "noexec", "noexec": "noexec", "sync": "sync", "async": "sync", "dirsync": "dirsync",
    "remount": "remount", "mand": "mand", "nomand": "mand", "atime": "noatime", "noatime": "noatime",
    "diratime": "nodiratime", "nodiratime": "nodiratime", "bind": "bind", "rbind": "rbind",
    "relatime": "relatime", "norelatime": "relatime", "strictatime": "strictatime",
    "nostrictatime": "strictatime", "unbindable": "propagation", "runbindable": "propagation",
    **{p: "propagation" for p in PROPAGATIONS},
}
# The mountinfo optional fields a bind source's mount needs for a propagation.
_PROPAGATION_NEEDS = {"shared": ("shared:",), "rshared": ("shared:",), "slave": ("shared:", "master:"),
                      "rslave": ("shared:", "master:")}
_TMPFS_DATA_KEYS = ("size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol")


@dataclass(frozen=True)
class MountPoint:
    """A user mount: a bind (source on the host), a volume (``volume`` not
    None: its name, "" for an anonymous one; the source is its mountpoint once
    resolved) or a tmpfs (``tmpfs_data`` not None, its options as text). A
    Binds source that is missing is made at start; a Mounts one must exist at
    create."""
    destination: str
    source: str = ""
    writable: bool = True
    propagation: str = ""
    non_recursive: bool = False
    tmpfs_data: str | None = None
    source_must_exist: bool = False
    volume: str | None = None
    copy_data: bool = True      # an empty volume gets the image's content at the destination
    mode: str = ""              # a volume's Binds mode text, as inspect shows it
    volume_labels: dict | None = None    # a volume made for a Mounts entry gets its VolumeOptions'
    volume_options: dict | None = None


def _invalid_config(kind, message):
    return InvalidParameter(f"invalid mount config for type {json.dumps(kind)}: {message}")


def _absolute(path):
    if not path.startswith("/"):
        return f"invalid mount path: '{path}' mount path must be absolute"
    return None


def _check_target(kind, target):
    if not target:
        raise _invalid_config(kind, "field Target must not be empty")
    if posixpath.normpath(target) == "/":
        raise _invalid_config(kind, "invalid specification: destination can't be '/'")
    if problem := _absolute(target):
        raise _invalid_config(kind, problem)


def valid_mode(mode):
    """A Binds mode text as dockerd's ValidMountMode accepts it."""
    if not mode:
        return True
    counts = {}
    for opt in mode.split(","):
        if opt in _RW_MODES:
            kind = "rw"
        elif opt in _LABEL_MODES:
            kind = "label"
        elif opt in PROPAGATIONS:
            kind = "propagation"
        elif opt == "nocopy":
            kind = "copy"
        elif opt in _CONSISTENCY_MODES:
            kind = "consistency"
        else:
            return False
        counts[kind] = counts.get(kind, 0) + 1
    return all(n == 1 for n in counts.values())


def parse_bind(raw: str) -> MountPoint:
    """One HostConfig.Binds entry, `src:dst[:mode]` (a source not absolute
    names a volume) or `dst` (an anonymous volume)."""
    invalid = f"invalid volume specification: '{raw}'"
    parts = raw.split(":")
    if not raw or not parts[0] or len(parts) > 3 or (len(parts) == 2 and valid_mode(parts[1])):
        raise InvalidParameter(invalid)
    if len(parts) == 1:
        if problem := _absolute(raw):
            raise InvalidParameter(f"{invalid}: {_invalid_config('volume', problem)}")
        return MountPoint(posixpath.normpath(raw), volume="")
    source, target, mode = parts[0], parts[1], parts[2] if len(parts) == 3 else ""
    if not valid_mode(mode):
        raise InvalidParameter(f"invalid mode: {mode}")
    kind = "bind" if source.startswith("/") else "volume"
    try:
        _check_target(kind, target)
    except InvalidParameter as err:
        raise InvalidParameter(f"{invalid}: {err}") from None
    options = mode.split(",") if mode else []
    if kind == "volume":
        return MountPoint(posixpath.normpath(target), writable="ro" not in options, volume=source,
                          copy_data="nocopy" not in options, mode=mode)
    propagation = next((o for o in options if o in PROPAGATIONS), RPRIVATE)
    return MountPoint(posixpath.normpath(target), posixpath.normpath(source), "ro" not in options, propagation)


def tmpfs_options_text(size_bytes, mode, read_only):
    """A Mounts entry's TmpfsOptions as Tmpfs-style text (dockerd's ConvertTmpfsOptions)."""
    opts = ["ro"] if read_only else []
    if mode:
        opts.append(f"mode={mode:o}")
    if size_bytes:
        for suffix, divisor in (("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
            if size_bytes % divisor == 0:
                size_bytes, unit = size_bytes // divisor, suffix
                break
        else:
            unit = ""
        opts.append(f"size={size_bytes}{unit}")
    return ",".join(opts)


def parse_mount(mount) -> MountPoint:
    """One HostConfig.Mounts entry (already type-checked by the caller into
    plain values: a dict with Type, Source, Target, ReadOnly, BindOptions,
    TmpfsOptions, VolumeOptions)."""
    kind, source, target = mount.get("Type") or "", mount.get("Source") or "", mount.get("Target") or ""
    if kind not in ("bind", "tmpfs", "volume", "npipe"):
        raise _invalid_config(kind, "mount type unknown")
    _check_target(kind, target)
    read_only = bool(mount.get("ReadOnly"))
    if kind == "tmpfs":
        if mount.get("BindOptions"):
            raise _invalid_config(kind, "field BindOptions must not be specified")
        if source:
            raise _invalid_config(kind, "field Source must not be specified")
        tmpfs = mount.get("TmpfsOptions") or {}
        data = tmpfs_options_text(tmpfs.get("SizeBytes") or 0, tmpfs.get("Mode") or 0, read_only)
        merge_tmpfs_options(data.split(",") if data else [])
        return MountPoint(posixpath.normpath(target), "tmpfs", True, tmpfs_data=data)
    if kind == "volume":
        return _volume_mount(mount, target, read_only)
    if kind != "bind":
        raise _invalid_config(kind, f"{kind} mounts are not supported yet")
    if not source:
        raise _invalid_config(kind, "field Source must not be empty")
    bind = mount.get("BindOptions") or {}
    propagation = bind.get("Propagation") or ""
    if propagation and propagation not in PROPAGATIONS:
        raise _invalid_config(kind, f"invalid propagation mode: {propagation}")
    if mount.get("VolumeOptions"):
        raise _invalid_config(kind, "field VolumeOptions must not be specified")
    if problem := _absolute(source):
        raise _invalid_config(kind, problem)
    return MountPoint(posixpath.normpath(target), posixpath.normpath(source), not read_only,
                      propagation or RPRIVATE, bool(bind.get("NonRecursive")), source_must_exist=True)


def _volume_mount(mount, target, read_only) -> MountPoint:
    """A Mounts entry of type volume: Source names it (anonymous when empty)."""
    if mount.get("BindOptions"):
        raise _invalid_config("volume", "field BindOptions must not be specified")
    if mount.get("TmpfsOptions"):
        raise _invalid_config("volume", "field TmpfsOptions must not be specified")
    options = mount.get("VolumeOptions") or {}
    driver = options.get("DriverConfig") or {}
    return MountPoint(posixpath.normpath(target), writable=not read_only, volume=mount.get("Source") or "",
                      copy_data=not options.get("NoCopy"), volume_labels=options.get("Labels"),
                      volume_options=driver.get("Options"))


def parse_tmpfs(tmpfs: dict, lenient: bool = False) -> list[MountPoint]:
    """HostConfig.Tmpfs, {destination: "opt,opt"}. dockerd checks the
    options only at start (the container made, the start a 500): ``lenient``
    (at create) leaves a mount with bad ones out, for the start to refuse."""
    mounts = []
    for destination, data in tmpfs.items():
        if problem := _absolute(destination):
            raise InvalidParameter(problem)
        try:
            merge_tmpfs_options(data.split(",") if data else [])
        except InvalidParameter:
            if lenient:
                continue
            raise
        mounts.append(MountPoint(destination, "tmpfs", True, tmpfs_data=data))
    return mounts


def merge_tmpfs_options(options):
    """moby's MergeTmpfsOptions: later options win over earlier ones of the
    same kind, data options must be known keys with a value."""
    seen_flags, seen_data, merged = set(), set(), []
    for option in reversed(options):
        if option == "defaults":
            continue
        if option in _FLAG_KEYS:
            if _FLAG_KEYS[option] not in seen_flags:
                seen_flags.add(_FLAG_KEYS[option])
                merged.insert(0, option)
            continue
        key, sep, _ = option.partition("=")
        if not sep or key not in _TMPFS_DATA_KEYS:
            quoted = " ".join(json.dumps(p) for p in option.split("=", 1))
            raise InvalidParameter(f"invalid tmpfs option [{quoted}]")
        if key not in seen_data:
            seen_data.add(key)
            merged.insert(0, option)
    return merged


def check_duplicates(mounts):
    """Binds and Mounts share one destination namespace (Tmpfs is apart)."""
    seen = set()
    for m in mounts:
        if m.destination in seen:
            raise InvalidParameter(f"Duplicate mount point: {m.destination}")
        seen.add(m.destination)


def check_propagation(user_mounts, host):
    """A bind with [r]shared propagation needs a shared source mount, one with
    [r]slave a shared or slave one, as dockerd checks at start (its words)."""
    for m in user_mounts:
        needed = _PROPAGATION_NEEDS.get(m.propagation) if m.tmpfs_data is None else None
        if needed is None:
            continue
        point, optional = host.mount_of(m.source)
        if not any(field.startswith(needed) for field in optional.split()):
            kind = " or ".join(f[:-1].replace("master", "slave") for f in needed)
            raise System(f"path {m.source} is mounted on {point} but it is not a {kind} mount")


def _depth(destination):
    return len(posixpath.normpath(destination).split("/"))


@dataclass(frozen=True)
class MountPaths:
    """Host paths the daemon keeps per container: the network files (of this
    container or the one whose network it joins), the IPC shm directory
    (shareable or joined IPC; the host's /dev/shm when not given for host
    IPC), the init binary."""
    resolv_conf: str = ""
    hostname: str = ""
    hosts: str = ""
    shm: str = ""
    init: str = ""


def spec_mounts(user_mounts, paths: MountPaths, *, ipc_mode, shm_size, readonly_rootfs, privileged, with_init):
    """The spec's mounts list and linux.rootfsPropagation ("" for none)."""
    user_mounts = list(user_mounts)
    tmpfs_destinations = {m.destination for m in user_mounts if m.tmpfs_data is not None}
    binds = [m for m in user_mounts if m.tmpfs_data is None and m.destination not in tmpfs_destinations]
    network = {m.destination: m for m in binds if m.destination in NETWORK_FILES}
    ordered = sorted((m for m in binds if m.destination not in network), key=lambda m: _depth(m.destination))
    for destination, source in zip(NETWORK_FILES, (paths.resolv_conf, paths.hostname, paths.hosts)):
        if destination in network:
            given = network[destination]
            ordered.append(MountPoint(destination, given.source, given.writable, RPRIVATE))
        elif source:
            ordered.append(MountPoint(destination, source, not readonly_rootfs, RPRIVATE))
    shm = paths.shm or ("/dev/shm" if ipc_mode == "host" else "")
    if ipc_mode not in ("", "private", "none") and shm and "/dev/shm" not in {m.destination for m in binds}:
        ordered.append(MountPoint("/dev/shm", shm, True, RPRIVATE))
    ordered += [m for m in user_mounts if m.tmpfs_data is not None]
    ordered.sort(key=lambda m: _depth(m.destination))

    covered = {m.destination for m in ordered}
    mounts = []
    defaults = [(d, t, s, list(o)) for d, t, s, o in DEFAULT_MOUNTS]
    if with_init:
        defaults.append((INIT_PATH_IN_CONTAINER, "bind", paths.init, ["bind", "ro"]))
    for destination, kind, source, options in defaults:
        if destination in covered or ("/dev" in covered and destination.startswith("/dev/")):
            continue
        if destination == "/dev/shm":
            if ipc_mode == "none":
                continue
            options.append(f"size={shm_size}")
        mounts.append({"destination": destination, "type": kind, "source": source, "options": options})

    rootfs_propagation = ""
    for m in ordered:
        if m.tmpfs_data is not None:
            options = merge_tmpfs_options(["noexec", "nosuid", "nodev", RPRIVATE]
                                          + (m.tmpfs_data.split(",") if m.tmpfs_data else []))
            mounts.append({"destination": m.destination, "type": "tmpfs", "source": "tmpfs", "options": options})
            continue
        if m.propagation in ("shared", "rshared"):
            if rootfs_propagation not in ("shared", "rshared"):
                rootfs_propagation = "shared"
        elif m.propagation in ("slave", "rslave"):
            if rootfs_propagation not in ("shared", "rshared", "slave", "rslave"):
                rootfs_propagation = "rslave"
        options = ["bind" if m.non_recursive else "rbind"] + ([] if m.writable else ["ro"])
        options += [m.propagation] if m.propagation else []
        mounts.append({"destination": m.destination, "type": "bind", "source": m.source, "options": options})

    for mount in mounts:
        if readonly_rootfs and mount["destination"] not in _KEPT_WRITABLE and mount["destination"] not in covered:
            if "ro" not in mount["options"]:
                mount["options"].append("ro")
        if privileged and (mount["destination"] == "/sys" or mount["type"] == "cgroup"):
            mount["options"] = [o for o in mount["options"] if o != "ro"]
    return mounts, rootfs_propagation



def recorded_mount_points(host_config: dict) -> dict:
    """config.v2.json's MountPoints, by destination, for a HostConfig that
    parse_host_config has accepted: its Binds (with their mode text, as
    inspect shows it) and Mounts but volumes (the container's volumes record
    those); --tmpfs ones are not listed, as in dockerd."""
    points = {}

    def add(point: MountPoint, mode: str) -> None:
        if point.volume is not None:
            return
        tmpfs = point.tmpfs_data is not None
        points[point.destination] = {
            "Source": "" if tmpfs else point.source, "Destination": point.destination, "RW": point.writable,
            "Name": "", "Driver": "", "Type": "tmpfs" if tmpfs else "bind", "Mode": mode,
            "Propagation": "" if tmpfs else point.propagation}

    for raw in host_config.get("Binds") or ():
        parts = raw.split(":")
        add(parse_bind(raw), parts[2] if len(parts) == 3 else "")
    for item in host_config.get("Mounts") or ():
        add(parse_mount(item), "")
    return points
