"""Applies an OCI layer (a tar stream, maybe compressed) onto a directory.

Every path in the layer, and every symlink met while resolving one, is
resolved as if the directory were `/` (absolute paths, `..` and symlinks
all stay inside), so a hostile layer cannot write outside it. OCI
whiteouts delete what lower layers put there: `.wh.<name>` removes one
entry, `.wh..wh..opq` empties a directory of everything this layer did not
itself add; a whiteout naming the directory itself or its parent (`.wh.`,
`.wh..`, `.wh...`) is refused as containerd refuses it.

Given the lower directories of an overlay, the layer is instead written
straight into the upper directory in overlayfs' own terms, as containerd
does: whiteouts become 0/0 character devices and opaque directories get
the `trusted.overlay.opaque` xattr; missing parents take their owner, mode
and times from the lower layers.
"""
import errno
import logging
import os
import posixpath
import shutil
import stat
import tarfile
from typing import BinaryIO

from .. import errors
from ..errors import q
from .compression import decompress, stream_errors

log = logging.getLogger(__name__)

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"
_MAX_SYMLINK_HOPS = 40
_CHUNK = 1 << 20
_DEVICE_TYPES = {tarfile.CHRTYPE: stat.S_IFCHR, tarfile.BLKTYPE: stat.S_IFBLK, tarfile.FIFOTYPE: stat.S_IFIFO}


class _DigestReader:
    """Counts and hashes the uncompressed stream: its digest is the layer's diff ID."""

    def __init__(self, stream: BinaryIO):
        from hashlib import sha256  # OpenSSL's, for a layer: loaded by the first (the engine imports this module)

        self._stream = stream
        self._hash = sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self._stream.read(n)
        self._hash.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        """Reads past the tar end blocks: padding counts towards the diff ID."""
        while self.read(_CHUNK):
            pass

    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()


def apply_layer(root: str, stream: BinaryIO, overlay_lowers: list[str] | None = None) -> tuple[str, int]:
    """Applies the layer onto root (an overlay upper dir when overlay_lowers is
    given, nearest lower first); returns (digest, size) of the uncompressed tar."""
    reader = _DigestReader(decompress(stream))
    try:
        with tarfile.open(fileobj=reader, mode="r|") as tf:
            LayerWriter(root, overlay_lowers).run(tf)
        reader.drain()
    except (tarfile.TarError, *stream_errors()) as e:
        raise errors.InvalidArgument(f"invalid layer: {e}") from None
    return reader.digest(), reader.size


