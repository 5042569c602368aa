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
import json
import os
import posixpath
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from containerd_py import errors as cerrors
from containerd_py.diff.changes import changes
from containerd_py.diff.layer import apply_layer
from containerd_py.diff.tarstream import tar_stream, walk

from engine.containerd.layers import ContainerdLayers
from engine.errors import InvalidParameter, NotFound, System
from engine.oci.host import scoped_path
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
    cleaned = posixpath.normpath("/" + path)
    cleaned = "/" if cleaned == "//" else cleaned
    if path.endswith("/.") or path == ".":
        return cleaned.rstrip("/") + "/."
    if path.endswith("/") and not cleaned.endswith("/"):
        return cleaned + "/"
    return cleaned


class ContainerFiles:
    def __init__(self, store: ContainerStore, layers: ContainerdLayers):
        self.store, self.layers = store, layers

    @contextmanager
    def _root(self, record: Container, writable: bool = False) -> Iterator[str]:
        """The container's tree as its processes see it when it runs; its snapshot mounted otherwise."""
        pid = record.state.pid if record.state.running else 0
        if pid:
            yield f"/proc/{pid}/root"
            return
        try:
            with self.layers.mounted(record.id, writable) as root:
                yield root
        except OSError as err:
            raise System(f"mounting the filesystem of container {record.id}: {err}") from None

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
        return self._export(record)

    def _export(self, record: Container) -> Iterator[bytes]:
        try:
            with self.layers.mounted(record.id) as root:
                yield from tar_stream(entry for entry in walk(root, "") if entry[1])
        except OSError as err:
            raise System(f"exporting container {record.id}: {err}") from None

    # -- the archive API (docker cp) -----------------------------------------------------------

    def _resolve(self, root: str, ref: str, path: str) -> tuple[str, str]:
        """(the host path of ``path`` in the container, its absolute form); 400 for an empty path."""
        if not path:
            raise InvalidParameter("Path cannot be empty")
        absolute = absolute_path(path)
        directory, base = posixpath.split(absolute)
        return scoped_path(root, directory).rstrip("/") + "/" + base, absolute

    def _stat(self, root: str, ref: str, path: str) -> tuple[dict, str, str]:
        resolved, absolute = self._resolve(root, ref, path)
        try:
            st = os.lstat(resolved)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"Could not find the file {path} in container {ref}") from None
        link_target = ""
        if stat.S_ISLNK(st.st_mode):
            inside = os.path.relpath(scoped_path(root, absolute), root)
            link_target = "/" if inside == "." else "/" + inside
        name = posixpath.basename(absolute.rstrip("/")) or "/"
        if absolute.endswith("/."):
            name = "."
        described = {"name": name, "size": st.st_size, "mode": go_file_mode(st.st_mode),
                     "mtime": go_time(st.st_mtime_ns), "linkTarget": link_target}
        return described, resolved, absolute

    def stat_path(self, ref: str, path: str) -> dict:
        """``HEAD /containers/<id>/archive``: the path's stat, as the header carries it."""
        record = self.store.get(ref)
        with self._root(record) as root:
            return self._stat(root, ref, path)[0]

    def archive(self, ref: str, path: str) -> tuple[dict, Iterator[bytes]]:
        """``GET /containers/<id>/archive``: the stat, and the path (with all
        below it) as a tar whose entries start with the path's own name."""
        record = self.store.get(ref)
        described = self.stat_path(ref, path)  # errors before any byte is sent
        return described, self._archive(record, ref, path)

    def _archive(self, record: Container, ref: str, path: str) -> Iterator[bytes]:
        try:
            with self._root(record) as root:
                _, resolved, absolute = self._stat(root, ref, path)
                top = "." if absolute.endswith("/.") else posixpath.basename(absolute.rstrip("/")) or "."
                skip = _KERNEL_FILESYSTEMS if record.state.running and resolved.rstrip("/.") == root else frozenset()
                yield from tar_stream(walk(resolved.removesuffix("/."), top, skip))
        except OSError as err:
            raise System(f"copying {path} from container {record.id}: {err}") from None

    def extract(self, ref: str, path: str, content: BinaryIO) -> None:
        """``PUT /containers/<id>/archive``: the tar extracted into the
        directory ``path`` names (symlinks followed), paths kept inside it."""
        record = self.store.get(ref)
        if not path:
            raise InvalidParameter("Path cannot be empty")
        with self._root(record, writable=True) as root:
            target = scoped_path(root, absolute_path(path))
            try:
                is_dir = stat.S_ISDIR(os.lstat(target).st_mode)
            except (FileNotFoundError, NotADirectoryError):
                raise NotFound(f"Could not find the file {path} in container {ref}") from None
            if not is_dir:
                raise InvalidParameter("extraction point is not a directory")
            if record.host_config.get("ReadonlyRootfs"):
                raise InvalidParameter("container rootfs is marked read-only")
            try:
                apply_layer(target, content)
            except cerrors.Error as err:
                raise InvalidParameter(str(err)) from None
            except OSError as err:
                raise System(f"extracting into {path} in container {record.id}: {err}") from None


def encode_path_stat(described: dict) -> str:
    """The header's value: the stat as base64 of its JSON."""
    return base64.b64encode(json.dumps(described, separators=(",", ":")).encode()).decode()

