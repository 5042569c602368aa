"""The one door to raw kernel calls the standard library lacks.

Everything that mounts, pivots, joins or creates namespaces goes through the
module-level ``sys_calls`` object, so unit tests can swap in a recording fake
(``use(fake)``) and run the executor's logic without root.
"""
import os

# clone/unshare/setns flags
CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# mount(2) flags
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOSYMFOLLOW = 0x100
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_SILENT = 0x8000
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

MNT_DETACH = 2

# prctl(2)
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_NAME = 15
PR_SET_KEEPCAPS = 8
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4
PR_SET_CHILD_SUBREAPER = 36

# setrlimit(2) resources, by the names process.rlimits uses (asm-generic/resource.h)
RLIMITS = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4, "RLIMIT_RSS": 5,
    "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9, "RLIMIT_LOCKS": 10,
    "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13, "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}

# openat2(2) resolve flags
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

# mount_setattr(2)
AT_RECURSIVE = 0x8000
AT_EMPTY_PATH = 0x1000
MOUNT_ATTR_RDONLY = 0x1
OPEN_TREE_CLONE = 0x1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8


class _SysCalls:
    """Thin OSError-raising wrappers over the C extension."""

    def __init__(self):
        from runpy_oci._sys import ffi, lib

        self._lib = lib
        self._ffi = ffi
        self._null = ffi.NULL

    @staticmethod
    def _check(ret, *names):
        if ret < 0:
            raise OSError(-ret, os.strerror(-ret), *names[:2])
        return ret

    def mount(self, source, target, fstype, flags, data=None):
        enc = os.fsencode
        self._check(
            self._lib.rp_mount(
                enc(source) if source else b"none",
                enc(target),
                fstype.encode() if fstype else self._null,
                flags,
                data.encode() if data else self._null,
            ),
            target,
        )

    def umount2(self, target, flags=0):
        self._check(self._lib.rp_umount2(os.fsencode(target), flags), target)

    def pivot_root(self, new_root, put_old):
        self._check(self._lib.rp_pivot_root(os.fsencode(new_root), os.fsencode(put_old)), new_root)

    def setns(self, fd, nstype=0):
        self._check(self._lib.rp_setns(fd, nstype))

    def unshare(self, flags):
        self._check(self._lib.rp_unshare(flags))

    def sethostname(self, name):
        raw = name.encode()
        self._check(self._lib.rp_sethostname(raw, len(raw)))

    def setdomainname(self, name):
        raw = name.encode()
        self._check(self._lib.rp_setdomainname(raw, len(raw)))

    def setrlimit(self, name, soft, hard):
        """setrlimit(2) by the limit's name (RLIMIT_NOFILE, ...), values as the
        runtime-spec gives them (2**64-1 is unlimited). The `resource` module
        would do as well, but it is one more shared library for every run to
        load, and its names must then agree with the table above."""
        self._check(self._lib.rp_setrlimit(RLIMITS[name], soft, hard))

    def prctl(self, option, a2=0, a3=0, a4=0, a5=0):
        return self._check(self._lib.rp_prctl(option, a2, a3, a4, a5))

    def capset(self, effective, permitted, inheritable):
        self._check(self._lib.rp_capset(effective, permitted, inheritable))

    def openat2(self, dirfd, path, flags, mode=0, resolve=0):
        return self._check(self._lib.rp_openat2(dirfd, os.fsencode(path), flags, mode, resolve), path)

    def open_tree(self, dirfd, path, flags):
        return self._check(self._lib.rp_open_tree(dirfd, os.fsencode(path), flags), path)

    def mount_setattr(self, dirfd, path, flags, attr_set=0, attr_clr=0, propagation=0):
        self._check(
            self._lib.rp_mount_setattr(dirfd, os.fsencode(path), flags, attr_set, attr_clr, propagation),
            path,
        )

    def attach_device_filter(self, program, cgroup_fd):
        """Load ``program`` (BPF instructions) as a cgroup device program and
        attach it to the cgroup2 directory ``cgroup_fd``; a refusal by the
        verifier raises OSError carrying its log."""
        ffi = self._ffi
        insns = ffi.from_buffer(program)
        fd = self._lib.rp_bpf_load_device_filter(insns, len(program) // 8, ffi.NULL, 0)
        if fd < 0:
            log = ffi.new("char[]", 1 << 16)
            self._lib.rp_bpf_load_device_filter(insns, len(program) // 8, log, 1 << 16)
            raise OSError(-fd, f"{os.strerror(-fd)}: {ffi.string(log).decode(errors='replace').strip()}")
        try:
            self._check(self._lib.rp_bpf_attach_device_filter(fd, cgroup_fd))
        finally:
            os.close(fd)

    def seccomp_set_filter(self, program, flags):
        """Loads ``program`` (classic BPF, 8-byte instructions) as this thread's seccomp filter."""
        self._check(self._lib.rp_seccomp_set_filter(self._ffi.from_buffer(program), len(program) // 8, flags))

    def fork_into_cgroup(self, cgroup_fd, ns_flags=0):
        """os.fork(), the child born in the cgroup2 directory ``cgroup_fd``
        (clone3 with CLONE_INTO_CGROUP) and in new namespaces ``ns_flags``
        (CLONE_NEW* flags). Only for a single-threaded caller."""
        return self._check(self._lib.rp_fork_into_cgroup(cgroup_fd, ns_flags))


sys_calls = None


def get():
    """The active syscall implementation (the real one unless a test swapped it)."""
    global sys_calls
    if sys_calls is None:
        sys_calls = _SysCalls()
    return sys_calls


def use(fake):
    """Install a fake (tests); returns the previous implementation."""
    global sys_calls
    previous, sys_calls = sys_calls, fake
    return previous
