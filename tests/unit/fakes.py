"""A recording stand-in for runpy_oci.kernel's syscalls: unit tests run the
executor's logic without root and assert on the calls it makes."""


class RecordingSysCalls:
    def __init__(self, fail=None):
        self.calls = []
        self.fail = fail or {}  # call name -> OSError to raise

    def _record(self, name, *args):
        self.calls.append((name,) + args)
        if name in self.fail:
            raise self.fail[name]

    def mount(self, source, target, fstype, flags, data=None):
        self._record("mount", source, target, fstype, flags, data)

    def umount2(self, target, flags=0):
        self._record("umount2", target, flags)

    def pivot_root(self, new_root, put_old):
        self._record("pivot_root", new_root, put_old)

    def setns(self, fd, nstype=0):
        self._record("setns", fd, nstype)

    def unshare(self, flags):
        self._record("unshare", flags)

    def sethostname(self, name):
        self._record("sethostname", name)

    def setdomainname(self, name):
        self._record("setdomainname", name)

    def prctl(self, option, a2=0, a3=0, a4=0, a5=0):
        self._record("prctl", option, a2)
        return 0

    def openat2(self, dirfd, path, flags, mode=0, resolve=0):
        # Confinement itself is the kernel's; the fake uses the real call.
        from runpy_oci.kernel import _SysCalls

        return _SysCalls().openat2(dirfd, path, flags, mode, resolve)

    def mount_setattr(self, *args):
        self._record("mount_setattr", *args)

    def attach_device_filter(self, program, cgroup_fd):
        self._record("attach_device_filter", program, cgroup_fd)

    def fork_into_cgroup(self, cgroup_fd, ns_flags=0):
        self._record("fork_into_cgroup", cgroup_fd, ns_flags)
        return 4242  # a "child" pid: the fake never forks

    def mounts(self):
        return [c for c in self.calls if c[0] == "mount"]
