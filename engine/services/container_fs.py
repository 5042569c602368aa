"""A container's files: ``docker diff`` (its changes against its image),
``docker export`` (its whole tree as a tar) and ``docker cp`` (the archive
API: a path's stat, a path as a tar, a tar extracted into a directory).

A stopped container's snapshot is mounted for the call; a running one is
reached through its init's root (/proc/<pid>/root), so ``cp`` sees and
changes what its processes see, /etc/hosts and bind mounts included. Paths
are resolved inside the container's root as dockerd resolves them: symlinks
followed within it, the last element left as it is.
"""
import base64
import contextlib
import io
import json
import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from containerd_py import errors as cerrors
from containerd_py.diff.changes import changes
from containerd_py.diff.compression import decompress
from containerd_py.diff.layer import apply_layer
from containerd_py.diff.tarstream import tar_stream, walk
from containerd_py.mount import mount, unmount
from containerd_py.types import Mount

from engine.containerd.archive import Readable
from engine.containerd.layers import ContainerdLayers
from engine.errors import InvalidParameter, NotFound, System
from engine.oci.host import LocalHost, scoped_path
from engine.oci.users import resolve_user
from engine.services.container_volumes import ContainerVolumes
from engine.services.containers import Publish
from engine.store import Container, ContainerStore, go_time

PATH_STAT_HEADER = "X-Docker-Container-Path-Stat"
# what dockerd's init layer holds (and the mounts over it hide): not the container's changes
INIT_LAYER_PATHS = frozenset({"/dev", "/proc", "/sys", "/.dockerenv", "/etc/resolv.conf", "/etc/hosts",
                              "/etc/hostname", "/etc/mtab"})
_KERNEL_FILESYSTEMS = frozenset({"/proc", "/sys", "/dev"})  # a running container's, not entered by a copy of /
# Go's os.FileMode type bits
_GO_MODE = {stat.S_IFDIR: 1 << 31, stat.S_IFLNK: 1 << 27, stat.S_IFBLK: 1 << 26, stat.S_IFIFO: 1 << 25,
            stat.S_IFSOCK: 1 << 24, stat.S_IFCHR: (1 << 26) | (1 << 21)}
_GO_SETUID, _GO_SETGID, _GO_STICKY = 1 << 23, 1 << 22, 1 << 20


def go_file_mode(mode: int) -> int:
    """A stat mode as Go's os.FileMode numbers it (the type and special bits moved up)."""
    go = stat.S_IMODE(mode) & 0o777 | _GO_MODE.get(stat.S_IFMT(mode), 0)
    for bit, go_bit in ((stat.S_ISUID, _GO_SETUID), (stat.S_ISGID, _GO_SETGID), (stat.S_ISVTX, _GO_STICKY)):
        if mode & bit:
            go |= go_bit
    return go


def absolute_path(path: str) -> str:
    """dockerd's PreserveTrailingDotOrSeparator(Join("/", path), path): the
    path made absolute and clean, keeping a trailing "/." or "/"."""
    cleaned = posixpath.normpath("/" + path.lstrip("/"))  # normpath keeps a leading "//"
    if path.endswith("/.") or path == ".":
        return cleaned.rstrip("/") + "/."
    if path.endswith("/") and not cleaned.endswith("/"):
        return cleaned + "/"
    return cleaned


