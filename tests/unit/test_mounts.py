"""Mount options and confined path resolution (no root needed)."""
import os

import pytest

from runpy_oci import kernel as k
from runpy_oci.mounts import MountOptions, Root


def test_options_split_into_flags_propagation_and_data():
    o = MountOptions(["nosuid", "noexec", "mode=755", "size=65536k", "rslave", "ro", "tmpcopyup"])
    assert o.flags == k.MS_NOSUID | k.MS_NOEXEC | k.MS_RDONLY
    assert o.propagation == [k.MS_SLAVE | k.MS_REC]
    assert o.data == "mode=755,size=65536k"


def test_later_option_wins_and_clears_are_remembered():
    o = MountOptions(["ro", "rw", "nosuid", "suid"])
    assert o.flags == 0
    assert o.clear & k.MS_RDONLY and o.clear & k.MS_NOSUID


def test_rbind_is_a_recursive_bind():
    o = MountOptions(["rbind"])
    assert o.is_bind and o.flags & k.MS_REC
    assert not MountOptions(["nodev"]).is_bind


@pytest.fixture
def rootfs(tmp_path):
    root = tmp_path / "rootfs"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "evil").symlink_to(outside)
    (root / "up").symlink_to("../../../../..")
    (root / "loop").symlink_to("loop")
    r = Root(str(root))
    yield r, root, outside
    r.close()


def where(fd):
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


def test_ensure_creates_nested_directories(rootfs):
    r, root, _ = rootfs
    assert where(r.ensure("/a/b/c")) == str(root / "a/b/c")
    assert (root / "a/b/c").is_dir()


def test_absolute_symlink_stays_inside(rootfs):
    r, root, outside = rootfs
    got = where(r.ensure("/evil/x"))
    assert got.startswith(str(root) + "/"), got
    assert list(outside.iterdir()) == []


def test_dotdot_symlink_stays_inside(rootfs):
    r, root, _ = rootfs
    assert where(r.ensure("/up/etc/file", is_dir=False)) == str(root / "etc/file")
    assert (root / "etc/file").is_file()


def test_dotdot_in_path_cannot_climb_out(rootfs):
    r, root, _ = rootfs
    assert where(r.ensure("/../../x")) == str(root / "x")


def test_symlink_loop_is_an_error(rootfs):
    r, _, _ = rootfs
    with pytest.raises(OSError):
        r.ensure("/loop/x")


def test_open_resolves_in_root(rootfs):
    r, root, _ = rootfs
    (root / "tmp/rt").mkdir(parents=True)
    (root / "abs").symlink_to("/tmp/rt")
    assert where(r.open("/abs")) == str(root / "tmp/rt")
