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
import lzma
import os
import posixpath
import re
import stat
import tarfile
import zlib
from dataclasses import dataclass, field

from containerd_py import digest as digests

from engine.builder import tarsum
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
              wildcards: bool = True, archives: bool = False, preserve_ownership: bool = False,
              sums: dict[str, str] | None = None) -> CopyPlan:
    """The sources an instruction names, checksummed, and where they go.
    ``sums``: a build context's per-file checksums, from the headers its
    client sent (engine/builder/tarsum.py); without them, the files' own.
    Raises CopyError with dockerd's message."""
    root = os.path.realpath(source_root)
    hasher = _Hasher(root, sums)
    found = []
    for orig in sources:
        if orig.startswith(("http://", "https://")):
            if instruction != "ADD":
                raise CopyError(f"{instruction} failed: source can't be a URL for {instruction}")
            raise CopyError(f'{instruction} failed: Get "{orig}": URL sources are not supported here: '
                            "this engine has no network to download them from")
        try:
            found += _sources_for(hasher, orig, instruction, wildcards)
        except OSError as err:  # a source unreadable while it is walked or hashed
            raise CopyError(f"{instruction} failed: {_in_root(err, root)}") from None
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
        for source in plan.sources:  # the destination resolved for each, as an earlier one may have moved it
            _copy_one(source, scoped_path(root, plan.target), plan, root, owner)
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
        uid = _lookup_id(root, "/etc/passwd", parse_passwd, "uid", "user", user)
        gid = _lookup_id(root, "/etc/group", parse_group, "gid", "group", group)
    except LookupError as err:
        raise CopyError(f"unable to convert uid/gid chown string to host mapping: {err.args[0]}") from None
    return uid, gid


def _lookup_id(root, path, parse, id_field, kind, name):
    """A number as Go's strconv.Atoi reads it (and the kernel's 32-bit uid_t
    keeps of it), else a name's ID_FIELD from the image's file at PATH."""
    if re.fullmatch(r"[+-]?[0-9]+", name) and -2**63 <= int(name) < 2**63:
        return int(name) & 0xFFFFFFFF
    failed = f"can't find {id_field} for {kind} {name}"
    try:
        with open(scoped_path(root, path), "rb") as f:
            entries = parse(f.read())
    except OSError as err:
        raise LookupError(f"{failed}: open {path}: {_go_strerror(err.errno)}") from None
    for entry in entries:
        if entry.name == name:
            return getattr(entry, id_field)
    raise LookupError(f"{failed}: no such {kind}: {name}")


def _normalize_dest(workdir: str, dest: str) -> str:
    """dockerd's normalizeDest: a relative destination is under WORKDIR, its trailing slash kept."""
    if dest.startswith("/"):
        return dest
    joined = "/" + posixpath.normpath(posixpath.join("/", workdir or "/", dest)).lstrip("/")
    return joined + "/" if dest.endswith("/") else joined


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
        if full is None:
            raise NotADirectoryError
        st = os.lstat(full)
    except FileNotFoundError:
        raise CopyError(f"{instruction} failed: file not found in build context or excluded by .dockerignore: "
                        f"stat {name}: file does not exist") from None
    except OSError:  # a link loop, a file used as a directory: Go's scoped resolution fails on them
        raise CopyError(f"{instruction} failed: forbidden path outside the build context: {name} ()") from None
    if stat.S_ISDIR(st.st_mode):
        return [CopySource(full, name, hasher.dir_checksum(full))]
    return [CopySource(full, name, "file:" + hasher.entry_hash(full, st))]


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
    return f"{prefix}:{digests.of_small(','.join(hashes).encode()).removeprefix('sha256:')}"


class _Hasher:
    """tarsum-like hashes of a source tree's entries, each entry hashed once per plan."""

    def __init__(self, root, sums: dict[str, str] | None = None):
        self.root, self.sums = root, sums
        self._hashes = {}
        self._names = None
        self._buffer = None  # one read buffer per plan (plans may run on several threads)

    def resolve(self, rel: str) -> str | None:
        """REL with its links followed inside the root; None for a link loop."""
        try:
            return scoped_path(self.root, rel).rstrip("/") or "/"
        except FileNotFoundError:
            return None

    def rel(self, full: str) -> str:
        """FULL (the root or under it) relative to the root."""
        return full[len(self.root) + 1:] or "."

    def walk_names(self):
        """Every entry's path relative to the root (not the root's "."), in
        filepath.Walk's order (links not followed)."""
        if self._names is None:
            self._names = [self.rel(full) for full, _ in _walk(self.root)][1:]
        return self._names

    def entry_hash(self, full: str, st: os.stat_result) -> str:
        """An entry's tarsum: the context's as received (the path itself when
        the client sent no header for it, as dockerd's), else its header and contents."""
        if self.sums is not None:
            rel = self.rel(full)
            return self.sums.get(tarsum.normalized(rel), rel)
        known = self._hashes.get(full)
        if known is not None:
            return known
        size = st.st_size if stat.S_ISREG(st.st_mode) else 0
        import hashlib  # OpenSSL's sha256 (~3.5 MiB of libcrypto) only once a build hashes files
        digest = hashlib.sha256(tarsum.stat_header(full, self.rel(full), st))
        if size:
            if self._buffer is None:
                self._buffer = bytearray(_CHUNK)
            view = memoryview(self._buffer)
            fd = os.open(full, os.O_RDONLY | os.O_CLOEXEC)
            try:
                while n := os.readv(fd, [self._buffer]):
                    digest.update(view[:n])
            finally:
                os.close(fd)
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
                if target is None:  # a loop: dockerd leaves it out
                    continue
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
        created = _make_dirs(dest, (0, 0), root=root, doing="failed to copy directory")
        if owner is not None and created:
            os.lchown(dest, *owner)
        TreeWriter(dest, owner).copy_tree(source.path)
        return
    if plan.archives and is_archive(source.path):
        _make_dirs(dest, (0, 0), root=root, doing="Error processing tar file")
        try:
            extract_archive(source.path, dest)
        except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError) as err:  # a damaged archive past its start
            raise CopyError(f"failed to copy files: Error processing tar file: {err or 'unexpected EOF'}") from None
        return
    if plan.target.endswith("/") or os.path.isdir(dest):
        dest = os.path.join(dest, posixpath.basename(source.name))
    _make_dirs(os.path.dirname(dest), owner or (0, 0), root=root, doing="failed to create new directory")
    TreeWriter(os.path.dirname(dest), owner).copy_file(source.path, src_stat, os.path.basename(dest))


def _make_dirs(path, owner, *, root, doing):
    """make_dirs, its failure worded as dockerd words its step DOING."""
    try:
        return make_dirs(path, owner)
    except OSError as err:
        raise CopyError(f"failed to copy files: {doing}: mkdir {_in_root(err, root)}") from None


def _go_strerror(number: int) -> str:
    """An errno's text as Go's syscall package words it (lower case)."""
    text = os.strerror(number)
    return text[:1].lower() + text[1:]


def _in_root(err: OSError, root: str) -> str:
    """An OSError's text with paths shown as they are inside the image."""
    text = _go_strerror(err.errno) if err.errno else str(err)
    names = [n for n in (err.filename, err.filename2) if n]
    shown = ["/" + os.path.relpath(n, root).removeprefix(".") if f"{n}/".startswith(f"{root}/") else str(n)
             for n in names]
    return f"{' '.join(shown)}: {text}" if shown else text
