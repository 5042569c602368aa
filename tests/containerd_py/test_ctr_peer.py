"""containerd's own `ctr` client driving our daemon, and the same commands against
real containerd (differential): both must behave alike."""
import hashlib
import os
import re
import shutil
import stat
import subprocess
import tarfile
import uuid

import pytest

from conftest import Client, Ctr, mounted
from containerd_py.api.containerd.services import leases_pb2, snapshots_pb2
from containerd_py.types import Mount
from imagebuild import MTIME, Entry, build_image, dir_, docker_archive, file_, hardlink, oci_archive, symlink

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(shutil.which("ctr") is None, reason="ctr (Debian package containerd) not installed")]

BUSYBOX = "/bin/busybox"
NAME = "docker.io/library/pytest-busybox:latest"


def busybox_layers():
    if not os.path.exists(BUSYBOX):
        pytest.skip("busybox-static is not installed")
    with open(BUSYBOX, "rb") as f:
        bb = f.read()
    return [
        [dir_("bin"), file_("bin/busybox", bb, 0o755), symlink("bin/sh", "busybox"), dir_("etc"),
         file_("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"), file_("etc/old", b"old"), dir_("var", 0o755),
         dir_("var/cache"), file_("var/cache/a", b"a")],
        [file_("etc/.wh.old"), dir_("var/cache"), file_("var/cache/.wh..wh..opq"), file_("var/cache/b", b"b"),
         dir_("bin"), file_("bin/true", b"#!/bin/sh\n", 0o755), hardlink("bin/false", "bin/true"),
         dir_("home", 0o750, uid=1000, gid=1000),
         file_("home/x", b"x", 0o600, uid=1000, gid=1000), Entry("dev-null", tarfile.CHRTYPE, mode=0o666,
                                                                 devmajor=1, devminor=3)],
    ]


def chain_id(diff_ids: list[str]) -> str:
    chain = diff_ids[0]
    for d in diff_ids[1:]:
        chain = "sha256:" + hashlib.sha256(f"{chain} {d}".encode()).hexdigest()
    return chain


def rootfs_tree(address: str, ns: str, parent: str) -> dict[str, tuple]:
    """Every path of the image's unpacked root with its metadata, seen through a view's mounts."""
    client = Client(address)
    key = f"view-{uuid.uuid4().hex}"
    # Leased, or containerd's garbage collector may take the view while we look.
    client.leases.Create(leases_pb2.CreateRequest(id=key), metadata=client.md(ns))
    md = client.md(ns) + [("containerd-lease", key)]
    try:
        mounts = client.snapshots.View(snapshots_pb2.ViewSnapshotRequest(snapshotter="overlayfs", key=key,
                                                                         parent=parent), metadata=md).mounts
        tree = {}
        with mounted([Mount(m.type, m.source, list(m.options)) for m in mounts]) as root:
            for d, dirs, files in os.walk(root):
                for name in dirs + files:
                    path = os.path.join(d, name)
                    st = os.lstat(path)
                    extra = os.readlink(path) if stat.S_ISLNK(st.st_mode) else (
                        hashlib.sha256(open(path, "rb").read()).hexdigest() if stat.S_ISREG(st.st_mode) else
                        st.st_rdev)
                    # Directories that unpacking creates or fills get the time of the unpack.
                    mtime = int(st.st_mtime) if int(st.st_mtime) == MTIME else "unpack time"
                    tree[os.path.relpath(path, root)] = (stat.filemode(st.st_mode), st.st_uid, st.st_gid, mtime,
                                                         st.st_nlink, extra)
        client.snapshots.Remove(snapshots_pb2.RemoveSnapshotRequest(snapshotter="overlayfs", key=key), metadata=md)
        return tree
    finally:
        client.leases.Delete(leases_pb2.DeleteRequest(id=key), metadata=client.md(ns))
        client.close()


def content_table(ctr: Ctr) -> list[tuple[str, ...]]:
    """`ctr content ls` without its AGE column."""
    rows = [line.split("\t") for line in ctr("content", "ls").stdout.splitlines()[1:]]
    # Labels print in Go map order, which is random.
    return sorted((r[0], r[1], ",".join(sorted(r[-1].split(",")))) for r in rows)


