"""The files side of COPY and ADD, as dockerd 20.10's legacy builder does it
(builder/dockerfile/copy.go and pkg/archive): which sources an instruction
names, the checksum its cache key and history carry, and the files it
writes into the image's mounted tree.

Sources are read from a directory (the build context, or another stage's or
image's tree for COPY --from), resolved inside it as dockerd's
FollowSymlinkInScope does. The checksum covers what dockerd's tarsum covers:
each entry's name, mode, owner, size, link target and contents, not its
mtime (a touched file still hits the cache, a chmod misses). Writing follows
moby's tar copy: entries replace what is in the way, directories merge,
mtimes are kept to the second, new parent directories are 0755, and the
owner is 0:0 (or --chown's, or the source's for COPY --from).
"""
import hashlib
import os
import posixpath
import re
import stat
from dataclasses import dataclass, field

from engine.builder.copy_tree import TreeWriter, extract_archive, is_archive, make_dirs
from engine.errors import EngineError
from engine.oci.host import scoped_path
from engine.oci.users import parse_group, parse_passwd

_CHUNK = 1 << 20


class CopyError(EngineError):
    """A COPY or ADD that cannot be done; str() is dockerd's message."""


@dataclass
class CopySource:
    path: str        # resolved inside the source root (symlinks followed there)
    name: str        # as named or matched; its base names a file copied into a directory
    checksum: str    # "file:<hex>" or "dir:<hex>"
    is_dir: bool


@dataclass
class CopyPlan:
    checksum: str              # "file:", "dir:" or "multi:<hex>": history text and cache key
    dest: str                  # as written: history shows it so ("in rel/")
    target: str                # absolute in the image (WORKDIR applied), a trailing "/" kept
    instruction: str = "COPY"
    sources: list[CopySource] = field(default_factory=list)
    archives: bool = False     # ADD: local archives are extracted
    preserve_ownership: bool = False  # COPY --from without --chown keeps the source's owners

    def history(self, chown: str = "") -> str:
        """The step's comment as dockerd writes it after `#(nop) ` (its
        missing space after --chown and trailing space included)."""
        flag = f"--chown={chown}" if chown else ""
        return f"{self.instruction} {flag}{self.checksum} in {self.dest} "


def plan_copy(source_root: str, sources: list[str], dest: str, workdir: str, *, instruction: str = "COPY",
              wildcards: bool = True, archives: bool = False, preserve_ownership: bool = False) -> CopyPlan:
    """The sources an instruction names, checksummed, and where they go.
    Raises CopyError with dockerd's message."""
    root = os.path.realpath(source_root)
    hasher = _Hasher(root)
    found = []
    for orig in sources:
        if orig.startswith(("http://", "https://")):
            if instruction != "ADD":
                raise CopyError(f"{instruction} failed: source can't be a URL for {instruction}")
            raise CopyError(f'{instruction} failed: Get "{orig}": URL sources are not supported here: '
                            "this engine has no network to download them from")
        found += _sources_for(hasher, orig, instruction, wildcards)
    if not found:
        raise CopyError(f"{instruction} failed: no source files were specified")
    if len(found) > 1 and not dest.endswith("/"):
        raise CopyError(f"When using {instruction} with more than one source file, "
                        "the destination must be a directory and end with a /")
    checksum = found[0].checksum if len(found) == 1 else _hash_list("multi", [s.checksum for s in found])
    return CopyPlan(checksum=checksum, dest=dest, target=_normalize_dest(workdir, dest), instruction=instruction,
                    sources=found, archives=archives, preserve_ownership=preserve_ownership)


def perform_copy(plan: CopyPlan, root: str, chown: tuple[int, int] | None = None) -> None:
    """Writes the plan's sources into the mounted tree ROOT, never outside it."""
    root = os.path.realpath(root)
    owner = chown if chown is not None else (None if plan.preserve_ownership else (0, 0))
    try:
        dest = scoped_path(root, plan.target)
        for source in plan.sources:
            _copy_one(source, dest, plan, root, owner)
    except OSError as err:
        raise CopyError(f"failed to copy files: {_in_root(err, root)}") from None