class ContainerFiles:
    def __init__(self, store: ContainerStore, layers: ContainerdLayers, publish: Publish = lambda *event: None,
                 volumes: ContainerVolumes | None = None):
        """``publish(record, action)`` reports dockerd's events: export, archive-path, extract-to-dir;
        ``volumes`` mounts a copy's volumes (and logs their events) around it."""
        self.store, self.layers, self.publish = store, layers, publish
        self.volumes = volumes or ContainerVolumes()
        self.host = LocalHost()  # reads the container's /etc/passwd for cp -a

    @contextmanager
    def _root(self, record: Container) -> Iterator[str]:
        """The container's tree as its processes see it when it runs; its
        snapshot mounted otherwise, with its binds and volumes over it, their
        mount points made where missing (as dockerd mounts a stopped
        container's volumes for a copy)."""
        pid = record.state.pid if record.state.running else 0
        if pid:
            yield f"/proc/{pid}/root"
            return
        with self.layers.mounted(record.id, writable=True) as root, _binds_mounted(record, root):
            yield root

    # -- diff and export -----------------------------------------------------------------

    def changes(self, ref: str) -> list[dict] | None:
        """``GET /containers/<id>/changes``: Kind 0 modified, 1 added, 2 deleted (null for none, as dockerd)."""
        record = self.store.get(ref)
        try:
            with self.layers.with_parent(record.id) as (root, parent):
                found = changes(root, parent, INIT_LAYER_PATHS)
        except OSError as err:
            raise System(f"comparing container {record.id} with its image: {err}") from None
        return [{"Path": c.path, "Kind": c.kind} for c in found] or None

    def export(self, ref: str) -> Iterator[bytes]:
        """``GET /containers/<id>/export``: the container's tree as a tar,
        streamed; the snapshot stays mounted until the stream ends or is closed."""
        record = self.store.get(ref)
        self.publish(record, "export")
        return self._export(record)

    def _export(self, record: Container) -> Iterator[bytes]:
        try:
            with self.layers.mounted(record.id) as root:
                yield from tar_stream((entry for entry in walk(root, "") if entry[1]), type_bits=True)
        except OSError as err:
            raise System(f"exporting container {record.id}: {err}") from None

    # -- the archive API (docker cp) -----------------------------------------------------------

    def _locate(self, root: str, running: bool, ref: str, path: str) -> tuple[str, str]:
        """(the host path of ``path`` in the container, its absolute form): the
        directory resolved inside the root, the last element as it is. Below
        /proc and /sys of a running container there is nothing, as in dockerd's
        view of it; 404 in dockerd's words for what is not there."""
        if not path:
            raise InvalidParameter("Path cannot be empty")
        absolute = absolute_path(path)
        directory, base = posixpath.split(absolute)
        located = scoped_path(root, directory).rstrip("/") + "/" + base
        inside = posixpath.normpath(located[len(root):])
        if running and inside.startswith(tuple(kernel + "/" for kernel in _KERNEL_FILESYSTEMS - {"/dev"})) \
                or not os.path.lexists(located):
            raise NotFound(f"Could not find the file {path} in container {ref}")
        return located, absolute

    def _stat(self, root: str, running: bool, ref: str, path: str) -> tuple[dict, str, str]:
        located, absolute = self._locate(root, running, ref, path)
        st = os.lstat(located)
        link_target = ""
        if stat.S_ISLNK(st.st_mode):
            inside = os.path.relpath(scoped_path(root, absolute), root)
            link_target = "/" if inside == "." else "/" + inside
        described = {"name": _archive_name(absolute), "size": st.st_size, "mode": go_file_mode(st.st_mode),
                     "mtime": go_time(st.st_mtime_ns), "linkTarget": link_target}
        return described, located, absolute

    def stat_path(self, ref: str, path: str) -> dict:
        """``HEAD /containers/<id>/archive``: the path's stat, as the header carries it."""
        record = self.store.get(ref)
        with self.volumes.copying(record), self._root(record) as root:
            return self._stat(root, record.state.running, ref, path)[0]

    def archive(self, ref: str, path: str) -> tuple[dict, Iterator[bytes]]:
        """``GET /containers/<id>/archive``: the stat, and the path (with all
        below it) as a tar whose entries start with the path's own name, as
        dockerd names them ("dir/a", "./a" for "dir/.", "/a" for "/"). The
        volumes stay in use until the stream ends."""
        record = self.store.get(ref)
        with contextlib.ExitStack() as stack:
            stack.enter_context(self.volumes.copying(record))
            with self._root(record) as root:  # errors before any byte is sent
                described = self._stat(root, record.state.running, ref, path)[0]
            using = stack.pop_all()  # the volumes handed to the stream, released when it ends
        self.publish(record, "archive-path")
        return described, self._archive(record, ref, path, using)

    def _archive(self, record: Container, ref: str, path: str, using: contextlib.ExitStack) -> Iterator[bytes]:
        try:
            with using, self._root(record) as root:
                running = record.state.running
                _, located, absolute = self._stat(root, running, ref, path)
                source = located.removesuffix("/.")
                skip = _KERNEL_FILESYSTEMS if running and source.rstrip("/") == root else frozenset()
                yield from tar_stream(walk(source, _archive_name(absolute), skip), type_bits=True)
        except OSError as err:
            raise System(f"copying {path} from container {record.id}: {err}") from None

    def extract(self, ref: str, path: str, content, no_overwrite_dir_non_dir: bool = False,
                copy_uid_gid: bool = False) -> None:
        """``PUT /containers/<id>/archive``: the tar extracted into the
        directory ``path`` names (symlinks followed), paths kept inside it.
        With ``no_overwrite_dir_non_dir`` (the CLI always asks for it) nothing
        is extracted when an entry would put a file where a directory is or
        the other way round; with ``copy_uid_gid`` (``cp -a``) what is
        extracted belongs to the container's user, when it has one.
        ``content`` is anything with ``read(n)`` (a request's body)."""
        record = self.store.get(ref)
        if not path:
            raise InvalidParameter("Path cannot be empty")
        user = (record.config.get("User") or "") if copy_uid_gid else ""
        with self.volumes.copying(record), self._root(record) as root, tempfile.TemporaryFile() as spooled:
            target = scoped_path(root, absolute_path(path))
            try:
                is_dir = stat.S_ISDIR(os.lstat(target).st_mode)
            except (FileNotFoundError, NotADirectoryError):
                raise NotFound(f"Could not find the file {path} in container {ref}") from None
            if not is_dir:
                raise InvalidParameter("extraction point is not a directory")
            if not _in_writable_volume(record, absolute_path(path)) and record.host_config.get("ReadonlyRootfs"):
                raise InvalidParameter("container rootfs is marked read-only")
            content = io.BufferedReader(Readable(content.read))
            try:
                extracted = []
                if no_overwrite_dir_non_dir or user:
                    shutil.copyfileobj(content, spooled)
                    spooled.seek(0)
                    extracted = _entries(target, spooled, no_overwrite_dir_non_dir)
                    spooled.seek(0)
                    content = spooled
                apply_layer(target, content)
                if user:
                    owner = resolve_user(user, [], lambda file: self.host.read_rootfs_file(root, file))
                    for located in extracted:
                        os.lchown(located, owner.uid, owner.gid)
                self.publish(record, "extract-to-dir")
            except cerrors.Error as err:
                raise InvalidParameter(str(err)) from None
            except OSError as err:
                raise System(f"extracting into {path} in container {record.id}: {err}") from None


