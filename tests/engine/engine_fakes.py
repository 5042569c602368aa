"""A Host for engine.oci's unit tests: the machine's facts and files as data."""
from dataclasses import replace

from engine.errors import System
from engine.oci.host import Device, Host

PASSWD = b"root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n" \
         b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = b"root:x:0:\ntty:x:5:user\nuser:x:1000:\naudio:x:29:user,root\nnogroup:x:65534:\n"
NULL = Device("/dev/null", "c", 1, 3, 0o666, 0, 0)
ZERO = Device("/dev/zero", "c", 1, 5, 0o666, 0, 0)
FUSE = Device("/dev/fuse", "c", 10, 229, 0o666, 0, 0)


class FakeHost(Host):
    arch = "amd64"
    kernel = (6, 1)
    ncpu = 2
    online_cpus = "0-1"
    cgroup_version = 1

    def __init__(self, files=None, devices=(NULL, ZERO, FUSE), existing=(), sysctls=True, mounts=None):
        self.files = {"/etc/passwd": PASSWD, "/etc/group": GROUP} if files is None else files
        self.devices = {d.path: d for d in devices}
        self.existing = set(existing)
        self.sysctls = sysctls
        self.mounts = mounts or {"/": "shared:1"}  # mount point -> mountinfo optional fields
        self.reads = []

    def read_rootfs_file(self, rootfs, path):
        self.reads.append((rootfs, path))
        return self.files.get(path)

    def devices_from_path(self, on_host, in_container, permissions):
        if on_host not in self.devices:
            raise System(f'error gathering device information while adding custom device "{on_host}": '
                         "no such file or directory")
        return [replace(self.devices[on_host], path=in_container, permissions=permissions)]

    def all_devices(self):
        return list(self.devices.values())

    def exists(self, path):
        return path in self.existing

    def sysctl_exists(self, name):
        return self.sysctls

    def mount_of(self, path):
        point = max((p for p in self.mounts if path == p or path.startswith(p.rstrip("/") + "/")), key=len)
        return point, self.mounts[point]
