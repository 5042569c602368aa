"""Applying layer tars onto a directory: OCI semantics, and hostile layers that
must not write outside it."""
import hashlib
import io
import os
import stat
import subprocess
import sys
import tarfile

import pytest

from conftest import Ctr
from containerd_py import errors
from containerd_py.diff.layer import apply_layer
from imagebuild import Entry, build_image, compress, dir_, file_, hardlink, layer_tar, oci_archive, symlink

pytestmark = pytest.mark.root


@pytest.fixture
def box(tmp_path):
    """root: where layers are applied; outside: a sibling no layer may touch."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret").write_text("untouched")
    yield root, outside
    assert sorted(os.listdir(outside)) == ["secret"]
    assert (outside / "secret").read_text() == "untouched"


def apply(root, entries, compression="none"):
    return apply_layer(str(root), io.BytesIO(compress(layer_tar(entries), compression)))


@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
def test_returns_digest_and_size_of_uncompressed_tar(box, compression):
    root, _ = box
    entries = [dir_("etc"), file_("etc/hostname", b"box\n")]
    raw = layer_tar(entries)
    digest, size = apply(root, entries, compression)
    assert digest == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert size == len(raw)
    assert (root / "etc" / "hostname").read_bytes() == b"box\n"


def test_trailing_padding_counts_towards_digest(box):
    root, _ = box
    raw = layer_tar([file_("a", b"x")]) + b"\0" * 4096
    digest, size = apply_layer(str(root), io.BytesIO(raw))
    assert (digest, size) == ("sha256:" + hashlib.sha256(raw).hexdigest(), len(raw))


def test_metadata_is_kept(box):
    root, _ = box
    apply(root, [
        dir_("d", mode=0o750, uid=1000, gid=1001, mtime=1_000_000),
        file_("d/suid", b"#!", mode=0o4755, uid=1000, gid=1001, mtime=1_234_567),
        symlink("d/link", "suid", uid=7, gid=8, mtime=1_111_111),
        Entry("d/fifo", tarfile.FIFOTYPE, mode=0o600),
        Entry("d/null", tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=3),
        file_("d/cap", b"", pax={"SCHILY.xattr.user.test": "value"}),
    ])
    d = os.lstat(root / "d")
    assert (stat.S_IMODE(d.st_mode), d.st_uid, d.st_gid, d.st_mtime) == (0o750, 1000, 1001, 1_000_000)
    f = os.lstat(root / "d" / "suid")
    assert (stat.S_IMODE(f.st_mode), f.st_uid, f.st_gid, f.st_mtime) == (0o4755, 1000, 1001, 1_234_567)
    link = os.lstat(root / "d" / "link")
    assert stat.S_ISLNK(link.st_mode) and os.readlink(root / "d" / "link") == "suid"
    assert (link.st_uid, link.st_gid, link.st_mtime) == (7, 8, 1_111_111)
    assert stat.S_ISFIFO(os.lstat(root / "d" / "fifo").st_mode)
    null = os.lstat(root / "d" / "null")
    assert stat.S_ISCHR(null.st_mode) and (os.major(null.st_rdev), os.minor(null.st_rdev)) == (1, 3)
    assert os.getxattr(root / "d" / "cap", "user.test") == b"value"


def test_hardlinks_share_an_inode(box):
    root, _ = box
    apply(root, [file_("a", b"data"), hardlink("b", "a"), dir_("sub"), hardlink("sub/c", "/a")])
    inodes = {os.lstat(root / p).st_ino for p in ("a", "b", "sub/c")}
    assert len(inodes) == 1 and os.lstat(root / "a").st_nlink == 3


def test_whiteouts_remove_lower_entries(box):
    root, _ = box
    apply(root, [dir_("d"), file_("d/gone", b"1"), file_("d/kept", b"2"), dir_("tree"), file_("tree/x", b"3")])
    apply(root, [file_("d/.wh.gone"), file_(".wh.tree"), file_("d/.wh.missing")])
    assert sorted(os.listdir(root)) == ["d"]
    assert sorted(os.listdir(root / "d")) == ["kept"]


def test_opaque_whiteout_keeps_only_this_layers_entries(box):
    root, _ = box
    apply(root, [dir_("d"), file_("d/old1", b"1"), dir_("d/old2")])
    apply(root, [dir_("d"), file_("d/new", b"n"), file_("d/.wh..wh..opq")])
    assert sorted(os.listdir(root / "d")) == ["new"]


def test_a_file_replaces_a_directory_and_a_directory_merges(box):
    root, _ = box
    apply(root, [dir_("x"), file_("x/inner"), dir_("keep"), file_("keep/a", b"a")])
    apply(root, [file_("x", b"now a file"), dir_("keep", mode=0o700), file_("keep/b", b"b")])
    assert (root / "x").read_bytes() == b"now a file"
    assert sorted(os.listdir(root / "keep")) == ["a", "b"]
    assert stat.S_IMODE(os.lstat(root / "keep").st_mode) == 0o700


def test_missing_parents_are_created(box):
    root, _ = box
    apply(root, [file_("a/b/c", b"deep")])
    assert (root / "a" / "b" / "c").read_bytes() == b"deep"


# -- hostile layers ---------------------------------------------------------

@pytest.mark.parametrize("name", ["../outside/secret", "/../../outside/secret", "a/../../outside/secret"])
def test_dotdot_and_absolute_paths_stay_inside(box, name):
    root, _ = box
    apply(root, [file_(name, b"pwned")])
    assert (root / "outside" / "secret").read_bytes() == b"pwned"


def test_absolute_path_lands_under_root(box):
    root, outside = box
    apply(root, [file_(str(outside / "new"), b"pwned")])
    assert (root / str(outside / "new").lstrip("/")).read_bytes() == b"pwned"


@pytest.mark.parametrize("target", ["ABS", "../../..", "../outside-link-target"])
def test_writes_through_symlinks_stay_inside(box, target):
    root, outside = box
    link_target = str(outside) if target == "ABS" else target
    apply(root, [symlink("escape", link_target), file_("escape/secret", b"pwned"), file_("escape/new", b"pwned")])
    # The link itself is kept verbatim; what was written went under root.
    assert os.readlink(root / "escape") == link_target
    written = [os.path.join(d, f) for d, _, files in os.walk(root) for f in files
               if not os.path.islink(os.path.join(d, f))]
    assert sorted(os.path.basename(p) for p in written) == ["new", "secret"]
    assert all(open(p, "rb").read() == b"pwned" for p in written)


def test_symlink_chain_to_outside_stays_inside(box):
    root, outside = box
    apply(root, [symlink("a", "b"), symlink("b", "../../" + str(outside).lstrip("/")), file_("a/new", b"pwned")])
    assert (root / str(outside).lstrip("/") / "new").read_bytes() == b"pwned"


def test_replacing_a_symlinked_file_does_not_follow_it(box):
    root, outside = box
    apply(root, [symlink("f", str(outside / "secret"))])
    apply(root, [file_("f", b"replaced")])
    assert not os.path.islink(root / "f") and (root / "f").read_bytes() == b"replaced"


@pytest.mark.parametrize("linkname", ["../outside/secret", "ABS"])
def test_hardlink_to_outside_is_refused(box, linkname):
    root, outside = box
    name = str(outside / "secret") if linkname == "ABS" else linkname
    with pytest.raises(errors.InvalidArgument, match="hard link target"):
        apply(root, [hardlink("evil", name)])
    assert os.lstat(outside / "secret").st_nlink == 1


def test_hardlink_through_symlink_to_outside_is_refused(box):
    root, outside = box
    with pytest.raises(errors.InvalidArgument, match="does not exist"):
        apply(root, [symlink("out", str(outside)), hardlink("evil", "out/secret")])
    assert os.lstat(outside / "secret").st_nlink == 1


def test_device_nodes_are_made_inside(box):
    root, _ = box
    apply(root, [Entry("../dev/sda", tarfile.BLKTYPE, mode=0o660, devmajor=8, devminor=0)])
    st = os.lstat(root / "dev" / "sda")
    assert stat.S_ISBLK(st.st_mode) and os.major(st.st_rdev) == 8


def test_whiteout_cannot_delete_outside(box):
    root, outside = box
    apply(root, [symlink("out", str(outside)), file_("out/.wh.secret"), file_("../outside/.wh.secret")])


HOSTILE_WHITEOUTS = [".wh.", ".wh..", ".wh...", "d/.wh.", "d/.wh..", "d/.wh...", "d/e/../.wh..."]


@pytest.mark.parametrize("name", HOSTILE_WHITEOUTS)
def test_a_whiteout_of_the_directory_or_its_parent_is_refused(box, name):
    """`.wh..` would remove the directory it is in, `.wh...` its parent; containerd refuses both."""
    root, _ = box
    apply(root, [dir_("d"), file_("d/keep", b"k")])
    with pytest.raises(errors.InvalidArgument, match=r"^invalid whiteout name: \.wh\.\.{0,2}: invalid archive"):
        apply(root, [file_(name)])
    assert (root / "d" / "keep").read_bytes() == b"k"


@pytest.mark.parametrize("name", HOSTILE_WHITEOUTS)
def test_overlay_mode_refuses_the_same_whiteouts(box, name):
    root, outside = box
    upper = root / "upper"
    (upper / "d").mkdir(parents=True)
    with pytest.raises(errors.InvalidArgument, match="invalid whiteout name"):
        apply_layer(str(upper), io.BytesIO(layer_tar([file_(name)])), [str(outside)])
    assert os.listdir(upper) == ["d"] and os.listdir(upper / "d") == []


def test_a_failing_entry_is_named_without_the_host_path(box):
    root, _ = box
    with pytest.raises(errors.Unknown) as e:
        apply(root, [file_("n" * 300)])
    assert str(e.value) == f'layer entry "{"n" * 300}": file name too long: unknown'


def test_symlink_loop_is_an_error(box):
    root, _ = box
    with pytest.raises(errors.InvalidArgument, match="too many levels"):
        apply(root, [symlink("a", "b"), symlink("b", "a"), file_("a/x")])


@pytest.mark.parametrize("data", [b"not a tar at all" * 100, compress(b"x" * 1000, "gzip")[:20],
                                  b"\x28\xb5\x2f\xfd" + b"not a zstd frame" * 100])
def test_garbage_is_an_invalid_argument(box, data):
    root, _ = box
    with pytest.raises(errors.InvalidArgument, match="invalid layer"):
        apply_layer(str(root), io.BytesIO(data))


# -- straight into an overlay upper directory ------------------------------

def test_overlay_mode_writes_overlayfs_whiteouts(tmp_path):
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    apply(lower, [dir_("d", mode=0o750, uid=5, gid=6), file_("d/a"), file_("d/b"), dir_("o"), file_("o/x")])
    digest, _ = apply_layer(str(upper), io.BytesIO(layer_tar([file_("d/.wh.a"), dir_("o"),
                                                               file_("o/.wh..wh..opq"), file_("o/y")])),
                            [str(lower)])
    assert digest.startswith("sha256:")
    whiteout = os.lstat(upper / "d" / "a")
    assert stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == 0
    parent = os.lstat(upper / "d")  # made for the whiteout, like the lower directory it extends
    assert (stat.S_IMODE(parent.st_mode), parent.st_uid, parent.st_gid) == (0o750, 5, 6)
    assert os.getxattr(upper / "o", "trusted.overlay.opaque") == b"y"
    assert sorted(os.listdir(upper / "o")) == ["y"] and sorted(os.listdir(upper)) == ["d", "o"]
    assert sorted(os.listdir(lower / "d")) == ["a", "b"]  # lowers are only read


def test_overlay_mode_keeps_hostile_paths_inside_the_upper_dir(box):
    root, outside = box
    upper = root / "upper"
    upper.mkdir()
    apply_layer(str(upper), io.BytesIO(layer_tar([symlink("l", str(outside)), file_("l/.wh.secret"),
                                                  file_("../../outside/.wh..wh..opq")])), [str(outside)])
    assert stat.S_ISCHR(os.lstat(upper / str(outside).lstrip("/") / "secret").st_mode)


# -- through a daemon ------------------------------------------------------

def bad_whiteout_archive(tmp_path) -> str:
    image = build_image([[dir_("d"), file_("d/keep", b"k")], [file_("d/.wh..")]], compression="none")
    path = tmp_path / "bad.tar"
    path.write_bytes(oci_archive(image, "docker.io/library/bad-whiteout:latest"))
    return str(path)


def active_snapshots(c) -> list[str]:
    return [line for line in c("snapshots", "ls").stdout.splitlines() if line.endswith(" Active")]


def test_ctr_import_of_a_bad_whiteout_fails_with_containerds_words(ctr, tmp_path):
    """ctr unpacks through the Diff service; the failed layer's snapshot is removed."""
    result = ctr("images", "import", bad_whiteout_archive(tmp_path), check=False)
    assert result.returncode == 1
    assert "invalid whiteout name: .wh..: invalid archive" in result.stderr, result.stderr
    assert not active_snapshots(ctr)


def test_in_daemon_import_of_a_bad_whiteout_leaves_no_snapshot(daemon, ns, tmp_path):
    logged_before = len(daemon.log())
    result = subprocess.run([sys.executable, "-m", "containerd_py.client", "-a", daemon.address, "-n", ns, "import",
                             bad_whiteout_archive(tmp_path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "invalid whiteout name: .wh..: invalid archive" in result.stderr
    assert not active_snapshots(Ctr(daemon.address, ns))
    assert "Traceback" not in daemon.log()[logged_before:]
