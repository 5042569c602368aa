"""One suite for the Snapshotter interface, run against every implementation."""
import io
import os

import pytest

from conftest import mounted
from containerd_py import errors
from containerd_py.diff.layer import apply_layer
from containerd_py.snapshots.native import NativeSnapshotter
from containerd_py.snapshots.overlay import OverlaySnapshotter
from containerd_py.snapshots.snapshotter import Info, Kind
from imagebuild import dir_, file_, hardlink, layer_tar, symlink

pytestmark = pytest.mark.root
NS = "default"


@pytest.fixture(params=[OverlaySnapshotter, NativeSnapshotter], ids=["overlayfs", "native"])
def sn(request, tmp_path):
    snapshotter = request.param(str(tmp_path / "root"))
    yield snapshotter
    snapshotter.close()


def write(sn, key, files: dict[str, bytes], parent=""):
    """Prepares key on parent, writes files through its mounts, and returns the mounts."""
    mounts = sn.prepare(NS, key, parent)
    with mounted(mounts) as root:
        for name, data in files.items():
            os.makedirs(os.path.dirname(os.path.join(root, name)), exist_ok=True)
            with open(os.path.join(root, name), "wb") as f:
                f.write(data)
    return mounts


def read_tree(sn, key) -> dict[str, bytes]:
    with mounted(sn.mounts(NS, key)) as root:
        return {os.path.relpath(os.path.join(d, f), root): open(os.path.join(d, f), "rb").read()
                for d, _, files in os.walk(root) for f in files}


def test_layers_stack_through_real_mounts(sn):
    write(sn, "a-active", {"a": b"1", "shared": b"from a"})
    sn.commit(NS, "a", "a-active")
    write(sn, "b-active", {"b": b"2", "shared": b"from b"}, parent="a")
    sn.commit(NS, "b", "b-active")
    sn.view(NS, "v", "b")
    assert read_tree(sn, "v") == {"a": b"1", "b": b"2", "shared": b"from b"}
    sn.prepare(NS, "c", "b")
    assert read_tree(sn, "c") == {"a": b"1", "b": b"2", "shared": b"from b"}


def test_changes_in_a_child_do_not_reach_the_parent(sn):
    write(sn, "p-active", {"f": b"parent"})
    sn.commit(NS, "p", "p-active")
    write(sn, "child", {"f": b"child"}, parent="p")
    sn.view(NS, "pv", "p")
    assert read_tree(sn, "pv") == {"f": b"parent"}
    assert read_tree(sn, "child") == {"f": b"child"}


def test_views_are_read_only(sn):
    write(sn, "p-active", {"f": b"x"})
    sn.commit(NS, "p", "p-active")
    with mounted(sn.view(NS, "v", "p")) as root:
        with pytest.raises(OSError):
            open(os.path.join(root, "new"), "wb")


def test_stat_kinds_and_parents(sn):
    sn.prepare(NS, "a-active")
    assert sn.stat(NS, "a-active").kind == Kind.ACTIVE
    sn.commit(NS, "a", "a-active", {"l": "v"})
    info = sn.stat(NS, "a")
    assert (info.kind, info.parent, info.labels) == (Kind.COMMITTED, "", {"l": "v"})
    with pytest.raises(errors.NotFound):
        sn.stat(NS, "a-active")
    sn.view(NS, "v", "a")
    assert (sn.stat(NS, "v").kind, sn.stat(NS, "v").parent) == (Kind.VIEW, "a")


def test_errors_match_containerd(sn):
    sn.prepare(NS, "k")
    with pytest.raises(errors.AlreadyExists):
        sn.prepare(NS, "k")
    with pytest.raises(errors.NotFound, match="parent snapshot nope does not exist"):
        sn.prepare(NS, "x", "nope")
    with pytest.raises(errors.InvalidArgument, match="not committed"):
        sn.prepare(NS, "x", "k")
    with pytest.raises(errors.InvalidArgument):
        sn.prepare(NS, "")
    sn.commit(NS, "c", "k")
    with pytest.raises(errors.NotFound):
        sn.commit(NS, "c2", "k")
    sn.view(NS, "v", "c")
    with pytest.raises(errors.FailedPrecondition, match="not active"):
        sn.commit(NS, "c3", "v")
    with pytest.raises(errors.FailedPrecondition, match="not active or view"):
        sn.mounts(NS, "c")
    sn.prepare(NS, "k2")
    with pytest.raises(errors.AlreadyExists):
        sn.commit(NS, "c", "k2")


