"""What differs between two directory trees, as moby's archive.ChangesDirs
finds it (and containerd's walking differ, which writes it as a layer).

Both trees are walked side by side, names in order. A path only in the new
tree is added (its children with it), one only in the old tree deleted (its
children not listed), one in both modified when its type, mode, owner,
device, file capability or (not for directories) size or mtime differ. A
directory with any change below it is listed as modified before those
changes, so a layer made of them keeps its permissions.

``write_layer`` turns the changes into an OCI layer tar: the new tree's
entries, and a ``.wh.<name>`` whiteout for each deletion.
"""
import os
import stat
from dataclasses import dataclass
from typing import BinaryIO

from .layer import WHITEOUT_PREFIX
from .tarstream import tar_stream

MODIFY, ADD, DELETE = 0, 1, 2  # the Kind numbers of docker's API
_CAPABILITY = "security.capability"


@dataclass(frozen=True)
class Change:
    path: str  # absolute, as docker shows it
    kind: int


def _capability(path: str) -> bytes | None:
    try:
        return os.getxattr(path, _CAPABILITY, follow_symlinks=False)
    except OSError:
        return None


def _differs(old: os.stat_result, new: os.stat_result) -> bool:
    """moby's statDifferent: size and mtime are no measure of a directory's change."""
    if (old.st_mode, old.st_uid, old.st_gid, old.st_rdev) != (new.st_mode, new.st_uid, new.st_gid, new.st_rdev):
        return True
    return not stat.S_ISDIR(old.st_mode) and (old.st_mtime_ns != new.st_mtime_ns or old.st_size != new.st_size)


def _entries(directory: str) -> dict[str, os.stat_result]:
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return {}
    return {name: os.lstat(os.path.join(directory, name)) for name in names}


def changes(new_root: str, old_root: str, ignored: frozenset[str] = frozenset()) -> list[Change]:
    """The changes that make old_root into new_root; paths in ``ignored``
    (absolute, e.g. mount points a runtime made) are taken as unchanged."""
    found: list[Change] = []
    _walk(new_root, old_root, "/", False, True, ignored, found)
    return found


def _walk(new_root: str, old_root: str, path: str, listed: bool, compare_old: bool, ignored: frozenset[str],
          found: list[Change]) -> None:
    """``listed``: the directory itself is in ``found`` already; ``compare_old``: the old tree has it as a directory."""
    at_entry = len(found)
    new_children = _entries(new_root + path)
    old_children = _entries(old_root + path) if compare_old else {}
    for name in sorted(new_children.keys() | old_children.keys()):
        child = os.path.join(path, name)
        if child in ignored:
            continue
        new, old = new_children.get(name), old_children.get(name)
        if new is None:
            found.append(Change(child, DELETE))
            continue
        child_listed = old is None or _differs(old, new) or \
            _capability(new_root + child) != _capability(old_root + child)
        if child_listed:
            found.append(Change(child, ADD if old is None else MODIFY))
        if stat.S_ISDIR(new.st_mode):
            _walk(new_root, old_root, child, child_listed, old is not None and stat.S_ISDIR(old.st_mode), ignored,
                  found)
    if len(found) > at_entry and path != "/" and not listed:
        found.insert(at_entry, Change(path, MODIFY))


def write_layer(new_root: str, found: list[Change], out: BinaryIO) -> None:
    """The changes as an uncompressed layer tar; hard links within the layer are kept as links."""
    entries = ((None, _whiteout(c.path)) if c.kind == DELETE else (new_root + c.path, c.path.lstrip("/"))
               for c in found)
    for chunk in tar_stream(entries):
        out.write(chunk)


def _whiteout(path: str) -> str:
    parent, base = os.path.split(path.lstrip("/"))
    return os.path.join(parent, WHITEOUT_PREFIX + base)