class LayerWriter:
    """A tar's entries written under root as a layer applies them (whiteouts,
    owners, times, links kept inside root); the engine's build contexts too."""

    def __init__(self, root: str, overlay_lowers: list[str] | None = None):
        self.root = root
        self.lowers = overlay_lowers
        self.unpacked: set[str] = set()
        self.dir_times: list[tuple[str, tuple[int, int]]] = []

    def run(self, tf: tarfile.TarFile) -> None:
        for member in tf:
            try:
                self._entry(tf, member)
            except OSError as e:  # the entry, not the host path it was written to, names what failed
                raise errors.Unknown(f"layer entry {q(member.name)}: {(e.strerror or str(e)).lower()}") from None
        # Directory times last: creating entries inside would change them.
        for path, times in reversed(self.dir_times):
            try:
                os.utime(path, ns=times, follow_symlinks=False)
            except FileNotFoundError:
                pass  # removed by a later whiteout

    def resolve(self, rel: str) -> str:
        """The path under root that rel names, with symlinks followed inside root."""
        parts = [p for p in rel.split("/") if p not in ("", ".")]
        resolved: list[str] = []
        hops = 0
        while parts:
            part = parts.pop(0)
            if part == "..":
                if resolved:
                    resolved.pop()
                continue
            full = os.path.join(self.root, *resolved, part)
            try:
                st = os.lstat(full)
            except FileNotFoundError:
                resolved.append(part)
                continue
            if stat.S_ISLNK(st.st_mode):
                hops += 1
                if hops > _MAX_SYMLINK_HOPS:
                    raise errors.InvalidArgument(f"layer path {q(rel)}: too many levels of symbolic links")
                target = os.readlink(full)
                if target.startswith("/"):
                    resolved = []
                parts = [p for p in target.split("/") if p not in ("", ".")] + parts
                continue
            resolved.append(part)
        return os.path.join(self.root, *resolved)

    def _parent_dir(self, name: str, rel_dir: str, create: bool) -> str | None:
        path = self.resolve(rel_dir)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            if not create:
                return None
            try:
                self._mkparents(path)
            except (FileExistsError, NotADirectoryError):
                raise errors.InvalidArgument(f"layer entry {q(name)}: a parent is not a directory") from None
            return path
        if not stat.S_ISDIR(st.st_mode):
            raise errors.InvalidArgument(f"layer entry {q(name)}: parent {q(rel_dir)} is not a directory")
        return path

    def _mkparents(self, path: str) -> None:
        """Creates path and its missing parents; over an overlay, each like the lower directory it extends."""
        parent = os.path.dirname(path)
        if not os.path.lexists(parent):
            self._mkparents(parent)
        os.mkdir(path, 0o755)
        rel = os.path.relpath(path, self.root)
        for lower in self.lowers or ():
            try:
                st = os.lstat(os.path.join(lower, rel))
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(st.st_mode):
                os.chown(path, st.st_uid, st.st_gid, follow_symlinks=False)
                os.chmod(path, stat.S_IMODE(st.st_mode))
                os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
            return

    @staticmethod
    def _remove(path: str) -> None:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(path)
        else:
            os.unlink(path)

    def _entry(self, tf: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        rel = posixpath.normpath("/" + m.name)[1:]
        if not rel:
            return  # the root itself: its metadata belongs to the snapshot
        rel_dir, base = posixpath.split(rel)
        if base.startswith(WHITEOUT_PREFIX) and base[len(WHITEOUT_PREFIX):] in ("", ".", ".."):
            raise errors.InvalidArgument(f"invalid whiteout name: {base}: invalid archive")
        if base.startswith(WHITEOUT_PREFIX) and self.lowers is not None:
            self._overlay_whiteout(m, rel_dir, base)
            return
        if base.startswith(WHITEOUT_PREFIX):
            parent = self._parent_dir(m.name, rel_dir, create=False)
            if parent is None:
                return
            if base == OPAQUE_WHITEOUT:
                for child in os.listdir(parent):
                    if os.path.join(parent, child) not in self.unpacked:
                        self._remove(os.path.join(parent, child))
            elif not base.startswith(WHITEOUT_META_PREFIX):
                self._remove(os.path.join(parent, base[len(WHITEOUT_PREFIX):]))
            return

        path = os.path.join(self._parent_dir(m.name, rel_dir, create=True), base)
        try:
            existing = os.lstat(path)
        except FileNotFoundError:
            existing = None
        if existing and not (m.isdir() and stat.S_ISDIR(existing.st_mode)):
            self._remove(path)

        if m.isdir():
            if not existing or not stat.S_ISDIR(existing.st_mode):
                os.mkdir(path, 0o700)
        elif m.isreg():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                src = tf.extractfile(m)
                while chunk := src.read(_CHUNK):
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view):]
            finally:
                os.close(fd)
        elif m.issym():
            os.symlink(m.linkname, path)
        elif m.islnk():
            self._hardlink(m, path)  # the header's metadata then applies to the shared inode, as in containerd
        elif m.type in _DEVICE_TYPES:
            os.mknod(path, _DEVICE_TYPES[m.type] | 0o600, os.makedev(m.devmajor, m.devminor))
        else:
            log.warning("layer entry %r: unsupported type %r, skipped", m.name, m.type)
            return
        self._metadata(m, path)
        self.unpacked.add(path)

    def _overlay_whiteout(self, m: tarfile.TarInfo, rel_dir: str, base: str) -> None:
        parent = self._parent_dir(m.name, rel_dir, create=True)
        if base == OPAQUE_WHITEOUT:
            os.setxattr(parent, "trusted.overlay.opaque", b"y", follow_symlinks=False)
        elif not base.startswith(WHITEOUT_META_PREFIX):
            path = os.path.join(parent, base[len(WHITEOUT_PREFIX):])
            self._remove(path)
            os.mknod(path, stat.S_IFCHR, os.makedev(0, 0))
            os.chown(path, m.uid, m.gid, follow_symlinks=False)

    def _hardlink(self, m: tarfile.TarInfo, path: str) -> None:
        target_rel = posixpath.normpath("/" + m.linkname)[1:]
        target_dir, target_base = posixpath.split(target_rel)
        target = os.path.join(self.resolve(target_dir), target_base) if target_base else self.root
        try:
            st = os.lstat(target)
        except FileNotFoundError:
            raise errors.InvalidArgument(f"layer entry {q(m.name)}: hard link target {q(m.linkname)} does not exist") from None
        if stat.S_ISDIR(st.st_mode):
            raise errors.InvalidArgument(f"layer entry {q(m.name)}: hard link target {q(m.linkname)} is a directory")
        os.link(target, path, follow_symlinks=False)

    def _metadata(self, m: tarfile.TarInfo, path: str) -> None:
        os.chown(path, m.uid, m.gid, follow_symlinks=False)
        for key, value in m.pax_headers.items():
            if key.startswith("SCHILY.xattr."):
                try:
                    os.setxattr(path, key[len("SCHILY.xattr."):], value.encode("utf-8", "surrogateescape"),
                                follow_symlinks=False)
                except OSError as e:
                    if e.errno not in (errno.ENOTSUP, errno.EPERM):
                        raise
                    log.warning("layer entry %r: xattr %s not set: %s", m.name, key, e)
        if not stat.S_ISLNK(os.lstat(path).st_mode):  # a hard link may name a symlink too
            os.chmod(path, m.mode & 0o7777)
        mtime = int(float(m.mtime) * 1e9)
        atime = int(float(m.pax_headers.get("atime", m.mtime)) * 1e9)
        if m.isdir():
            self.dir_times.append((path, (atime, mtime)))
        else:
            os.utime(path, ns=(atime, mtime), follow_symlinks=False)
