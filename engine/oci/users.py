"""`User` and `GroupAdd` resolved through the image's /etc/passwd and
/etc/group, as dockerd does with runc's libcontainer/user.

The files come from a reader the caller injects (``read(path) -> bytes |
None``, None when the file is missing), so this module does no I/O. Errors are
libcontainer's wording; dockerd reports them when the container starts.
"""
from dataclasses import dataclass

from engine.errors import System

MAX_ID = 2**31 - 1
_RANGE_ERROR = f"uids and gids must be in range 0-{MAX_ID}"


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int


@dataclass(frozen=True)
class Group:
    name: str
    gid: int
    members: tuple[str, ...]


@dataclass(frozen=True)
class ProcessUser:
    uid: int
    gid: int
    additional_gids: tuple[int, ...]


def _atoi(text):
    """Go's strconv.Atoi as libcontainer's parseLine uses it: 0 when not a number."""
    try:
        return int(text, 10)
    except ValueError:
        return 0


def _fields(line, count):
    parts = line.split(":")
    return parts + [""] * (count - len(parts))


def _lines(data):
    for raw in data.decode("utf-8", "replace").splitlines():
        line = raw.strip()
        if line:
            yield line


def parse_passwd(data: bytes) -> list[Account]:
    accounts = []
    for line in _lines(data):
        name, _pw, uid, gid = _fields(line, 4)[:4]
        accounts.append(Account(name, _atoi(uid), _atoi(gid)))
    return accounts


def parse_group(data: bytes) -> list[Group]:
    groups = []
    for line in _lines(data):
        name, _pw, gid, members = _fields(line, 4)[:4]
        groups.append(Group(name, _atoi(gid), tuple(m for m in members.split(",") if m)))
    return groups


def _numeric(text):
    return int(text) if text.isdigit() or (text[:1] == "-" and text[1:].isdigit()) else None


def _in_range(value):
    if not 0 <= value <= MAX_ID:
        raise System(_RANGE_ERROR)
    return value


def resolve_user(spec: str, group_add, read) -> ProcessUser:
    """`uid`, `name`, `uid:gid`, `name:group` (or empty: root) to ids, with
    the primary gid first in additional_gids, then the groups listing the
    user, then ``group_add`` (names or numbers), as dockerd 20.10 sets them."""
    user_arg, _, group_arg = spec.partition(":")
    group_arg = group_arg.split(":", 1)[0]
    passwd, group = read("/etc/passwd"), read("/etc/group")
    accounts = parse_passwd(passwd) if passwd is not None else []
    groups = parse_group(group) if group is not None else []

    uid_num, gid_num = _numeric(user_arg), _numeric(group_arg)
    if user_arg == "":
        matches = [a for a in accounts if a.uid == 0]
    elif uid_num is not None:
        matches = [a for a in accounts if a.uid == uid_num]
    else:
        matches = [a for a in accounts if a.name == user_arg]
    uid, gid, matched_name = 0, 0, ""
    if matches:
        uid, gid, matched_name = matches[0].uid, matches[0].gid, matches[0].name
    elif user_arg:
        if uid_num is None:
            raise System(f"unable to find user {user_arg}: no matching entries in passwd file")
        uid = _in_range(uid_num)

    supplementary = []
    if group_arg:
        found = [g for g in groups if (g.gid == gid_num if gid_num is not None else g.name == group_arg)]
        if found:
            gid = found[0].gid
        elif gid_num is None:
            raise System(f"unable to find group {group_arg}: no matching entries in group file")
        else:
            gid = _in_range(gid_num)
    elif matched_name:
        supplementary = [g.gid for g in groups if matched_name in g.members]

    return ProcessUser(uid, gid, (gid, *supplementary, *additional_groups(group_add, groups)))


def additional_groups(names, groups: list[Group]) -> list[int]:
    """GroupAdd entries (group names or gids) to gids, each once, in the order
    asked (dockerd's order is that of a Go map, i.e. none)."""
    gids = []
    for wanted in names:
        match = next((g.gid for g in groups if g.name == wanted or str(g.gid) == wanted), None)
        if match is None:
            number = _numeric(wanted)
            if number is None:
                raise System(f"Unable to find group {wanted}: no matching entries in group file")
            match = _in_range(number)
        if match not in gids:
            gids.append(match)
    return gids