def test_remove_refuses_parents_and_frees_the_directory(sn):
    sn.prepare(NS, "p-active")
    sn.commit(NS, "p", "p-active")
    sn.prepare(NS, "child", "p")
    with pytest.raises(errors.FailedPrecondition, match="child"):
        sn.remove(NS, "p")
    before = set(os.listdir(os.path.join(sn.root, "snapshots")))
    sn.remove(NS, "child")
    sn.remove(NS, "p")
    assert len(before) == 2 and os.listdir(os.path.join(sn.root, "snapshots")) == []
    with pytest.raises(errors.NotFound):
        sn.remove(NS, "p")


def test_namespaces_are_separate(sn):
    sn.prepare("one", "k")
    sn.prepare("two", "k")
    assert [i.name for i in sn.walk("one")] == ["k"]
    sn.remove("one", "k")
    assert sn.walk("one") == [] and [i.name for i in sn.walk("two")] == ["k"]
    with pytest.raises(errors.NotFound):
        sn.stat("one", "k")


def test_update_labels_with_paths(sn):
    sn.prepare(NS, "k", labels={"a": "1", "b": "2"})
    updated = sn.update(NS, Info("k", labels={"a": "x", "c": "3"}), ["labels.a", "labels.b"])
    assert updated.labels == {"a": "x"} and sn.stat(NS, "k").labels == {"a": "x"}
    assert sn.update(NS, Info("k", labels={"z": "9"}), []).labels == {"z": "9"}
    with pytest.raises(errors.InvalidArgument, match="cannot update"):
        sn.update(NS, Info("k"), ["parent"])


def test_walk_filters(sn):
    sn.prepare(NS, "a", labels={"role": "x"})
    sn.prepare(NS, "b")
    sn.commit(NS, "b-done", "b")
    assert [i.name for i in sn.walk(NS, ["kind==committed"])] == ["b-done"]
    assert [i.name for i in sn.walk(NS, ["labels.role==x"])] == ["a"]
    assert [i.name for i in sn.walk(NS)] == ["a", "b-done"]


def test_usage_counts_only_the_snapshot_itself(sn):
    write(sn, "a-active", {"big": b"x" * 100_000})
    assert sn.usage(NS, "a-active").size >= 100_000
    sn.commit(NS, "a", "a-active")
    committed = sn.usage(NS, "a")
    assert committed.size >= 100_000 and committed.inodes >= 2
    write(sn, "b", {"small": b"y"}, parent="a")
    if isinstance(sn, OverlaySnapshotter):
        assert sn.usage(NS, "b").size < 100_000
    else:  # native copies the parent
        assert sn.usage(NS, "b").size >= 100_000


def test_cleanup_removes_orphan_directories(sn):
    sn.prepare(NS, "k")
    orphan = os.path.join(sn.root, "snapshots", "rm-999")
    os.makedirs(os.path.join(orphan, "fs"))
    sn.cleanup()
    assert not os.path.exists(orphan) and sn.stat(NS, "k").kind == Kind.ACTIVE


def test_records_survive_reopening(sn, tmp_path):
    first = type(sn)(str(tmp_path / "reopened"))
    first.prepare(NS, "k", labels={"a": "b"})
    first.close()
    again = type(sn)(str(tmp_path / "reopened"))
    try:
        assert again.stat(NS, "k").labels == {"a": "b"}
    finally:
        again.close()


def test_layers_applied_through_mounts(sn):
    """Applying layers as containerd's unpack does: prepare, apply onto the mounts, commit."""
    layers = [
        [dir_("etc"), file_("etc/a", b"a"), file_("etc/b", b"b"), dir_("opq"), file_("opq/old", b"o"),
         file_("lib", b"L")],
        [file_("etc/.wh.a"), dir_("opq"), file_("opq/.wh..wh..opq"), file_("opq/new", b"n"),
         hardlink("etc/b2", "etc/b"), symlink("etc/link", "b")],
    ]
    parent = ""
    for i, entries in enumerate(layers):
        with mounted(sn.prepare(NS, f"extract-{i}", parent)) as root:
            apply_layer(root, io.BytesIO(layer_tar(entries)))
        sn.commit(NS, f"layer-{i}", f"extract-{i}")
        parent = f"layer-{i}"
    sn.view(NS, "top", parent)
    with mounted(sn.mounts(NS, "top")) as root:
        tree = sorted(os.path.relpath(os.path.join(d, n), root) for d, dirs, files in os.walk(root)
                      for n in dirs + files)
        assert tree == ["etc", "etc/b", "etc/b2", "etc/link", "lib", "opq", "opq/new"]
        assert os.stat(os.path.join(root, "etc/b")).st_ino == os.stat(os.path.join(root, "etc/b2")).st_ino
        assert os.readlink(os.path.join(root, "etc/link")) == "b"
