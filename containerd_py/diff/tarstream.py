"""A directory tree as tar bytes, produced piece by piece (a reply streams
them while they are made): entries named as the caller says, hard links
kept, symlinks stored not followed, mount points of other filesystems
stored but not entered when asked."""
import os
import stat
import tarfile
from collections.abc import Iterable, Iterator

_CHUNK = 1 << 20
_CAPABILITY = "security.capability"  # the one xattr docker's and containerd's archives carry
_TYPES = {stat.S_IFDIR: tarfile.DIRTYPE, stat.S_IFLNK: tarfile.SYMTYPE, stat.S_IFCHR: tarfile.CHRTYPE,
          stat.S_IFBLK: tarfile.BLKTYPE, stat.S_IFIFO: tarfile.FIFOTYPE}


def walk(root: str, name: str, skip: frozenset[str] = frozenset()) -> Iterator[tuple[str, str]]:
    """(host path, name in the tar) for ``root`` (named ``name``) and all below
    it, depth first in name order (Go's filepath.Walk); a directory whose
    path under ``root`` is in ``skip`` is listed but not entered."""
    yield root, name
    if os.path.isdir(root) and not os.path.islink(root):
        yield from _below(root, name, "", skip)


def _below(path: str, arcname: str, rel: str, skip: frozenset[str]) -> Iterator[tuple[str, str]]:
    for child in sorted(os.listdir(path)):
        full, child_rel = os.path.join(path, child), f"{rel}/{child}"
        child_name = f"{arcname.rstrip('/')}/{child}" if arcname else child  # "./a" below ".", "/a" below "/"
        yield full, child_name
        if child_rel not in skip and os.path.isdir(full) and not os.path.islink(full):
            yield from _below(full, child_name, child_rel, skip)


def tar_info(path: str, arcname: str, st: os.stat_result) -> tarfile.TarInfo:
    """The header of the file at ``path`` (not followed), as Go's tar.FileInfoHeader makes it."""
    kind = stat.S_IFMT(st.st_mode)
    info = tarfile.TarInfo(arcname + "/" if kind == stat.S_IFDIR and arcname and not arcname.endswith("/")
                           else arcname)
    info.type = _TYPES.get(kind, tarfile.REGTYPE)
    info.mode, info.uid, info.gid, info.mtime = stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime
    if kind == stat.S_IFREG:
        info.size = st.st_size
    elif kind == stat.S_IFLNK:
        info.linkname = os.readlink(path)
    elif kind in (stat.S_IFCHR, stat.S_IFBLK):
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    if kind == stat.S_IFREG and (capability := file_capability(path)) is not None:
        info.pax_headers = {f"SCHILY.xattr.{_CAPABILITY}": capability.decode("utf-8", "surrogateescape")}
    return info


def file_capability(path: str) -> bytes | None:
    """The file's security.capability xattr (not followed), None without one."""
    try:
        return os.getxattr(path, _CAPABILITY, follow_symlinks=False)
    except OSError:
        return None


def tar_stream(entries: Iterable[tuple[str | None, str]], type_bits: bool = False) -> Iterator[bytes]:
    """The tar of (host path, name) entries; a None path is an empty file
    (a whiteout). Sockets are left out, as Go's archive leaves them. With
    ``type_bits`` each mode carries the file's type too, as docker's
    pkg/archive writes them (`docker cp`, `export`; its fillGo18FileTypeBits)
    and containerd's diff does not."""
    links: dict[tuple[int, int], str] = {}
    for path, arcname in entries:
        if path is None:
            whiteout = tarfile.TarInfo(arcname)
            whiteout.mode = 0  # as containerd writes them
            yield whiteout.tobuf(tarfile.PAX_FORMAT)
            continue
        st = os.lstat(path)
        if stat.S_ISSOCK(st.st_mode):
            continue
        info = tar_info(path, arcname, st)
        if info.isreg() and st.st_nlink > 1:
            first = links.setdefault((st.st_dev, st.st_ino), arcname)
            if first != arcname:
                info.type, info.linkname, info.size = tarfile.LNKTYPE, first, 0
        header = info.tobuf(tarfile.PAX_FORMAT)
        yield _with_type_bits(header, st.st_mode) if type_bits else header
        if info.isreg() and info.size:
            yield from _contents(path, info.size)
    yield b"\0" * (2 * tarfile.BLOCKSIZE)


def _with_type_bits(header: bytes, st_mode: int) -> bytes:
    """The header with S_IFMT in its entry's mode field (Python's tarfile
    writes only the permission bits); its last block is the entry's own, a
    PAX block may come before it."""
    block = bytearray(header[-tarfile.BLOCKSIZE:])
    block[100:108] = b"%07o\0" % (stat.S_IMODE(st_mode) | stat.S_IFMT(st_mode))
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return header[:-tarfile.BLOCKSIZE] + bytes(block)


def _contents(path: str, size: int) -> Iterator[bytes]:
    """The file's bytes padded to whole blocks; exactly ``size`` of them, as its header said."""
    left = size
    with open(path, "rb") as f:
        while left:
            chunk = f.read(min(_CHUNK, left))
            if not chunk:  # it shrank meanwhile: zeros keep the archive readable
                chunk = b"\0" * left
            left -= len(chunk)
            yield chunk
    if size % tarfile.BLOCKSIZE:
        yield b"\0" * (tarfile.BLOCKSIZE - size % tarfile.BLOCKSIZE)
