"""The changes between two trees (moby's ChangesDirs) and their layer tar:
pure file-system logic, on directories the test makes."""
import io
import os
import tarfile

from containerd_py.diff.changes import ADD, DELETE, MODIFY, Change, changes, write_layer
from containerd_py.diff.tarstream import tar_stream, walk


def _tree(root, files: dict[str, str | None]):
    for path, text in files.items():
        full = os.path.join(root, path)
        if text is None:
            os.makedirs(full, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w") as f:
                f.write(text)


def _pair(tmp_path, old: dict, new: dict):
    _tree(tmp_path / "old", old)
    _tree(tmp_path / "new", new)
    for root in ("old", "new"):  # equal times for what the test does not change
        for path, _ in walk(str(tmp_path / root), ""):
            os.utime(path, ns=(0, 0), follow_symlinks=False)
    return str(tmp_path / "new"), str(tmp_path / "old")


def test_added_deleted_and_modified_paths_with_their_directories_listed_first(tmp_path):
    new, old = _pair(tmp_path, {"etc/passwd": "root", "etc/group": "root", "bin/sh": "x", "gone/a": "a"},
                     {"etc/passwd": "root:x", "etc/group": "root", "bin/sh": "x", "tmp/new/file": "n"})
    assert changes(new, old) == [
        Change("/etc", MODIFY), Change("/etc/passwd", MODIFY), Change("/gone", DELETE),
        Change("/tmp", ADD), Change("/tmp/new", ADD), Change("/tmp/new/file", ADD)]


def test_a_directory_whose_mtime_alone_changed_is_no_change(tmp_path):
    new, old = _pair(tmp_path, {"var/lib": None}, {"var/lib": None})
    os.utime(os.path.join(new, "var"), ns=(5, 5))
    assert changes(new, old) == []
    os.chmod(os.path.join(new, "var"), 0o700)
    assert changes(new, old) == [Change("/var", MODIFY)]


def test_ignored_paths_are_taken_as_unchanged(tmp_path):
    new, old = _pair(tmp_path, {"etc/passwd": "root"}, {"etc/passwd": "root", "etc/hostname": "", "proc": None})
    assert changes(new, old, frozenset({"/etc/hostname", "/proc"})) == []


def test_the_layer_has_the_new_entries_and_whiteouts(tmp_path):
    new, old = _pair(tmp_path, {"etc/passwd": "root", "gone": "a"}, {"etc/passwd": "root:x", "etc/new": "n"})
    os.link(os.path.join(new, "etc/new"), os.path.join(new, "etc/zlink"))
    out = io.BytesIO()
    write_layer(new, changes(new, old), out)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tf:
        members = {m.name: m for m in tf.getmembers()}
        assert list(members) == ["etc", "etc/new", "etc/passwd", "etc/zlink", ".wh.gone"]
        assert tf.extractfile("etc/passwd").read() == b"root:x"
        assert members["etc/zlink"].islnk() and members["etc/zlink"].linkname == "etc/new"
        assert members["etc"].isdir()


def test_a_tree_streams_as_tar_with_symlinks_kept(tmp_path):
    _tree(tmp_path / "d", {"a/b": "bee", "c": "sea"})
    os.symlink("/nowhere", tmp_path / "d" / "link")
    data = b"".join(tar_stream(walk(str(tmp_path / "d"), "d")))
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        assert tf.getnames() == ["d", "d/a", "d/a/b", "d/c", "d/link"]
        assert tf.getmember("d/link").linkname == "/nowhere"
        assert tf.extractfile("d/a/b").read() == b"bee"


def test_docker_cp_modes_carry_the_file_type_as_pkg_archive_writes_them(tmp_path):
    """dockerd's cp/export tars (fillGo18FileTypeBits) against the layer's bare permission bits."""
    _tree(tmp_path / "d", {"a/" + "long" * 40: "x", "c": "sea"})
    os.chmod(tmp_path / "d" / "c", 0o4750)
    os.symlink("/nowhere", tmp_path / "d" / "link")
    for type_bits, modes in ((True, {"d": 0o40755, "d/c": 0o104750, "d/link": 0o120777}),
                             (False, {"d": 0o755, "d/c": 0o4750, "d/link": 0o777})):
        os.chmod(tmp_path / "d", 0o755)
        data = b"".join(tar_stream(walk(str(tmp_path / "d"), "d"), type_bits=type_bits))
        with tarfile.open(fileobj=io.BytesIO(data)) as tf:   # checksums valid, PAX names intact
            assert {m.name: m.mode for m in tf.getmembers() if m.name in modes} == modes
            assert tf.extractfile("d/a/" + "long" * 40).read() == b"x"
