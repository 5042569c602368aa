"""The files dockerd puts in a container's init layer (moby's
daemon/initlayer): mount points the runtime binds over, and /.dockerenv,
which programs look for to learn that they run in a container.

They go in a layer of their own between the image and the container's
writable layer, so `docker commit` and `docker diff` never see them.
"""
import os

from engine.oci.host import scoped_path

# path -> "dir", "file", or the target of a symlink
INIT_PATHS = {
    "/dev/pts": "dir", "/dev/shm": "dir", "/proc": "dir", "/sys": "dir", "/.dockerenv": "file",
    "/etc/resolv.conf": "file", "/etc/hosts": "file", "/etc/hostname": "file", "/dev/console": "file",
    "/etc/mtab": "/proc/mounts",
}


def set_up(root: str) -> None:
    """Makes in ``root`` (the mounted init layer) what the image lacks; what
    it has, whatever its kind, is left (as moby: an image's own
    /etc/resolv.conf link stays). Parents are resolved inside ``root``."""
    for path, kind in INIT_PATHS.items():
        parent = scoped_path(root, os.path.dirname(path))
        target = os.path.join(parent, os.path.basename(path))
        if os.path.lexists(target):
            continue
        os.makedirs(parent, 0o755, exist_ok=True)
        if kind == "dir":
            os.mkdir(target, 0o755)
        elif kind == "file":
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW, 0o755))
        else:
            os.symlink(kind, target)
