"""COPY and ADD against real dockerd 20.10's legacy builder: the same
Dockerfiles built by dockerd and replayed with plan_copy/perform_copy on a
busybox tree give the same files (type, mode, owner, size, link, contents,
preserved mtimes), the same history text, the same errors, and the same
cache hits after a file is touched, chmodded or changed."""
import hashlib
import io
import os
import re
import stat
import struct
import subprocess
import tarfile
import time

import pytest

from engine.builder.copy import CopyError, perform_copy, plan_copy, resolve_chown
from engine.builder.copy_tree import make_dirs
from engine.builder.dockerfile import parse
from engine.builder.instructions import Add, Copy, Workdir
from engine.oci.host import scoped_path

pytestmark = pytest.mark.root

MTIME = 1577934245  # 2020-01-02 03:04:05: the context's files, kept by COPY
CAPABILITY = "security.capability"
CAP_NET_RAW = struct.pack("<5I", 0x02000001, 1 << 13, 0, 0, 0)  # security.capability: cap_net_raw+ep


def _tar_of(members, xattrs=None):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, mode, uid, data in members:
            info = tarfile.TarInfo(name)
            info.mode, info.uid, info.gid, info.mtime = mode, uid, uid + 1, MTIME - 3600
            info.pax_headers = {f"SCHILY.xattr.{key}": value.decode("utf-8", "surrogateescape")
                                for key, value in (xattrs or {}).get(name, {}).items()}
            if data is None:
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return out.getvalue()


def make_context(path):
    """Files, a directory with a hardlink, links, a setuid file and archives (one without a tar name)."""
    (path / "dir/sub").mkdir(parents=True)
    (path / "empty").mkdir()
    (path / "links").mkdir()
    for name, text in {"a.txt": "hello\n", "b.txt": "bee\n", "dir/y": "y\n", "dir/sub/x": "x\n",
                       "suid": "s\n", "star[1].txt": "star\n"}.items():
        (path / name).write_text(text)
    (path / "dir/sub").chmod(0o700)
    (path / "suid").chmod(0o4755)
    os.link(path / "dir/y", path / "dir/hy")
    os.symlink("y", path / "dir/ly")
    os.symlink("a.txt", path / "la")
    os.symlink("dir", path / "ldir")
    os.symlink("loop", path / "loop")
    os.symlink("/etc", path / "links/linked")
    os.symlink("/realdir", path / "links/dlink")
    archive = _tar_of([("t", 0o755, 0, None), ("t/f", 0o4755, 5, b"tar file\n"), ("./t/g", 0o640, 0, b"g\n"),
                       ("../up", 0o644, 0, b"up\n"), ("/abs/z", 0o600, 7, b"z\n")])
    (path / "arch.tar").write_bytes(archive)
    (path / "capped.tar").write_bytes(_tar_of([("ping", 0o755, 0, b"ping\n")],
                                              {"ping": {"security.capability": CAP_NET_RAW}}))
    subprocess.run(["gzip", "-k", "-n", str(path / "arch.tar")], check=True)
    (path / "arch.tar.gz").rename(path / "notnamed")
    subprocess.run(["bzip2", "-k", str(path / "arch.tar")], check=True)
    subprocess.run(["xz", "-k", str(path / "arch.tar")], check=True)
    for top, dirs, files in os.walk(path):
        for name in dirs + files:
            os.utime(os.path.join(top, name), (MTIME, MTIME), follow_symlinks=False)


CASES = {
    "copy": "FROM busybox\nCOPY a.txt /a.txt\nCOPY dir /dd/\nWORKDIR /w\nCOPY a.txt rel/\nCOPY a.txt b.txt ./\n"
            "COPY d*/y /wild/\nCOPY . /all/\nCOPY la /la\nCOPY ldir /ldir/\nCOPY dir/../a.txt /dotdot\n"
            "COPY star[[]1].txt /star\nCOPY ./dir/ .\nCOPY ?.txt /q/\nCOPY [^l]* /every/\n",
    "chown": "FROM busybox\nCOPY --chown=1:2 a.txt /c/d/e\nCOPY --chown=3:4 dir /cd/x/y\nCOPY --chown=5 b.txt /cf/\n"
             "COPY --chown=user:nogroup a.txt /named\nCOPY --chown=0:0 suid /suid0\nCOPY suid /suid\n",
    "add": "FROM busybox\nADD a.txt /add\nADD arch.tar /ar/\nADD notnamed /nn\nADD dir /addir\n"
           "ADD --chown=2:3 arch.tar.bz2 /archown/\nADD arch.tar.xz /xz\nCOPY arch.tar /copied.tar\n"
           "ADD capped.tar /capped/\n",
    "dest": "FROM busybox\nCOPY links /\nCOPY empty /realdir/\nCOPY a.txt /linked/copied\nCOPY a.txt /dlink\n"
            "COPY dir /dlink/sub2/\nCOPY a.txt /dd/\nCOPY dir /dd\nCOPY b.txt /a.txt\nCOPY b.txt /a.txt\n"
            "COPY a.txt /dd/sub\n",
    "from": "FROM busybox AS s0\nADD arch.tar /o/\nCOPY --chown=7:8 dir /o/d\nADD capped.tar /o/\nFROM busybox\n"
            "COPY --from=s0 /o /fromdir/\nCOPY --from=s0 /o/t/f /fromfile\nCOPY --chown=1:1 --from=s0 /o /fromchown/\n"
            "COPY --from=busybox /etc/group /g\nCOPY --from=s0 /o/t/* /wild/\n",
}