@contextmanager
def _binds_mounted(record: Container, root: str) -> Iterator[None]:
    """The container's binds and volumes over its mounted tree, parents first, for
    the block; a missing mount point is made, as the runtime would make it."""
    done = []
    try:
        for point in sorted(record.mount_points.values(), key=lambda p: p["Destination"]):
            if point.get("Type") not in ("bind", "volume"):
                continue
            target = scoped_path(root, point["Destination"])
            try:
                if not os.path.lexists(target):
                    _make_mount_point(target, os.path.isdir(point["Source"]))
                mount(Mount("bind", point["Source"], ["rbind", "rw" if point.get("RW") else "ro"]), target)
            except OSError as err:
                raise System(f"mounting {point['Source']} on {point['Destination']} of container "
                             f"{record.id}: {err}") from None
            done.append(target)
        yield
    finally:
        for target in reversed(done):
            unmount(target)


def _make_mount_point(target: str, directory: bool) -> None:
    if directory:
        os.makedirs(target, 0o755)
    else:
        os.makedirs(os.path.dirname(target), 0o755, exist_ok=True)
        open(target, "a").close()


def _in_writable_volume(record: Container, absolute: str) -> bool:
    """dockerd's checkIfPathIsInAVolume: whether the path lies in a mount of
    the container; one that is read-only is refused."""
    for point in record.mount_points.values():
        inside = posixpath.relpath(absolute, point["Destination"])
        if inside == "." or not inside.startswith(".."):
            if not point.get("RW"):
                raise InvalidParameter("mounted volume is marked read-only")
            return True
    return False


def _archive_name(absolute: str) -> str:
    """The name the path's own entry has in its archive (and its stat)."""
    if absolute == "/":
        return "/"
    if absolute.endswith("/."):
        return "."
    return posixpath.basename(absolute.rstrip("/"))


def _entries(target: str, tar_file: BinaryIO, check_kinds: bool) -> list[str]:
    """Where each entry of the tar goes under target; with ``check_kinds``,
    dockerd's NoOverwriteDirNonDir against what is there (the entries named
    as dockerd's chrooted extraction names them: under "/")."""
    located = []
    try:
        with tarfile.open(fileobj=decompress(tar_file), mode="r|") as tf:
            for member in tf:
                name = posixpath.normpath("/" + member.name)
                if name == "/":
                    continue
                directory, base = posixpath.split(name)
                located.append(scoped_path(target, directory).rstrip("/") + "/" + base)
                try:
                    existing = os.lstat(located[-1])
                except (FileNotFoundError, NotADirectoryError):
                    continue
                if check_kinds and stat.S_ISDIR(existing.st_mode) and not member.isdir():
                    raise System(f'Error processing tar file(exit status 1): cannot overwrite directory "{name}" '
                                 f'with non-directory "/"')
                if check_kinds and not stat.S_ISDIR(existing.st_mode) and member.isdir():
                    raise System(f'Error processing tar file(exit status 1): cannot overwrite non-directory '
                                 f'"{name}" with directory "/"')
    except (tarfile.TarError, EOFError, zlib.error) as err:
        raise InvalidParameter(f"invalid tar: {err}") from None
    return located


def encode_path_stat(described: dict) -> str:
    """The header's value: the stat as base64 of its JSON."""
    return base64.b64encode(json.dumps(described, separators=(",", ":")).encode()).decode()