def resolve_chown(root: str, spec: str) -> tuple[int, int]:
    """--chown's "user[:group]" as uid and gid: numbers as they are, names
    from ROOT's /etc/passwd and /etc/group; a lone user names the group too."""
    parts = spec.split(":")
    try:
        if len(parts) > 2:
            raise LookupError(f"invalid chown string format: {spec}")
        user, group = (parts[0], parts[0]) if len(parts) == 1 else parts
        uid = _lookup_id(root, "/etc/passwd", user, "user", parse_passwd, lambda entry: entry.uid)
        gid = _lookup_id(root, "/etc/group", group, "group", parse_group, lambda entry: entry.gid)
    except LookupError as err:
        raise CopyError(f"unable to convert uid/gid chown string to host mapping: {err.args[0]}") from None
    return uid, gid


def _lookup_id(root, path, name, kind, parse, id_of):
    if re.fullmatch(r"[+-]?[0-9]+", name):  # Go's strconv.Atoi
        return int(name)
    try:
        with open(scoped_path(root, path), "rb") as f:
            entries = parse(f.read())
    except OSError as err:
        raise LookupError(f"can't find {'uid' if kind == 'user' else 'gid'} for {kind} {name}: "
                          f"open {path}: {os.strerror(err.errno)}") from None
    for entry in entries:
        if entry.name == name:
            return id_of(entry)
    raise LookupError(f"can't find {'uid' if kind == 'user' else 'gid'} for {kind} {name}: no such {kind}: {name}")


def _normalize_dest(workdir: str, dest: str) -> str:
    """dockerd's normalizeDest: a relative destination is under WORKDIR, its trailing slash kept."""
    if dest.startswith("/"):
        return dest
    joined = posixpath.normpath(posixpath.join("/", workdir or "/", dest))
    joined = "/" + joined.lstrip("/")
    return joined + "/" if dest.endswith("/") and joined != "/" else joined


def _trimmed(orig: str) -> str:
    """The source as dockerd names it: one leading "/" then one "./" removed."""
    return orig.removeprefix("/").removeprefix("./")


def _sources_for(hasher, orig, instruction, wildcards):
    name = _trimmed(orig)
    if wildcards and _has_wildcards(name):
        pattern = _match_regexp(name)
        if pattern is None:
            return []
        return [source for rel in hasher.walk_names() if pattern.fullmatch(rel)
                for source in _sources_for(hasher, rel, instruction, False)]
    lexical = posixpath.normpath(posixpath.join("/ctx", name))
    if lexical != "/ctx" and not lexical.startswith("/ctx/"):
        raise CopyError(f"{instruction} failed: forbidden path outside the build context: {name} ()")
    full = hasher.resolve(name)
    try:
        st = os.lstat(full)
    except FileNotFoundError:
        raise CopyError(f"{instruction} failed: file not found in build context or excluded by .dockerignore: "
                        f"stat {name}: file does not exist") from None
    except OSError as err:
        raise CopyError(f"{instruction} failed: stat {name}: {os.strerror(err.errno)}") from None
    if stat.S_ISDIR(st.st_mode):
        return [CopySource(full, name, hasher.dir_checksum(full), True)]
    return [CopySource(full, name, "file:" + hasher.entry_hash(full, st), False)]


def _has_wildcards(name: str) -> bool:
    """dockerd's containsWildcards: *, ? or [ not escaped by a backslash."""
    return re.search(r"(?<!\\)(?:\\\\)*[*?[]", name) is not None


def _match_regexp(pattern: str):
    """Go's filepath.Match as a regexp; None for a pattern Go calls bad (it matches nothing)."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\":
            if i == len(pattern):
                return None
            out.append(re.escape(pattern[i]))
            i += 1
        elif ch == "[":
            cls, i = _match_class(pattern, i)
            if cls is None:
                return None
            out.append(cls)
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.DOTALL)


def _match_class(pattern, i):
    """A `[...]` class from just after its `[`: (regexp, next index) or (None, i) when malformed."""
    negated = pattern[i:i + 1] == "^"
    i += negated
    ranges = []
    while True:
        if pattern[i:i + 1] == "]" and ranges:
            break
        lo, i = _class_char(pattern, i)
        if lo is None:
            return None, i
        hi = lo
        if pattern[i:i + 1] == "-":
            hi, i = _class_char(pattern, i + 1)
            if hi is None:
                return None, i
        ranges.append((lo, hi))
    body = "".join(f"{re.escape(lo)}-{re.escape(hi)}" for lo, hi in ranges if lo <= hi)
    if not body:
        return ("[\\s\\S]" if negated else "(?!)"), i + 1
    return f"[{'^' if negated else ''}{body}]", i + 1


def _class_char(pattern, i):
    """Go's getEsc: one (possibly escaped) character of a class, never a bare - or ]."""
    if i >= len(pattern) or pattern[i] in "-]":
        return None, i
    if pattern[i] == "\\":
        i += 1
        if i >= len(pattern):
            return None, i
    if i + 1 >= len(pattern):  # a class must still close
        return None, i
    return pattern[i], i + 1


