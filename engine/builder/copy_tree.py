"""Entries written into a directory as moby's chrootarchive unpacks the tar
its builder copies through (pkg/archive Unpack, createTarFile), without the
tar: a directory tree, one file, or an archive ADD extracts.

Paths are taken as if the destination were / (dockerd unpacks chrooted
there): an existing link in an archive's path resolves inside it, `..`
stops at it. What is in an entry's way is replaced unless both are
directories (those merge); owner, then mode, then mtime (to the second) are
set from the source, and a directory's mtime once its contents are written.
With an owner given (dockerd's fixPermissions) every written entry is then
chowned to it, which, as there, clears setuid and setgid bits.
"""
import errno
import os
import shutil
import stat
import tarfile
from dataclasses import dataclass

from engine.builder.dockerignore import go_clean
from engine.oci.host import scoped_path

_CAPABILITY = "security.capability"


def make_dirs(path: str, owner: tuple[int, int]) -> bool:
    """idtools.MkdirAllAndChownNew(path, 0755, owner): the missing directories
    made and chowned, existing ones left alone. Whether PATH was made."""
    if os.path.isdir(path):
        return False
    parent = os.path.dirname(path)
    if parent != path:
        make_dirs(parent, owner)
    try:
        os.mkdir(path, 0o755)
    except FileExistsError:
        if os.path.isdir(path):
            return False
        raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path) from None
    os.chmod(path, 0o755)
    os.lchown(path, *owner)
    return True


def is_archive(path: str) -> bool:
    """moby's isArchivePath: the file (plain, gzip, bzip2 or xz by its first
    bytes, whatever its name) starts with a valid tar header."""
    try:
        with tarfile.open(path, "r|*") as archive:
            return archive.next() is not None
    except (tarfile.TarError, OSError, EOFError, ValueError):
        return False


