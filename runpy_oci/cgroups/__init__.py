"""Control groups behind one interface, whatever the host's layout.

A host is v1 (one hierarchy per controller), v2 (one unified hierarchy) or
hybrid (v1 controllers plus a cgroup2 mount, usually /sys/fs/cgroup/unified).
``Cgroup`` holds the container's directory in every hierarchy the host has and
does what all layouts share: create, fork into and enter, list pids, freeze,
remove.

Paths follow runc's fs driver: an absolute ``linux.cgroupsPath`` is taken from
each hierarchy's root; a relative one, or the container ID when it is empty,
from the caller's own cgroup in that hierarchy.
"""
import errno
import os
import time

# clone3 errors of a kernel without it or without CLONE_INTO_CGROUP (or a
# seccomp filter that refuses it): fork, then join.
_NO_CLONE_INTO_CGROUP = (errno.ENOSYS, errno.EINVAL, errno.E2BIG)


class Hierarchy:
    """One mounted cgroup hierarchy: where it is and what it controls."""

    __slots__ = ("mountpoint", "controllers", "version")

    def __init__(self, mountpoint, controllers, version):
        self.mountpoint = mountpoint
        self.controllers = controllers
        self.version = version


def _read(path):
    """A small file's text; os.open/os.read, cheaper than open() on ``create``'s path."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, 8192):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode()


def _lines(path):
    """A small file's lines without their "\n", split only there (as iterating the file does)."""
    lines = _read(path).split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def _write(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def unescape_mountinfo(field):
    """A mountinfo field as it is: the octal escapes the kernel writes undone,
    the backslash's last, so that its escape cannot form another one."""
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def hierarchies(mountinfo="/proc/self/mountinfo"):
    """The cgroup hierarchies mounted in this mount namespace, first mount of each."""
    found, seen = [], set()
    for line in _lines(mountinfo):
        left, _, right = line.partition(" - ")
        fstype, _source, super_opts = right.split(" ", 2)
        mountpoint = unescape_mountinfo(left.split(" ")[4])
        if fstype == "cgroup2":
            key = ("cgroup2",)
            if key not in seen:
                seen.add(key)
                found.append(Hierarchy(mountpoint, (), 2))
        elif fstype == "cgroup":
            ctrls = tuple(
                o for o in super_opts.strip().split(",")
                if o not in ("rw", "ro", "relatime", "noatime", "nosuid", "nodev", "noexec", "xattr",
                             "clone_children", "cpuset_v2_mode", "noprefix", "favordynmods")
                and not o.startswith("release_agent=")
            )
            if ctrls not in seen:
                seen.add(ctrls)
                found.append(Hierarchy(mountpoint, ctrls, 1))
    return found


def own_cgroups(pid="self"):
    """Map of hierarchy key -> cgroup path of a process (from /proc/PID/cgroup)."""
    own = {}
    for line in _lines(f"/proc/{pid}/cgroup"):
        hid, ctrls, path = line.split(":", 2)
        own[("cgroup2",) if hid == "0" else tuple(sorted(ctrls.split(",")))] = path
    return own


def _inherit_cpuset(mountpoint, path):
    """A new v1 cpuset starts with no cpus or mems, and nothing can join it;
    fill each empty level from its parent, top down, as runc does."""
    if not os.path.exists(os.path.join(path, "cpuset.cpus")):
        return
    levels = []
    p = path
    while p != mountpoint and p.startswith(mountpoint):
        levels.append(p)
        p = os.path.dirname(p)
    for level in reversed(levels):
        for name in ("cpuset.cpus", "cpuset.mems"):
            if _read(os.path.join(level, name)).strip():
                continue
            _write(os.path.join(level, name), _read(os.path.join(os.path.dirname(level), name)))


def _key(h):
    return ("cgroup2",) if h.version == 2 else tuple(sorted(h.controllers))


def _words(path):
    try:
        with open(path) as f:
            return f.read().split()
    except OSError:
        return []


def _enable_v2_controller(mountpoint, path, ctrl):
    """On v2 a controller works in a cgroup only once every ancestor enables
    it in cgroup.subtree_control; done only for a controller the config asks
    for. A level that refuses (it has processes of its own) leaves it out,
    and the limit then fails with the field's name."""
    levels = []
    p = os.path.dirname(path)
    while p.startswith(mountpoint):
        levels.append(p)
        if p == mountpoint:
            break
        p = os.path.dirname(p)
    for level in reversed(levels):
        if ctrl not in _words(os.path.join(level, "cgroup.controllers")):
            return
        if ctrl in _words(os.path.join(level, "cgroup.subtree_control")):
            continue
        try:
            with open(os.path.join(level, "cgroup.subtree_control"), "w") as f:
                f.write("+" + ctrl)
        except OSError:
            return


class Cgroup:
    """The container's cgroup directory in each hierarchy."""

    def __init__(self, paths, found=None):
        # hierarchy mountpoint -> absolute directory of the container there
        self.paths = paths
        self._hierarchies = found

    @classmethod
    def for_container(cls, cgroups_path, container_id):
        own = own_cgroups()
        paths = {}
        found = hierarchies()
        for h in found:
            if cgroups_path.startswith("/"):
                inner = cgroups_path
            else:
                inner = os.path.join(own.get(_key(h), "/"), cgroups_path or container_id)
            paths[h.mountpoint] = os.path.normpath(h.mountpoint + "/" + inner)
        return cls(paths, found)

    def create(self):
        for h in self.hierarchies():
            path = self.paths.get(h.mountpoint)
            if path is None:
                continue
            os.makedirs(path, exist_ok=True)
            if h.version == 1:
                _inherit_cpuset(h.mountpoint, path)

    def hierarchies(self):
        if self._hierarchies is None:
            self._hierarchies = hierarchies()
        return self._hierarchies

    def unified_only(self):
        """A pure v2 host. On a hybrid one the unified hierarchy serves only
        what every v2 cgroup has (``unified`` files), as with runc: enabling
        a controller there would keep it from ever being mounted as v1."""
        return all(h.version == 2 for h in self.hierarchies())

    def dir_for(self, ctrl, enable=False):
        """Where controller ``ctrl`` works for this container: its v1 hierarchy
        if the host has one, else the unified hierarchy if it offers the
        controller there (with ``enable``, after enabling it in the
        ancestors); None if neither."""
        from runpy_oci.cgroups.controller import Dir

        v2 = None
        for h in self.hierarchies():
            path = self.paths.get(h.mountpoint)
            if path is None:
                continue
            if h.version == 1 and ctrl.v1 in h.controllers:
                return Dir(path, 1)
            if h.version == 2:
                v2, v2_mount = path, h.mountpoint
        if v2 is not None and enable and ctrl.v2 and self.unified_only():
            _enable_v2_controller(v2_mount, v2, ctrl.v2)
        if v2 is not None and ctrl.v2 is not None:
            if ctrl.v2 == "" or (self.unified_only() and ctrl.v2 in _words(os.path.join(v2, "cgroup.controllers"))):
                return Dir(v2, 2)
        return None

    def apply(self, resources):
        """Write ``linux.resources`` (a spec Resources) into the cgroup."""
        from runpy_oci.cgroups import resources as apply_resources

        apply_resources.apply(self, resources)

    def fork(self):
        """os.fork(), the child born in the container's cgroup on the unified
        hierarchy where the kernel can (clone3's CLONE_INTO_CGROUP, Linux
        5.7): moving a process there afterwards waits for the kernel's
        cgroup_threadgroup_rwsem, an RCU grace period of up to 25 ms.
        Returns (pid, whether the child is in it); the child calls
        ``enter`` next, in any case."""
        path = self._unified_path()
        if path is None:
            return os.fork(), False
        try:
            return self._fork_into(path, 0), True
        except OSError as e:
            if e.errno not in _NO_CLONE_INTO_CGROUP:
                raise OSError(e.errno, f"cannot join cgroup: {e.strerror}", path) from None
            return os.fork(), False

    def fork_into_namespaces(self, ns_flags):
        """``fork``, the child born in the cgroup on the unified hierarchy and
        in new namespaces (CLONE_NEW* ``ns_flags``) too; it calls
        ``enter(unified=False)`` next. None when the kernel will not (no
        unified hierarchy, no CLONE_INTO_CGROUP, a flag refused): nothing
        was forked, and ``fork`` and unshare(2) then tell why."""
        path = self._unified_path()
        if path is None:
            return None
        try:
            return self._fork_into(path, ns_flags)
        except OSError:
            return None

    def _unified_path(self):
        return next((self.paths.get(h.mountpoint) for h in self.hierarchies() if h.version == 2), None)

    @staticmethod
    def _fork_into(path, ns_flags):
        from runpy_oci import kernel

        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            return kernel.get().fork_into_cgroup(fd, ns_flags)
        finally:
            os.close(fd)

    def enter(self, unified=True):
        """Move the calling single-threaded process into the cgroup in every
        v1 hierarchy, and in the unified one if ``unified``. On v1 it writes
        "0" to ``tasks``: the kernel moves the calling thread without the
        rwsem, which it takes for any pid, even one written to ``tasks``.
        (``_write``'s os.open, not open(): this is on ``run``'s critical path,
        and open() triples its cost in a fresh child.)"""
        for h in self.hierarchies():
            path = self.paths.get(h.mountpoint)
            if path is None or (h.version == 2 and not unified):
                continue
            path += "/tasks" if h.version == 1 else "/cgroup.procs"
            try:
                _write(path, "0")
            except OSError as e:
                raise OSError(e.errno, f"cannot join cgroup: {e.strerror}", path) from None

    def pids(self):
        """Every process in the container's cgroup (from the first hierarchy that has it)."""
        for path in self.paths.values():
            try:
                with open(os.path.join(path, "cgroup.procs")) as f:
                    return [int(p) for p in f.read().split()]
            except FileNotFoundError:
                continue
        return []

    def freezer_state_file(self):
        """The file whose contents say whether the container is frozen, if any."""
        for name in ("freezer.state", "cgroup.freeze"):
            for path in self.paths.values():
                if os.path.exists(os.path.join(path, name)):
                    return os.path.join(path, name)
        return None

    def destroy(self, timeout=5.0):
        """Remove the directories, deepest first; a busy one is retried briefly."""
        deadline = time.monotonic() + timeout
        for path in self.paths.values():
            try:
                os.rmdir(path)  # the usual case, an empty leaf: one call
                continue
            except FileNotFoundError:
                continue
            except OSError:
                pass  # child cgroups to remove first, or a process still leaving
            if not os.path.isdir(path):
                continue
            for dirpath, _, _ in os.walk(path, topdown=False):
                while True:
                    try:
                        os.rmdir(dirpath)
                        break
                    except FileNotFoundError:
                        break
                    except OSError as e:
                        if e.errno != errno.EBUSY or time.monotonic() > deadline:
                            raise
                        time.sleep(0.01)
