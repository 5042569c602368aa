"""Device nodes in the container's /dev: runc's default set and
``linux.devices``, made inside the rootfs through confined paths."""
import os
import stat

from runpy_oci import kernel as k
from runpy_oci.errors import RuntimeFailure
from runpy_oci.mounts import fd_path

# path, major, minor (all character devices, mode 0666, root-owned)
DEFAULT_DEVICES = (
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
)

DEFAULT_SYMLINKS = (
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
    ("pts/ptmx", "/dev/ptmx"),
)

_TYPE_BITS = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def _bind_host_node(root, path):
    """In a user namespace mknod is refused: bind the host's node instead, as runc does."""
    target = root.ensure(path, is_dir=False)
    try:
        k.get().mount(path, fd_path(target), None, k.MS_BIND)
    finally:
        os.close(target)


def _make_node(root, path, type_bits, major, minor, mode, uid, gid):
    parent = root.ensure(os.path.dirname(path))
    name = os.path.basename(path)
    try:
        try:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        if st is not None:
            if stat.S_ISDIR(st.st_mode):
                raise RuntimeFailure(f"cannot create device {path}: a directory is in the way")
            os.unlink(name, dir_fd=parent)
        os.mknod(name, type_bits | mode, os.makedev(major, minor), dir_fd=parent)
        # mknod honours the umask; the spec's mode is meant literally.
        node = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        try:
            os.chmod(fd_path(node), mode)
            os.chown(fd_path(node), uid, gid)
        finally:
            os.close(node)
    finally:
        os.close(parent)


def create_defaults(root, in_userns=False):
    for path, major, minor in DEFAULT_DEVICES:
        if in_userns:
            _bind_host_node(root, path)
        else:
            _make_node(root, path, stat.S_IFCHR, major, minor, 0o666, 0, 0)
    links = list(DEFAULT_SYMLINKS)
    if os.path.exists("/proc/kcore"):
        links.append(("/proc/kcore", "/dev/core"))
    parent = root.ensure("/dev")
    try:
        for target, link in links:
            try:
                os.symlink(target, os.path.basename(link), dir_fd=parent)
            except FileExistsError:
                pass
    finally:
        os.close(parent)


def create(root, devices, in_userns=False):
    for dev in devices:
        if in_userns:
            _bind_host_node(root, dev.path)
            continue
        mode = 0o666 if dev.file_mode is None else dev.file_mode
        _make_node(
            root, dev.path, _TYPE_BITS[dev.type], dev.major, dev.minor, mode,
            dev.uid or 0, dev.gid or 0,
        )


def bind_null(path):
    """Bind the container's /dev/null over ``path``, refusing a /dev/null that is
    not the real character device (a planted symlink or file)."""
    fd = os.open("/dev/null", os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISCHR(st.st_mode) or st.st_rdev != os.makedev(1, 3):
            raise RuntimeFailure("/dev/null in the container is not the null device; refusing to mask with it")
        k.get().mount(fd_path(fd), path, None, k.MS_BIND)
    finally:
        os.close(fd)
