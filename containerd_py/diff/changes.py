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
from .tarstream import file_capability, tar_stream

MODIFY, ADD, DELETE = 0, 1, 2  # the Kind numbers of docker's API


@dataclass(frozen=True)
class Change:
    path: str  # absolute, as docker shows it
    kind: int


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
            file_capability(new_root + child) != file_capability(old_root + child)
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


# -- an overlay's upper directory: the changes without walking the lower tree -------------

_OPAQUE = "trusted.overlay.opaque"
_KERNEL_PARAMETERS = "/sys/module/overlay/parameters"


def overlay_features_off(options: list[str]) -> bool:
    """Whether the overlay keeps every change as a plain entry of its upper
    directory (no redirected directories, no metadata-only copies), so that
    ``overlay_changes`` can read it; the mount's options, else the kernel's defaults."""
    for feature in ("redirect_dir", "metacopy"):
        given = [o.split("=", 1)[1] for o in options if o.startswith(feature + "=")]
        if given:
            if given[-1] not in ("off", "nofollow"):
                return False
            continue
        try:
            with open(f"{_KERNEL_PARAMETERS}/{feature}") as f:
                if f.read().strip() not in ("N", "off", "nofollow"):
                    return False
        except OSError:
            return False
    return True


def overlay_changes(upper_dir: str, lower_root: str) -> list[Change]:
    """The changes an overlay's upper directory holds over its lower tree
    (mounted at lower_root), as moby's overlay2 driver reads them: a whiteout
    (a 0/0 character device) is a deletion, an opaque directory deletes
    what the lower tree had below it, anything else is added (not in the
    lower tree) or modified. Costs what changed, not the size of the image."""
    found: list[Change] = []
    _walk_upper(upper_dir, lower_root, "/", True, found)
    return found


def _walk_upper(upper_dir: str, lower_root: str, path: str, lower_is_dir: bool, found: list[Change]) -> None:
    upper_children = _entries(upper_dir + path)
    if path != "/" and lower_is_dir and _is_opaque(upper_dir + path):
        for name in sorted(_entries(lower_root + path).keys() - upper_children.keys()):
            found.append(Change(os.path.join(path, name), DELETE))
    for name in sorted(upper_children):
        child, entry = os.path.join(path, name), upper_children[name]
        lower = _lstat(lower_root + child) if lower_is_dir else None
        if stat.S_ISCHR(entry.st_mode) and entry.st_rdev == 0:
            if lower is not None:
                found.append(Change(child, DELETE))
            continue
        found.append(Change(child, ADD if lower is None else MODIFY))
        if stat.S_ISDIR(entry.st_mode):
            _walk_upper(upper_dir, lower_root, child, lower is not None and stat.S_ISDIR(lower.st_mode), found)


def _is_opaque(directory: str) -> bool:
    try:
        return os.getxattr(directory, _OPAQUE, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