@dataclass(frozen=True)
class _Header:
    """What a tar header carries of an entry and the writer sets."""
    mode: int   # with the type bits
    uid: int
    gid: int
    mtime: int  # whole seconds, as in a tar header

    @classmethod
    def of(cls, st: os.stat_result) -> "_Header":
        return cls(st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns // 1_000_000_000)


class TreeWriter:
    """Writes entries under BASE; OWNER (uid, gid) or None to keep the source's."""

    def __init__(self, base: str, owner: tuple[int, int] | None):
        self.base = base
        self.owner = owner
        self._dir_times = []
        self._first_link = {}

    def copy_tree(self, top: str) -> None:
        """TarUntar: everything under TOP (not TOP itself), links as links, hardlinks kept."""
        self._copy_children(top, self.base)
        self.finish()

    def copy_file(self, src: str, st: os.stat_result, name: str) -> None:
        """CopyFileWithTar: SRC (links followed) as NAME in BASE."""
        self._place(src, st, os.path.join(self.base, name))
        self.finish()

    def _copy_children(self, src_dir, dst_dir):
        with os.scandir(src_dir) as listing:
            entries = sorted(listing, key=lambda entry: os.fsencode(entry.name))
        for entry in entries:
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISSOCK(st.st_mode):
                continue  # tar has no sockets
            dst = os.path.join(dst_dir, entry.name)
            if stat.S_ISDIR(st.st_mode):
                self._place(entry.path, st, dst)
                self._copy_children(entry.path, dst)
                continue
            if st.st_nlink > 1:
                first = self._first_link.setdefault((st.st_dev, st.st_ino), dst)
                if first != dst:
                    _clear_way(dst, None)
                    os.link(first, dst)
                    continue
            self._place(entry.path, st, dst)

    def _place(self, src, st, dst):
        """One entry from the file system, with SRC's type, owner, mode and mtime."""
        header = _Header.of(st)
        if stat.S_ISREG(st.st_mode):
            _clear_way(dst, header)
            self.write_regular(dst, header, lambda out: _copy_contents(src, out, st.st_size),
                               _capability(src) if self.owner is None else None)
        else:
            self.write_other(dst, header, os.readlink(src) if stat.S_ISLNK(st.st_mode) else "", st.st_rdev)

    def write_regular(self, dst, header, fill, capability=None):
        """A regular file at DST (its way cleared), its contents from FILL(fd)."""
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fill(fd)
            if self.owner is None:
                os.fchown(fd, header.uid, header.gid)
            os.fchmod(fd, stat.S_IMODE(header.mode))
            if capability is not None:
                os.setxattr(fd, _CAPABILITY, capability)
            if self.owner is not None:
                os.fchown(fd, *self.owner)
            os.utime(fd, (header.mtime, header.mtime))
        finally:
            os.close(fd)

    def write_other(self, dst, header, linkname="", rdev=0):
        """A directory (merged into one there), symlink or device node at DST."""
        _clear_way(dst, header)
        if stat.S_ISDIR(header.mode):
            if not os.path.isdir(dst):
                os.mkdir(dst, 0o700)
        elif stat.S_ISLNK(header.mode):
            os.symlink(linkname, dst)
        else:
            os.mknod(dst, stat.S_IFMT(header.mode) | 0o600, rdev)
        if self.owner is None:
            os.lchown(dst, header.uid, header.gid)
        if not stat.S_ISLNK(header.mode):
            os.chmod(dst, stat.S_IMODE(header.mode))
        if self.owner is not None:
            os.lchown(dst, *self.owner)
        if stat.S_ISDIR(header.mode):
            self._dir_times.append((dst, header.mtime))
        else:
            os.utime(dst, (header.mtime, header.mtime), follow_symlinks=False)

    def finish(self):
        """Directory mtimes, set once nothing more is written in them."""
        for path, mtime in self._dir_times:
            os.utime(path, (mtime, mtime), follow_symlinks=False)
        self._dir_times.clear()



def extract_archive(path: str, dest: str) -> None:
    """UntarPath: the archive's members under DEST with their own owners (ADD
    ignores --chown for them), DEST standing for / to their names and links."""
    writer = TreeWriter(dest, None)
    with tarfile.open(path, "r|*") as archive:
        for member in archive:
            name = go_clean(member.name)
            parent = scoped_path(dest, os.path.dirname(name))
            target = os.path.join(parent, os.path.basename(name)) if name not in (".", "/") else dest
            if target == dest and os.path.isdir(dest):
                continue
            if not os.path.isdir(parent):
                make_dirs(parent, (0, 0))
            _extract_member(writer, archive, member, target, dest)
    writer.finish()


def _extract_member(writer, archive, member, target, dest):
    if member.islnk():
        link_parent = scoped_path(dest, os.path.dirname(go_clean(member.linkname)))
        _clear_way(target, None)
        os.link(os.path.join(link_parent, os.path.basename(member.linkname)), target)
        return
    kind = stat.S_IFREG if member.isreg() else _TAR_TYPES.get(member.type)
    if kind is None:
        raise OSError(errno.EINVAL, f"unhandled tar header type {member.type.decode(errors='replace')}")
    header = _Header(kind | member.mode, member.uid, member.gid, int(member.mtime // 1))
    if member.isreg():
        _clear_way(target, header)
        data = archive.extractfile(member)
        writer.write_regular(target, header, lambda out: _copy_stream(data, out))
    else:
        writer.write_other(target, header, member.linkname, os.makedev(member.devmajor, member.devminor))


_TAR_TYPES = {tarfile.DIRTYPE: stat.S_IFDIR, tarfile.SYMTYPE: stat.S_IFLNK, tarfile.CHRTYPE: stat.S_IFCHR,
              tarfile.BLKTYPE: stat.S_IFBLK, tarfile.FIFOTYPE: stat.S_IFIFO}


def _clear_way(path, header):
    """Removes what is at PATH unless it and the new entry are both directories."""
    try:
        existing = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(existing.st_mode):
        if header is not None and stat.S_ISDIR(header.mode):
            return
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _capability(path):
    try:
        return os.getxattr(path, _CAPABILITY, follow_symlinks=False)
    except OSError:
        return None


def _copy_contents(src, out_fd, size):
    with open(src, "rb", buffering=0) as f:
        in_fd = f.fileno()
        left = size
        while left > 0:
            try:
                done = os.copy_file_range(in_fd, out_fd, left)
            except OSError as err:
                if err.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                    raise
                break
            if done == 0:
                return
            left -= done
        while left > 0 and (sent := os.sendfile(out_fd, in_fd, None, left)):
            left -= sent


def _copy_stream(data, out_fd):
    while chunk := data.read(1 << 20):
        os.write(out_fd, chunk)
