"""dockerd's per-file checksums of COPY and ADD sources (moby pkg/tarsum,
version 1): sha256 over a file's tar header fields (name, mode, uid, gid,
size, typeflag, linkname, uname, gname, devmajor, devminor, xattrs; not
its mtime), then its contents. They name the step in the history
(`COPY file:<sum> in /a`) and key the cache.

A build context's sums come from the headers the client sent (dockerd
hashes its tar stream as it extracts it; the docker CLI 20.10 sends type
bits in the mode and user names, 28 neither); another image's or stage's files
(COPY --from) from their stat, as moby's archive.FileInfoHeader makes a
header of them (user and group names from the engine's host)."""
import grp
import os
import pwd
import stat
import tarfile
from functools import lru_cache

_TYPEFLAGS = {stat.S_IFREG: "0", stat.S_IFLNK: "2", stat.S_IFCHR: "3", stat.S_IFBLK: "4", stat.S_IFDIR: "5",
              stat.S_IFIFO: "6"}


def v1_header(name: str, mode: int, uid: int, gid: int, size: int, typeflag: str, linkname: str, uname: str,
              gname: str, devmajor: int, devminor: int, xattrs: dict[str, str]) -> bytes:
    """tarsum's WriteV1Header: each field's key and value, in its order, xattrs sorted last."""
    fields = [("name", name), ("mode", str(mode)), ("uid", str(uid)), ("gid", str(gid)), ("size", str(size)),
              ("typeflag", typeflag), ("linkname", linkname), ("uname", uname), ("gname", gname),
              ("devmajor", str(devmajor)), ("devminor", str(devminor)), *sorted(xattrs.items())]
    return "".join(key + value for key, value in fields).encode("utf-8", "surrogateescape")


def member_header(member: tarfile.TarInfo) -> bytes:
    """A received member's header as Go's tar reader gives it (a directory's name keeps its "/"),
    without its user and group names (tarsum's encodeHeader blanks them, "to be compatible
    with versions before go 1.10")."""
    name = member.name + "/" if member.isdir() and not member.name.endswith("/") else member.name
    typeflag = member.type.decode() if member.type != tarfile.AREGTYPE else "0"
    xattrs = {key[len("SCHILY.xattr."):]: value for key, value in member.pax_headers.items()
              if key.startswith("SCHILY.xattr.")}
    return v1_header(name, member.mode, member.uid, member.gid, member.size if member.isreg() else 0, typeflag,
                     member.linkname, "", "", member.devmajor, member.devminor, xattrs)


def stat_header(full: str, rel: str, st: os.stat_result) -> bytes:
    """moby's FileInfoHeader of a file on disk (with its security.capability, as ReadSecurityXattrToTarHeader)."""
    kind = stat.S_IFMT(st.st_mode)
    xattrs = {}
    if kind == stat.S_IFREG:
        try:
            xattrs["security.capability"] = os.getxattr(full, "security.capability", follow_symlinks=False) \
                .decode("utf-8", "surrogateescape")
        except OSError:
            pass
    device = kind in (stat.S_IFCHR, stat.S_IFBLK)
    return v1_header(rel + "/" if kind == stat.S_IFDIR else rel, st.st_mode, st.st_uid, st.st_gid,
                     st.st_size if kind == stat.S_IFREG else 0, _TYPEFLAGS.get(kind, "0"),
                     os.readlink(full) if kind == stat.S_IFLNK else "", _user(st.st_uid), _group(st.st_gid),
                     os.major(st.st_rdev) if device else 0, os.minor(st.st_rdev) if device else 0, xattrs)


def normalized(name: str) -> str:
    """The path a sum is kept under (tarsum's path.Join(".", path.Join("/", name)))."""
    return os.path.normpath("/" + name).lstrip("/") or "."


@lru_cache(maxsize=64)
def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return ""


@lru_cache(maxsize=64)
def _group(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return ""