def docker_build(dockerd, context, text, tag, *flags):
    (context / "Dockerfile").write_text(text)
    os.utime(context / "Dockerfile", (MTIME, MTIME))
    return subprocess.run(["/usr/bin/docker", "-H", f"unix://{dockerd.socket}", "build", *flags, "-t", tag,
                           str(context)], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, DOCKER_BUILDKIT="0"))


def exported(dockerd, image) -> bytes:
    cid = dockerd.docker("create", image).stdout.strip()
    try:
        return subprocess.run(["/usr/bin/docker", "-H", f"unix://{dockerd.socket}", "export", cid],
                              capture_output=True, check=True).stdout
    finally:
        dockerd.docker("rm", cid)


def tar_entries(data: bytes, since: float) -> dict:
    entries = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        for m in tf:
            name = "/" + m.name.strip("/").removeprefix("./") if m.name.strip("/.") else "/"
            kind = {tarfile.DIRTYPE: "dir", tarfile.SYMTYPE: "link", tarfile.LNKTYPE: "hardlink"}.get(m.type, "file")
            content = hashlib.sha256(tf.extractfile(m).read()).hexdigest() if m.isreg() else ""
            link = "/" + m.linkname.strip("/") if m.islnk() else m.linkname
            capability = m.pax_headers.get("SCHILY.xattr.security.capability", "").encode("utf-8", "surrogateescape")
            entries[name] = (kind, m.mode & 0o7777, m.uid, m.gid, m.size if m.isreg() else 0, link, content,
                             "new" if m.mtime >= since else m.mtime, capability)
    return entries


def tree_entries(root: str, since: float) -> dict:
    """Our tree as tar_entries reads an export: hardlinks named after their first path in walk order."""
    entries, first = {}, {}
    for top, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted([""] + dirs + files) if top == root else sorted(dirs + files):
            full = os.path.join(top, name) if name else root
            st = os.lstat(full)
            rel = os.path.relpath(full, root)
            path = "/" if rel == "." else "/" + rel
            kind = "dir" if stat.S_ISDIR(st.st_mode) else "link" if stat.S_ISLNK(st.st_mode) else "file"
            link, content, size = "", "", 0
            if kind == "link":
                link = os.readlink(full)
            elif kind == "file" and st.st_nlink > 1 and first.setdefault(st.st_ino, path) != path:
                kind, link = "hardlink", first[st.st_ino]
            elif kind == "file":
                with open(full, "rb") as f:
                    content = hashlib.sha256(f.read()).hexdigest()
                size = st.st_size
            capability = os.getxattr(full, "security.capability") if kind == "file" and CAPABILITY in \
                os.listxattr(full) else b""
            entries[path] = (kind, st.st_mode & 0o7777, st.st_uid, st.st_gid, size, link, content,
                             "new" if st.st_mtime >= since else int(st.st_mtime), capability)
    return entries


def changed(entries: dict, base: dict) -> dict:
    return {path: entry for path, entry in entries.items() if base.get(path) != entry}


def replay(text, context, base_tar, tmp_path):
    """The Dockerfile's stages with our COPY/ADD (WORKDIR made as dockerd makes it):
    each stage's tree and the history text of its COPY/ADD steps."""
    def base_tree(name):
        root = str(tmp_path / name)
        with tarfile.open(fileobj=io.BytesIO(base_tar)) as tf:
            tf.extractall(root, numeric_owner=True)
            for member in reversed(tf.getmembers()):  # links' own mtimes, then directories'
                os.utime(os.path.join(root, member.name), (member.mtime, member.mtime), follow_symlinks=False)
        return root

    trees, histories = {"busybox": base_tree("image")}, []
    for n, stage in enumerate(parse(text).stages):
        root = trees[stage.name.lower() or str(n)] = trees[str(n)] = base_tree(f"stage{n}")
        workdir, histories = "/", []
        for step in stage.instructions:
            if isinstance(step, Workdir):
                workdir = os.path.join(workdir, step.value)
                make_dirs(scoped_path(root, workdir), (0, 0))
            elif isinstance(step, Add):
                source = getattr(step, "from_", "")
                plan = plan_copy(trees[source] if source else str(context), step.sources, step.dest, workdir,
                                 instruction=step.keyword, archives=step.keyword == "ADD",
                                 preserve_ownership=bool(source) and not step.chown)
                perform_copy(plan, root, resolve_chown(root, step.chown) if step.chown else None)
                histories.append("/bin/sh -c #(nop) " + plan.history(step.chown))
    return root, histories


