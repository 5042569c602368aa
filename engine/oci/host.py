"""What the spec generator asks of the machine, behind one small interface.

The generator is pure; everything it needs to know about the host (device
nodes, the CPUs, whether a bind source or a sysctl exists, the image's
/etc/passwd) comes through a ``Host``. ``LocalHost`` answers from this
machine; unit tests pass a fake.
"""
import errno
import os
import stat
from dataclasses import dataclass

from engine.errors import System

# Go's GOARCH names, which the seccomp profile's "arches" use, by uname -m.
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "ppc64le": "ppc64le",
           "s390x": "s390x", "riscv64": "riscv64", "mips64": "mips64"}
_SKIPPED_DEV_DIRS = {"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"}


@dataclass(frozen=True)
class Device:
    """A device node as the spec lists it (linux.devices) and allows it
    (linux.resources.devices with ``permissions``)."""
    path: str
    type: str
    major: int
    minor: int
    file_mode: int
    uid: int
    gid: int
    permissions: str = "rwm"


class Host:
    """The interface; LocalHost is the real one."""
    arch = "amd64"
    kernel = (0, 0)
    ncpu = 1
    online_cpus = "0"
    cgroup_version = 1

    def read_rootfs_file(self, rootfs: str, path: str) -> bytes | None:
        raise NotImplementedError

    def devices_from_path(self, on_host: str, in_container: str, permissions: str) -> list[Device]:
        raise NotImplementedError

    def all_devices(self) -> list[Device]:
        raise NotImplementedError

    def exists(self, path: str) -> bool:
        raise NotImplementedError

    def sysctl_exists(self, name: str) -> bool:
        raise NotImplementedError

    def mount_of(self, path: str) -> tuple[str, str]:
        """The mount point ``path`` lies on and its mountinfo optional fields
        ("shared:N", "master:N"...), which say its propagation."""
        raise NotImplementedError


def _kernel_version(release):
    numbers = []
    for part in release.split("-")[0].split(".")[:2]:
        digits = "".join(c for c in part if c.isdigit())
        numbers.append(int(digits or 0))
    return tuple(numbers + [0] * (2 - len(numbers)))


def _device(path, permissions):
    """The node at ``path`` (not following a symlink), or None if it is no device."""
    st = os.lstat(path)
    if stat.S_ISBLK(st.st_mode):
        kind = "b"
    elif stat.S_ISCHR(st.st_mode):
        kind = "c"
    else:
        return None
    return Device(path, kind, os.major(st.st_rdev), os.minor(st.st_rdev), stat.S_IMODE(st.st_mode),
                  st.st_uid, st.st_gid, permissions)


class LocalHost(Host):
    def __init__(self):
        uname = os.uname()
        self.arch = _GOARCH.get(uname.machine, uname.machine)
        self.kernel = _kernel_version(uname.release)
        self.ncpu = os.cpu_count() or 1
        try:
            with open("/sys/devices/system/cpu/online") as f:
                self.online_cpus = f.read().strip()
        except OSError:
            self.online_cpus = f"0-{self.ncpu - 1}"
        self.cgroup_version = 2 if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else 1

    def read_rootfs_file(self, rootfs, path):
        """The file at ``path`` inside ``rootfs``, symlinks resolved as if
        rootfs were / (an image's /etc/passwd may be a link). Only a regular
        file is read: a FIFO or a device there (a running container's
        /proc/PID/root has /dev/zero) would hold the engine, so it counts as missing."""
        try:
            fd = os.open(scoped_path(rootfs, path), os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as err:
            if err.errno == errno.ELOOP:  # a link put there after the path was resolved
                return None
            raise
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            return None
        with open(fd, "rb") as f:
            return f.read()

    def devices_from_path(self, on_host, in_container, permissions):
        """dockerd's DevicesFromPath: the node (a symlink followed once), or
        every node under a directory, renamed under ``in_container``."""
        resolved = os.path.realpath(on_host) if os.path.islink(on_host) else on_host
        try:
            node = _device(resolved, permissions)
        except OSError as err:
            raise System(f"error gathering device information while adding custom device "
                         f"{_go_quote(on_host)}: {os.strerror(err.errno)}") from None
        if node is not None:
            return [_renamed(node, in_container)]
        found = []
        if os.path.isdir(resolved):
            for top, dirs, files in os.walk(resolved):
                dirs.sort()
                for name in sorted(dirs + files):
                    full = os.path.join(top, name)
                    try:
                        child = _device(full, permissions)
                    except OSError:
                        continue
                    if child is not None:
                        found.append(_renamed(child, full.replace(resolved, in_container, 1)))
        if not found:
            raise System(f"error gathering device information while adding custom device "
                         f"{_go_quote(on_host)}: not a device node")
        return found

    def all_devices(self):
        """runc's HostDevices: every node under /dev but pts, shm, mqueue... and console."""
        return _walk_devices("/dev")

    def exists(self, path):
        return os.path.lexists(path)

    def sysctl_exists(self, name):
        return os.path.exists(os.path.join("/proc/sys", name.replace(".", "/")))

    def mount_of(self, path):
        """A source that does not exist yet (a bind source made at start) lies
        on its nearest existing parent's mount."""
        path = os.path.realpath(path)
        best, optional = "/", ""
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                point = fields[4].replace("\\040", " ")
                if (path == point or path.startswith(point.rstrip("/") + "/")) and len(point) >= len(best):
                    best, optional = point, " ".join(fields[6:fields.index("-")])
        return best, optional


def _walk_devices(directory):
    found = []
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if os.path.isdir(path) and not os.path.islink(path):
            if name not in _SKIPPED_DEV_DIRS:
                found += _walk_devices(path)
            continue
        if name == "console":
            continue
        try:
            node = _device(path, "rwm")
        except FileNotFoundError:
            continue
        if node is not None:
            found.append(node)
    return found


def _renamed(device, path):
    return Device(path, device.type, device.major, device.minor, device.file_mode, device.uid, device.gid,
                  device.permissions)


def _go_quote(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def scoped_path(root, path, _depth=0):
    """``path`` resolved inside ``root``: absolute links restart at root and
    .. never climbs above it (what dockerd's GetResourcePath does)."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    current = ""
    while parts:
        part = parts.pop(0)
        if part == "..":
            current = os.path.dirname(current)
            continue
        candidate = f"{current}/{part}"
        full = root + candidate
        if os.path.islink(full):
            if _depth > 40:
                raise FileNotFoundError(path)
            target = os.readlink(full)
            rest = "/".join(parts)
            base = "" if target.startswith("/") else current
            return scoped_path(root, f"{base}/{target}/{rest}", _depth + 1)
        current = candidate
    return root + (current or "/")