def normalized(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.splitlines()]


# -- against either daemon ---------------------------------------------------

def test_version(ctr):
    out = ctr("version").stdout
    assert re.search(r"Server:\n\s+Version:\s+\S+\n\s+Revision:\s+\S+\n\s+UUID: [0-9a-f-]{36}", out), out


def test_plugins_ls_shows_both_snapshotters(ctr):
    lines = normalized(ctr("plugins", "ls").stdout)
    assert "io.containerd.snapshotter.v1 overlayfs linux/amd64 ok" in lines
    assert "io.containerd.snapshotter.v1 native linux/amd64 ok" in lines
    assert "io.containerd.content.v1 content - ok" in lines


def test_namespaces(ctr, ns):
    other = ns + "-made"
    ctr("namespaces", "create", other, "team=a", "tier=b")
    assert f"{other} team=a,tier=b" in normalized(ctr("namespaces", "ls").stdout)
    ctr("namespaces", "label", other, "tier=")
    assert f"{other} team=a" in normalized(ctr("namespaces", "ls").stdout)
    assert ctr("namespaces", "rm", other).stdout.split() == [other]
    assert other not in ctr("namespaces", "ls", "-q").stdout.split()


def test_content_ingest_get_label_rm(ctr, tmp_path):
    data = os.urandom(300_000)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    (tmp_path / "blob").write_bytes(data)
    with open(tmp_path / "blob", "rb") as f:
        result = subprocess.run(["ctr", "--address", ctr.address, "-n", ctr.ns, "content", "ingest",
                                 "--expected-size", str(len(data)), "--expected-digest", digest, "my-ref"],
                                stdin=f, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr
    got = subprocess.run(["ctr", "--address", ctr.address, "-n", ctr.ns, "content", "get", digest],
                         capture_output=True, timeout=120)
    assert got.stdout == data
    ctr("content", "label", digest, "a=b")
    assert content_table(ctr) == [(digest, "300kB", "a=b")]
    ctr("content", "rm", digest)
    assert content_table(ctr) == []


def test_snapshots_prepare_mounts_commit_rm(ctr, tmp_path):
    ctr("snapshots", "prepare", "base-active")
    ctr("snapshots", "commit", "base", "base-active")
    ctr("snapshots", "prepare", "child", "base")
    assert normalized(ctr("snapshots", "ls").stdout) == ["KEY PARENT KIND", "base Committed", "child base Active"]
    mount_cmd = ctr("snapshots", "mounts", str(tmp_path), "child").stdout.strip()
    assert mount_cmd.startswith(f"mount -t overlay overlay {tmp_path} -o ") and "lowerdir=" in mount_cmd
    failed = ctr("snapshots", "rm", "base", check=False)
    assert failed.returncode != 0 and "failed precondition" in failed.stderr
    ctr("snapshots", "rm", "child")
    ctr("snapshots", "rm", "base")
    assert normalized(ctr("snapshots", "ls").stdout) == ["KEY PARENT KIND"]


@pytest.mark.parametrize("archive", [oci_archive, docker_archive])
def test_images_import_ls_rm(ctr, tmp_path, archive):
    image = build_image(busybox_layers())
    (tmp_path / "image.tar").write_bytes(archive(image, NAME))
    out = ctr("images", "import", str(tmp_path / "image.tar")).stdout
    assert f"unpacking {NAME} (sha256:" in out and out.rstrip().endswith("done")
    (row,) = [line for line in normalized(ctr("images", "ls").stdout)[1:]]
    assert row.startswith(f"{NAME} ") and "linux/amd64" in row
    snapshots = normalized(ctr("snapshots", "ls").stdout)
    assert f"{chain_id(image.diff_ids)} {image.diff_ids[0]} Committed" in snapshots
    # A second import finds everything present and changes nothing.
    ctr("images", "import", str(tmp_path / "image.tar"))
    assert normalized(ctr("snapshots", "ls").stdout) == snapshots
    assert ctr("images", "rm", NAME).stdout.split() == [NAME]
    assert normalized(ctr("images", "ls").stdout) == ["REF TYPE DIGEST SIZE PLATFORMS LABELS"]
    missing = ctr("images", "rm", NAME, check=False)
    assert "not found" in missing.stderr


def test_namespace_holding_images_cannot_be_removed(ctr, tmp_path):
    (tmp_path / "image.tar").write_bytes(oci_archive(build_image([[file_("f", b"x")]]), NAME))
    ctr("images", "import", "--no-unpack", str(tmp_path / "image.tar"))
    failed = Ctr(ctr.address, "default")("namespaces", "rm", ctr.ns, check=False)
    assert failed.returncode != 0 and "must be empty" in failed.stderr


# -- differential ----------------------------------------------------------

def assert_same_content(ours: Ctr, theirs: Ctr) -> None:
    """Content lists match once both garbage collectors have run: the archive's
    index goes then, as only the import's lease held it."""
    for c in (ours, theirs):
        client = Client(c.address)
        try:
            client.leases.Create(leases_pb2.CreateRequest(id="collect"), metadata=client.md(c.ns))
            client.leases.Delete(leases_pb2.DeleteRequest(id="collect", sync=True), metadata=client.md(c.ns))
        finally:
            client.close()
    assert content_table(ours) == content_table(theirs)


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_import_unpacks_the_same_rootfs_as_containerd(both, compression, tmp_path):
    ours, theirs = both
    image = build_image(busybox_layers(), compression=compression)
    (tmp_path / "image.tar").write_bytes(oci_archive(image, NAME))
    for c in both:
        c("images", "import", str(tmp_path / "image.tar"))
    assert normalized(ours("images", "ls").stdout) == normalized(theirs("images", "ls").stdout)
    assert_same_content(ours, theirs)
    assert normalized(ours("snapshots", "ls").stdout) == normalized(theirs("snapshots", "ls").stdout)
    top = chain_id(image.diff_ids)
    assert rootfs_tree(ours.address, ours.ns, top) == rootfs_tree(theirs.address, theirs.ns, top)


def test_docker_archive_import_matches_containerd(both, tmp_path):
    ours, theirs = both
    (tmp_path / "image.tar").write_bytes(docker_archive(build_image(busybox_layers(), compression="none"), NAME))
    outputs = [c("images", "import", str(tmp_path / "image.tar")).stdout for c in both]
    assert outputs[0] == outputs[1]
    assert normalized(ours("images", "ls").stdout) == normalized(theirs("images", "ls").stdout)
    assert_same_content(ours, theirs)


def test_snapshot_mounts_match_containerd(both, tmp_path):
    def run(c):
        c("snapshots", "prepare", "a-active")
        first = c("snapshots", "mounts", str(tmp_path), "a-active").stdout
        c("snapshots", "commit", "a", "a-active")
        c("snapshots", "prepare", "b", "a")
        c("snapshots", "view", "v", "a")
        lines = [first] + [c("snapshots", "mounts", str(tmp_path), k).stdout for k in ("b", "v")]
        return [re.sub(r"/[^ ,:]*/io\.containerd\.snapshotter\.v1\.overlayfs/snapshots/\d+", "<sn>", line)
                for line in lines]
    assert run(both[0]) == run(both[1])


def test_errors_match_containerd(both):
    def run(c):
        results = [c(*args, check=False) for args in (
            ("images", "rm", "nope"), ("snapshots", "rm", "nope"), ("snapshots", "prepare", "x", "nope"),
            ("namespaces", "create", "bad/name"), ("content", "rm", "sha256:" + "0" * 64))]
        return [(r.returncode, re.sub(r'time="[^"]*" ', "", r.stderr).strip()) for r in results]
    assert run(both[0]) == run(both[1])


def test_a_lease_without_an_id_gets_one_made_up(ctr):
    """ctr sends no id; containerd's leases service makes one (leases.WithRandomID)."""
    made = ctr("leases", "create").stdout.strip()
    assert re.fullmatch(r"\d{1,9}-[A-Za-z0-9_-]{4}", made)
    assert made in ctr("leases", "ls", "-q").stdout.split()
    ctr("leases", "rm", made)
