"""mount(2) for the Mount lists snapshotters return, with mount(8)'s option names.

Calls libc through ctypes: the daemon mounts in its own process, from the
gRPC threads, without forking.
"""
import ctypes
import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from .types import Mount

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_SYNCHRONOUS = 1, 2, 4, 8, 16
MS_REMOUNT, MS_MANDLOCK, MS_DIRSYNC, MS_NOATIME, MS_NODIRATIME = 32, 64, 128, 1024, 2048
MS_BIND, MS_REC = 4096, 16384
MS_PRIVATE, MS_SLAVE, MS_SHARED = 1 << 18, 1 << 19, 1 << 20
MS_RELATIME, MS_STRICTATIME = 1 << 21, 1 << 24
MNT_DETACH = 2

# option -> (clear instead of set, flag)
_FLAGS = {
    "async": (True, MS_SYNCHRONOUS), "atime": (True, MS_NOATIME), "bind": (False, MS_BIND),
    "defaults": (False, 0), "dev": (True, MS_NODEV), "diratime": (True, MS_NODIRATIME),
    "dirsync": (False, MS_DIRSYNC), "exec": (True, MS_NOEXEC), "mand": (False, MS_MANDLOCK),
    "noatime": (False, MS_NOATIME), "nodev": (False, MS_NODEV), "nodiratime": (False, MS_NODIRATIME),
    "noexec": (False, MS_NOEXEC), "nomand": (True, MS_MANDLOCK), "norelatime": (True, MS_RELATIME),
    "nostrictatime": (True, MS_STRICTATIME), "nosuid": (False, MS_NOSUID), "rbind": (False, MS_BIND | MS_REC),
    "relatime": (False, MS_RELATIME), "remount": (False, MS_REMOUNT), "ro": (False, MS_RDONLY),
    "rw": (True, MS_RDONLY), "strictatime": (False, MS_STRICTATIME), "suid": (True, MS_NOSUID),
    "sync": (False, MS_SYNCHRONOUS),
}
_PROPAGATION = {
    "private": MS_PRIVATE, "rprivate": MS_PRIVATE | MS_REC, "shared": MS_SHARED, "rshared": MS_SHARED | MS_REC,
    "slave": MS_SLAVE, "rslave": MS_SLAVE | MS_REC,
}

_libc = ctypes.CDLL(None, use_errno=True)  # the C library the interpreter runs on (find_library would run ldconfig)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def parse_options(options: list[str]) -> tuple[int, int, str]:
    """Splits options into (flags, propagation flags, filesystem data)."""
    flags, propagation, data = 0, 0, []
    for option in options:
        if option in _FLAGS:
            clear, flag = _FLAGS[option]
            flags = flags & ~flag if clear else flags | flag
        elif option in _PROPAGATION:
            propagation |= _PROPAGATION[option]
        else:
            data.append(option)
    return flags, propagation, ",".join(data)


def mount(m: Mount, target: str) -> None:
    flags, propagation, data = parse_options(m.options)
    fstype = None if flags & MS_BIND else m.type.encode()
    _check(_libc.mount(m.source.encode(), target.encode(), fstype, flags & ~MS_RDONLY if flags & MS_BIND else flags,
                       data.encode() or None), f"mount {m.type} {m.source} on {target}")
    try:
        if flags & MS_BIND and flags & MS_RDONLY:
            # A bind mount takes MS_RDONLY only on a remount.
            _check(_libc.mount(b"", target.encode(), None, MS_REMOUNT | MS_BIND | MS_RDONLY | (flags & ~MS_REC), None),
                   f"remount {target} read-only")
        if propagation:
            _check(_libc.mount(b"", target.encode(), None, propagation, None), f"set propagation of {target}")
    except OSError:
        unmount(target)
        raise


def unmount(target: str) -> None:
    """Unmounts; lazily when busy, so nothing is left mounted behind us."""
    if _libc.umount2(target.encode(), 0) != 0:
        err = ctypes.get_errno()
        if err == errno.EBUSY:
            _check(_libc.umount2(target.encode(), MNT_DETACH), f"unmount {target}")
        elif err != errno.EINVAL:  # EINVAL: not a mount point (any more)
            raise OSError(err, f"unmount {target}: {os.strerror(err)}")


def mount_all(mounts: list[Mount], target: str) -> None:
    done = []
    try:
        for m in mounts:
            path = os.path.join(target, m.target.lstrip("/")) if m.target else target
            mount(m, path)
            done.append(path)
    except BaseException:
        for path in reversed(done):
            unmount(path)
        raise


def readonly(mounts: list[Mount]) -> list[Mount]:
    """The same tree, read-only, as containerd's readonly temp mounts make it:
    an overlay's upper directory becomes its top lower one (so the set can be
    mounted while a container has it mounted read-write), a bind gets "ro"."""
    out = []
    for m in mounts:
        options = [o for o in m.options if o not in ("rw", "ro")]
        if m.type == "overlay":
            named = dict(o.split("=", 1) for o in options if "=" in o)
            if "upperdir" in named:
                lowers = ":".join(filter(None, (named["upperdir"], named.get("lowerdir", ""))))
                options = [o for o in options if o.split("=", 1)[0] not in ("upperdir", "workdir", "lowerdir")]
                options.append("lowerdir=" + lowers)
        out.append(Mount(m.type, m.source, options + ["ro"], m.target))
    return out


@contextmanager
def temp_mount(mounts: list[Mount], parent: str) -> Iterator[str]:
    """Mounts the set on a fresh directory under `parent`; undone on exit."""
    os.makedirs(parent, exist_ok=True)
    target = tempfile.mkdtemp(prefix="mount-", dir=parent)
    try:
        mount_all(mounts, target)
        try:
            yield target
        finally:
            for m in reversed(mounts):
                unmount(os.path.join(target, m.target.lstrip("/")) if m.target else target)
    finally:
        os.rmdir(target)
