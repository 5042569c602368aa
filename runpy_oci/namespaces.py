"""Namespaces: joining the ones the config names by path, creating the rest,
writing user-namespace id maps (from the parent) and time offsets."""
import os

from runpy_oci import kernel as k
from runpy_oci.errors import RuntimeFailure

CLONE_FLAGS = {
    "pid": k.CLONE_NEWPID,
    "network": k.CLONE_NEWNET,
    "mount": k.CLONE_NEWNS,
    "ipc": k.CLONE_NEWIPC,
    "uts": k.CLONE_NEWUTS,
    "user": k.CLONE_NEWUSER,
    "cgroup": k.CLONE_NEWCGROUP,
    "time": k.CLONE_NEWTIME,
}

# Joined first: the user namespace (so later joins are judged by its
# credentials); last: mount (it changes what later paths resolve to).
_JOIN_ORDER = ("user", "pid", "network", "ipc", "uts", "cgroup", "time", "mount")


def join_existing(linux):
    """setns into every namespace given by path; errors name the config field."""
    fds = []
    try:
        for ns_type in _JOIN_ORDER:
            ns = linux.namespace(ns_type)
            if ns is None or not ns.path:
                continue
            try:
                fds.append((ns_type, ns.path, os.open(ns.path, os.O_RDONLY | os.O_CLOEXEC)))
            except OSError as e:
                raise RuntimeFailure(f"linux.namespaces: cannot open {ns_type} namespace {ns.path}: {e.strerror}") from None
        for ns_type, path, fd in fds:
            try:
                k.get().setns(fd, CLONE_FLAGS[ns_type])
            except OSError as e:
                raise RuntimeFailure(f"linux.namespaces: cannot join {ns_type} namespace {path}: {e.strerror}") from None
    finally:
        for _, _, fd in fds:
            os.close(fd)


def shared_root(init_pid):
    """The container's root as an fd if its mount namespace is the runtime's
    (it has none of its own), else None. Taken before joining its namespaces:
    /proc/PID is the one we mean only until then."""
    theirs, ours = os.stat(f"/proc/{init_pid}/ns/mnt"), os.stat("/proc/self/ns/mnt")
    if (theirs.st_dev, theirs.st_ino) != (ours.st_dev, ours.st_ino):
        return None  # joining its mount namespace puts us at its root
    return os.open(f"/proc/{init_pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)


def enter_shared_root(root_fd):
    """A process joining a container without a mount namespace goes where
    the container's processes live, chrooted in the rootfs; not at the
    runtime's root, where runc and crun leave an exec'd process."""
    if root_fd is None:
        return
    os.fchdir(root_fd)
    os.close(root_fd)
    os.chroot(".")
    os.chdir("/")


def new_flags(linux, exclude=()):
    """clone flags of the namespaces to create (those without a path)."""
    flags = 0
    for ns in linux.namespaces:
        if not ns.path and ns.type not in exclude:
            flags |= CLONE_FLAGS[ns.type]
    return flags


def creates(linux, ns_type):
    ns = linux.namespace(ns_type)
    return ns is not None and not ns.path


def write_id_maps(pid, linux):
    """Write uid_map/gid_map of a child that has just unshared its user namespace."""
    for name, mappings in (("uid_map", linux.uid_mappings), ("gid_map", linux.gid_mappings)):
        if not mappings:
            continue
        text = "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in mappings)
        try:
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write(text)
        except OSError as e:
            field = "uidMappings" if name == "uid_map" else "gidMappings"
            raise RuntimeFailure(f"linux.{field}: cannot write {name}: {e.strerror}") from None


def write_time_offsets(linux):
    """Offsets go in after unshare(CLONE_NEWTIME) and before any process enters it."""
    if not linux.time_offsets:
        return
    clock_ids = {"monotonic": 1, "boottime": 7}
    with open("/proc/self/timens_offsets", "w") as f:
        for clock, (secs, nanos) in linux.time_offsets.items():
            f.write(f"{clock_ids[clock]} {secs} {nanos}\n")