def _hash_list(prefix: str, hashes: list[str]) -> str:
    return f"{prefix}:{hashlib.sha256(','.join(hashes).encode()).hexdigest()}"


class _Hasher:
    """tarsum-like hashes of a source tree's entries, each entry hashed once per plan."""

    def __init__(self, root):
        self.root = root
        self._hashes = {}
        self._names = None

    def resolve(self, rel: str) -> str:
        try:
            return scoped_path(self.root, rel)
        except FileNotFoundError:  # a link loop: missing, as Go's resolution gives up
            return os.path.join(self.root, rel)

    def rel(self, full: str) -> str:
        return os.path.relpath(full, self.root)

    def walk_names(self):
        """Every entry's path relative to the root, in filepath.Walk's order (links not followed)."""
        if self._names is None:
            self._names = [self.rel(full) for full, _ in _walk(self.root)]
        return self._names

    def entry_hash(self, full: str, st: os.stat_result) -> str:
        """An entry's header (name, mode, owner, size, link target; not mtime) and contents."""
        known = self._hashes.get(full)
        if known is not None:
            return known
        link = os.readlink(full) if stat.S_ISLNK(st.st_mode) else ""
        size = st.st_size if stat.S_ISREG(st.st_mode) else 0
        header = f"{self.rel(full)}\0{st.st_mode:o}\0{st.st_uid}\0{st.st_gid}\0{size}\0{link}\0{st.st_rdev}\0"
        digest = hashlib.sha256(os.fsencode(header))
        if size:
            with open(full, "rb", buffering=0) as f:
                buf = bytearray(_CHUNK)
                view = memoryview(buf)
                while n := f.readinto(buf):
                    digest.update(view[:n])
        self._hashes[full] = digest.hexdigest()
        return self._hashes[full]

    def dir_checksum(self, top: str) -> str:
        """dockerd's walkSource: every entry under TOP (TOP too unless it is the
        root), a link counted as what it resolves to, sorted."""
        hashes = []
        for full, st in _walk(top):
            if full == self.root:
                continue
            if stat.S_ISLNK(st.st_mode):
                target = self.resolve(self.rel(full))
                try:
                    hashes.append(self.entry_hash(target, os.lstat(target)))
                except OSError:  # dangling: dockerd hashes the name
                    hashes.append(self.rel(full))
            else:
                hashes.append(self.entry_hash(full, st))
        hashes.sort()
        return _hash_list("dir", hashes)


def _walk(top):
    """(path, lstat) of TOP and everything under it, depth first, names sorted, links not followed."""
    st = os.lstat(top)
    yield top, st
    if not stat.S_ISDIR(st.st_mode):
        return
    with os.scandir(top) as listing:
        entries = sorted(listing, key=lambda entry: os.fsencode(entry.name))
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(entry.path)
        else:
            yield entry.path, entry.stat(follow_symlinks=False)


def _copy_one(source, dest, plan, root, owner):
    """performCopyForInfo: a directory's contents, an archive extracted (ADD), or one file."""
    src_stat = os.stat(source.path)
    if stat.S_ISDIR(src_stat.st_mode):
        created = make_dirs(dest, (0, 0))
        writer = TreeWriter(dest, owner)
        if owner is not None and created:
            os.lchown(dest, *owner)
        writer.copy_tree(source.path)
        return
    if plan.archives and is_archive(source.path):
        make_dirs(dest, (0, 0))
        extract_archive(source.path, dest)
        return
    if plan.target.endswith("/") or os.path.isdir(dest):
        dest = os.path.join(dest, posixpath.basename(source.name))
    make_dirs(os.path.dirname(dest), owner or (0, 0))
    TreeWriter(os.path.dirname(dest), owner).copy_file(source.path, src_stat, os.path.basename(dest))


def _in_root(err: OSError, root: str) -> str:
    """An OSError's text with paths shown as they are inside the image."""
    text = os.strerror(err.errno) if err.errno else str(err)
    names = [n for n in (err.filename, err.filename2) if n]
    shown = ["/" + os.path.relpath(n, root).removeprefix(".") if str(n).startswith(root) else str(n) for n in names]
    return f"{' '.join(shown)}: {text}" if shown else text