INIT_LAYER = ("/", "/.dockerenv", "/dev", "/proc", "/sys", "/etc", "/etc/hostname", "/etc/hosts", "/etc/mtab",
              "/etc/resolv.conf")


def _files(entries):
    """Without an export's root and what the container's init layer puts there."""
    return {path: entry for path, entry in entries.items()
            if path not in INIT_LAYER and not path.startswith(("/dev/", "/proc/", "/sys/"))}


def _unhexed(text):
    return re.sub(r"[0-9a-f]{64}", "<hex>", text)


@pytest.fixture(scope="module")
def base_tar(dockerd):
    """busybox's files; after the module, its builds' untagged images go, so
    no later test of the session's dockerd hits their cache."""
    yield exported(dockerd, "busybox")
    dockerd.docker("image", "prune", "-f")


@pytest.mark.parametrize("case", sorted(CASES))
def test_files_and_history_as_dockerd(dockerd, tmp_path, case, base_tar):
    context = tmp_path / "context"
    make_context(context)
    text = CASES[case]
    since = time.time() - 1
    base = tar_entries(base_tar, since)
    built = docker_build(dockerd, context, text, f"copy-{case}")
    assert built.returncode == 0, built.stdout + built.stderr
    try:
        theirs = changed(tar_entries(exported(dockerd, f"copy-{case}"), since), base)
        history = dockerd.docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", f"copy-{case}").stdout
    finally:
        dockerd.docker("rmi", f"copy-{case}")
    root, ours_history = replay(text, context, base_tar, tmp_path)
    ours = changed(tree_entries(root, since), base)
    assert _files(ours) == _files(theirs)
    steps = [line for line in history.splitlines() if " COPY " in line or " ADD " in line]
    assert _unhexed("\n".join(reversed(steps))) == _unhexed("\n".join(ours_history))


ERRORS = [
    "COPY nope /x", "COPY ../x /x", "COPY a.txt b.txt /dd", "COPY nomatch* /x/", "COPY --chown=nobody2 a.txt /x",
    "COPY --chown=nobody a.txt /x", "COPY --chown=1:2:3 a.txt /x", "COPY http://example.com/x /x",
    "COPY /../../a.txt /x", "COPY dir/../../a.txt /x", "ADD a.txt b* /x", "COPY ./nope/ /x", "COPY l* /x/",
    "COPY a.txt/x /x",
]


@pytest.mark.parametrize("line", ERRORS)
def test_errors_as_dockerd(dockerd, tmp_path, line, base_tar):
    context = tmp_path / "context"
    make_context(context)
    text = f"FROM busybox\n{line}\n"
    built = docker_build(dockerd, context, text, "copy-error")
    assert built.returncode != 0
    with pytest.raises(CopyError) as err:
        replay(text, context, base_tar, tmp_path)
    assert built.stderr.strip().splitlines()[-1] == str(err.value)


MUTATIONS = {
    "touch": lambda ctx: os.utime(ctx / "dir/y", (MTIME + 99, MTIME + 99)),
    "same bytes rewritten": lambda ctx: (ctx / "a.txt").write_text("hello\n"),
    "chmod": lambda ctx: (ctx / "dir/sub/x").chmod(0o600),
    "changed": lambda ctx: (ctx / "dir/y").write_text("Y\n"),
    "new file": lambda ctx: (ctx / "dir/sub/new").write_text("n\n"),
    "link retargeted": lambda ctx: (os.unlink(ctx / "dir/ly"), os.symlink("hy", ctx / "dir/ly")),
    "other file": lambda ctx: (ctx / "b.txt").write_text("other\n"),
}
CACHED = "FROM busybox\nCOPY a.txt /a\nCOPY dir /d/\nCOPY ?.txt /q/\nCOPY --from=busybox /bin/sh /sh\n"


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_cache_hits_as_dockerd(dockerd, tmp_path, mutation, base_tar):
    """A step hits dockerd's cache when it and every step before it keep their checksum."""
    context = tmp_path / "context"
    make_context(context)
    (context / "Dockerfile").write_text(CACHED)
    os.utime(context / "Dockerfile", (MTIME, MTIME))

    def checksums():
        return [plan_copy(str(context), step.sources, step.dest, "/").checksum
                for step in parse(CACHED).stages[0].instructions if not step.from_]

    first = docker_build(dockerd, context, CACHED, "copy-cache")
    assert first.returncode == 0, first.stderr
    before = checksums()
    MUTATIONS[mutation](context)
    second = docker_build(dockerd, context, CACHED, "copy-cache")
    dockerd.docker("rmi", "copy-cache")
    assert second.returncode == 0, second.stderr
    hits = [cached == "Using cache" for cached in re.findall(r"Step \d+/\d+ : .*\n ---> (Using cache)?", second.stdout)]
    after = checksums()
    ours = [before[:n] == after[:n] for n in range(1, len(after) + 1)]
    assert hits[1:1 + len(ours)] == ours
