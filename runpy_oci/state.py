"""A container's persistent state under ``--root``: ``<root>/<id>/state.json``
(written by temp + rename, so readers never see half a file), the exec fifo
that holds a created container's init until ``start``, and a per-container
flock that serializes commands on one ID.

Status is derived, never stored: no pid yet -> creating; init gone, a zombie,
or a different process under that pid -> stopped; exec fifo present ->
created; freezer frozen -> paused; else running.
"""
import fcntl
import os
import time

from runpy_oci import fastjson
from runpy_oci.errors import ContainerExists, ContainerNotFound, RuntimeFailure

OCI_VERSION = "1.2.0"
STATE_FILE = "state.json"
EXEC_FIFO = "exec.fifo"
# ``delete --force`` leaves this in the container's directory before it waits
# for the container's lock: a ``create`` still at work sees it and gives up.
DELETE_REQUESTED = "delete-requested"


# runc's ``^[\w+-\.]+$``: in Go's syntax ``+-\.`` is the range from "+" to ".",
# which lets "," through as well
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+,-.")


def validate_id(container_id):
    """runc's rule, so an ID one runtime takes the other takes too; it also
    keeps the ID a plain directory name under --root."""
    if not container_id or container_id in (".", "..") or not _ID_CHARS.issuperset(container_id):
        raise RuntimeFailure("invalid container ID format")
    if len(container_id) > 1024:
        raise RuntimeFailure("invalid container id: longer than 1024 characters")


def ensure_root(root):
    """Make --root (private to its owner, as runc's) if it is missing, as
    runc does for every command: a user who may not is told so, not that a
    container does not exist."""
    try:
        os.makedirs(root, mode=0o700, exist_ok=True)
    except PermissionError:
        raise RuntimeFailure(f"mkdir {root}: permission denied") from None


def container_ids(root):
    """The IDs under --root, for ``list`` (not what else is kept there, named as no ID is)."""
    try:
        return sorted(name for name in os.listdir(root) if _ID_CHARS.issuperset(name))
    except FileNotFoundError:
        ensure_root(root)
        return []
    except PermissionError:
        raise RuntimeFailure(f"open {root}: permission denied") from None


def rfc3339_nano(ns):
    """Go's time.RFC3339Nano in UTC, as runc prints ``created``."""
    secs, frac = divmod(ns, 1_000_000_000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    if frac:
        stamp += "." + f"{frac:09d}".rstrip("0")
    return stamp + "Z"


def proc_stat(pid):
    """(state letter, start time in ticks) of a pid, or None if it is gone."""
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, ProcessLookupError):
        return None
    try:
        raw = os.read(fd, 4096)
    except ProcessLookupError:
        return None
    finally:
        os.close(fd)
    fields = raw[raw.rindex(b")") + 2:].split()
    return fields[0].decode(), int(fields[19])


class Container:
    """One state directory, opened and locked for the duration of a command."""

    def __init__(self, root, container_id, dirfd, data):
        self.root = root
        self.id = container_id
        self.dir = os.path.join(root, container_id)
        self._dirfd = dirfd
        self.data = data

    # -- opening ----------------------------------------------------------
    @classmethod
    def new(cls, root, container_id):
        """Reserve the ID (atomic mkdir) and lock it; ContainerExists if taken."""
        validate_id(container_id)
        ensure_root(root)
        path = os.path.join(root, container_id)
        try:
            os.mkdir(path, 0o711)
        except FileExistsError:
            raise ContainerExists() from None
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return cls(root, container_id, fd, {})

    @classmethod
    def load(cls, root, container_id, lock=True):
        """Open an existing container; ContainerNotFound if there is none.

        With ``lock`` the command holds the container's flock until close().
        """
        validate_id(container_id)
        path = os.path.join(root, container_id)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            ensure_root(root)
            raise ContainerNotFound(container_id) from None
        except PermissionError:
            raise RuntimeFailure(f"open {path}: permission denied") from None
        if lock:
            fcntl.flock(fd, fcntl.LOCK_EX)
        state_path = os.path.join(path, STATE_FILE)
        try:
            with open(state_path, "rb") as f:
                data = fastjson.loads(f.read().decode())
        except FileNotFoundError:
            # The directory was removed by a delete we waited on, or a create
            # has only just reserved the ID.
            os.close(fd)
            raise ContainerNotFound(container_id) from None
        except PermissionError:
            os.close(fd)
            raise RuntimeFailure(f"open {state_path}: permission denied") from None
        return cls(root, container_id, fd, data)

    def close(self):
        if self._dirfd is not None:
            os.close(self._dirfd)
            self._dirfd = None

    # -- writing ----------------------------------------------------------
    def save(self):
        """os.open/os.write: a text-mode open() costs more than the write.
        Readable by the owner only, as runc's: it holds the hooks' env."""
        tmp = os.path.join(self.dir, STATE_FILE + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, fastjson.dumps(self.data).encode())
        finally:
            os.close(fd)
        os.rename(tmp, os.path.join(self.dir, STATE_FILE))

    def remove(self):
        """Delete the state directory and the rootfs bind of a container
        without a mount namespace (the caller has stopped everything)."""
        if self.data.get("rootfs_bind") is not None:
            from runpy_oci import rootfs

            rootfs.release_bind(self.data["rootfs"], self.data["rootfs_bind"])
        for name in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, name))
        os.rmdir(self.dir)

    @property
    def fifo_path(self):
        return os.path.join(self.dir, EXEC_FIFO)

    # -- reading ----------------------------------------------------------
    @property
    def pid(self):
        return self.data.get("pid", 0)

    def deletion_requested(self):
        """True once a ``delete --force`` has asked for the container (see DELETE_REQUESTED)."""
        return os.path.exists(os.path.join(self.dir, DELETE_REQUESTED))

    def init_alive(self):
        """True while the recorded init process (same pid, same start time) lives."""
        if not self.pid:
            return False
        st = proc_stat(self.pid)
        return st is not None and st[1] == self.data.get("pid_start") and st[0] not in "ZX"

    def status(self):
        if not self.pid:
            return "creating"
        if not self.init_alive():
            return "stopped"
        if os.path.exists(self.fifo_path):
            return "created"
        freezer = self.data.get("freezer_state")
        if freezer:
            try:
                with open(freezer) as f:
                    if f.read().strip() in ("FROZEN", "1"):
                        return "paused"
            except OSError:
                pass
        return "running"

    def oci_state(self):
        """The runtime-spec state object, with runc's extra fields."""
        status = self.status()
        state = {
            "ociVersion": OCI_VERSION,
            "id": self.id,
            "pid": self.pid if status != "stopped" else 0,
            "status": status,
            "bundle": self.data.get("bundle", ""),
            "rootfs": self.data.get("rootfs", ""),
            "created": self.data.get("created", ""),
        }
        if self.data.get("annotations"):
            state["annotations"] = self.data["annotations"]
        state["owner"] = ""
        return state
