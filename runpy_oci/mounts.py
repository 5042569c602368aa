"""Mount options and symlink-safe resolution of paths inside a rootfs.

Every target is opened with openat2(RESOLVE_IN_ROOT) relative to the rootfs,
so a symlink planted in the image resolves as if the rootfs were ``/`` and
can never lead out of it; the mount is then made onto ``/proc/self/fd/N`` of
that very file, so nothing can swap the path between check and use.
"""
import os
import stat

from runpy_oci import kernel as k

# option -> (set flags, clear flags)
FLAG_OPTIONS = {
    "ro": (k.MS_RDONLY, 0), "rw": (0, k.MS_RDONLY),
    "nosuid": (k.MS_NOSUID, 0), "suid": (0, k.MS_NOSUID),
    "nodev": (k.MS_NODEV, 0), "dev": (0, k.MS_NODEV),
    "noexec": (k.MS_NOEXEC, 0), "exec": (0, k.MS_NOEXEC),
    "sync": (k.MS_SYNCHRONOUS, 0), "async": (0, k.MS_SYNCHRONOUS),
    "dirsync": (k.MS_DIRSYNC, 0),
    "remount": (k.MS_REMOUNT, 0),
    "mand": (k.MS_MANDLOCK, 0), "nomand": (0, k.MS_MANDLOCK),
    "noatime": (k.MS_NOATIME, 0), "atime": (0, k.MS_NOATIME),
    "nodiratime": (k.MS_NODIRATIME, 0), "diratime": (0, k.MS_NODIRATIME),
    "relatime": (k.MS_RELATIME, 0), "norelatime": (0, k.MS_RELATIME),
    "strictatime": (k.MS_STRICTATIME, 0), "nostrictatime": (0, k.MS_STRICTATIME),
    "lazytime": (k.MS_LAZYTIME, 0), "nolazytime": (0, k.MS_LAZYTIME),
    "nosymfollow": (k.MS_NOSYMFOLLOW, 0), "symfollow": (0, k.MS_NOSYMFOLLOW),
    "silent": (k.MS_SILENT, 0), "loud": (0, k.MS_SILENT),
    "bind": (k.MS_BIND, 0), "rbind": (k.MS_BIND | k.MS_REC, 0),
}

PROPAGATION_OPTIONS = {
    "private": k.MS_PRIVATE, "rprivate": k.MS_PRIVATE | k.MS_REC,
    "shared": k.MS_SHARED, "rshared": k.MS_SHARED | k.MS_REC,
    "slave": k.MS_SLAVE, "rslave": k.MS_SLAVE | k.MS_REC,
    "unbindable": k.MS_UNBINDABLE, "runbindable": k.MS_UNBINDABLE | k.MS_REC,
}

# Options runc understands that are not passed to the kernel.
IGNORED_OPTIONS = ("idmap", "ridmap", "rro", "rrw", "recursive")
COPY_UP = "tmpcopyup"  # a tmpfs starts with a copy of the directory it covers (runc's extension)

# statvfs f_flag bits -> MS_* flags that a bind remount must keep.
_STATVFS_KEEP = (
    (os.ST_NOSUID, k.MS_NOSUID), (os.ST_NODEV, k.MS_NODEV), (os.ST_NOEXEC, k.MS_NOEXEC),
    (os.ST_NOATIME, k.MS_NOATIME), (os.ST_NODIRATIME, k.MS_NODIRATIME),
    (os.ST_RELATIME, k.MS_RELATIME),
)


class MountOptions:
    """A mount's option strings split into flags, propagation and fs data."""

    __slots__ = ("flags", "clear", "propagation", "data", "copy_up")

    def __init__(self, options):
        self.flags = 0
        self.clear = 0
        self.propagation = []
        self.copy_up = COPY_UP in options
        data = []
        for opt in options:
            if opt in FLAG_OPTIONS:
                s, c = FLAG_OPTIONS[opt]
                self.flags = (self.flags | s) & ~c
                self.clear |= c
            elif opt in PROPAGATION_OPTIONS:
                self.propagation.append(PROPAGATION_OPTIONS[opt])
            elif opt not in IGNORED_OPTIONS and opt != COPY_UP:
                data.append(opt)
        self.data = ",".join(data)

    @property
    def is_bind(self):
        return bool(self.flags & k.MS_BIND)


def kept_flags(path):
    """The per-mount flags of the mount at path, to repeat in a bind remount."""
    f_flag = os.statvfs(path).f_flag
    return sum(ms for st, ms in _STATVFS_KEEP if f_flag & st)


def fd_path(fd):
    return f"/proc/self/fd/{fd}"


class Root:
    """A rootfs directory with symlink-safe open/create of paths inside it."""

    MAX_LINKS = 40

    def __init__(self, path):
        self.path = path
        self.fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def close(self):
        os.close(self.fd)

    def open(self, inner, flags=os.O_PATH):
        """Open ``inner`` (absolute or relative to the rootfs) resolved inside it."""
        return k.get().openat2(
            self.fd, inner.lstrip("/") or ".", flags | os.O_CLOEXEC, 0,
            k.RESOLVE_IN_ROOT | k.RESOLVE_NO_MAGICLINKS,
        )

    def _open_real(self, parts, flags=os.O_PATH | os.O_NOFOLLOW):
        return k.get().openat2(
            self.fd, "/".join(parts) or ".", flags | os.O_CLOEXEC, 0,
            k.RESOLVE_IN_ROOT | k.RESOLVE_NO_MAGICLINKS,
        )

    def ensure(self, inner, is_dir=True, mode=0o755):
        """Open ``inner``, creating missing parents (and the leaf: a directory or
        an empty file) inside the rootfs; returns an O_PATH fd of it.

        Symlinks are followed by hand and confined: an absolute target restarts
        at the rootfs, ``..`` never climbs above it."""
        todo = [p for p in inner.split("/") if p and p != "."]
        real = []  # components already resolved to real directories
        links = 0
        while todo:
            name = todo.pop(0)
            if name == "..":
                if real:
                    real.pop()
                continue
            try:
                fd = self._open_real(real + [name])
            except FileNotFoundError:
                parent = self._open_real(real, os.O_PATH | os.O_DIRECTORY)
                try:
                    if todo or is_dir:
                        os.mkdir(name, mode, dir_fd=parent)
                    else:
                        flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW
                        os.close(os.open(name, flags, 0o644, dir_fd=parent))
                finally:
                    os.close(parent)
                fd = self._open_real(real + [name])
            if stat.S_ISLNK(os.fstat(fd).st_mode):
                target = os.readlink("", dir_fd=fd)
                os.close(fd)
                links += 1
                if links > self.MAX_LINKS:
                    raise OSError(40, "too many levels of symbolic links", inner)
                if target.startswith("/"):
                    real = []
                todo[:0] = [p for p in target.split("/") if p and p != "."]
                continue
            os.close(fd)
            real.append(name)
        return self._open_real(real)
