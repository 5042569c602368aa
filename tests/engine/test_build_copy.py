"""COPY and ADD's files on temporary trees: Go's wildcards, the destination
under WORKDIR, what the checksum is and is not sensitive to, owners and
modes as dockerd's tar copy leaves them, and a destination's links never
leading out of the image's tree."""
import bz2
import errno
import gzip
import io
import lzma
import os
import stat
import tarfile

import pytest

from engine.builder.copy import CopyError, _has_wildcards, _match_regexp, _normalize_dest, perform_copy, plan_copy, \
    resolve_chown
from engine.builder.copy_tree import is_archive

# Go's path/filepath match_test.go; None: a pattern Go calls bad, which matches nothing
GO_MATCH = [
    ("abc", "abc", True), ("*", "abc", True), ("*c", "abc", True), ("a*", "a", True), ("a*", "abc", True),
    ("a*", "ab/c", False), ("a*/b", "abc/b", True), ("a*/b", "a/c/b", False),
    ("a*b*c*d*e*/f", "axbxcxdxe/f", True), ("a*b*c*d*e*/f", "axbxcxdxexxx/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", False), ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", False),
    ("a*b?c*x", "abxbbxdbxebxczzx", True), ("a*b?c*x", "abxbbxdbxebxczzy", False),
    ("ab[c]", "abc", True), ("ab[b-d]", "abc", True), ("ab[e-g]", "abc", False), ("ab[^c]", "abc", False),
    ("ab[^b-d]", "abc", False), ("ab[^e-g]", "abc", True), ("a\\*b", "a*b", True), ("a\\*b", "ab", False),
    ("a?b", "a☺b", True), ("a[^a]b", "a☺b", True), ("a???b", "a☺b", False), ("a[^a][^a][^a]b", "a☺b", False),
    ("[a-ζ]*", "α", True), ("*[a-ζ]", "A", False), ("a?b", "a/b", False), ("a*b", "a/b", False),
    ("[\\]a]", "]", True), ("[\\-]", "-", True), ("[x\\-]", "x", True), ("[x\\-]", "-", True),
    ("[x\\-]", "z", False), ("[\\-x]", "x", True), ("[\\-x]", "-", True), ("[\\-x]", "a", False),
    ("[]a]", "]", None), ("[-]", "-", None), ("[x-]", "x", None), ("[-x]", "x", None), ("\\", "a", None),
    ("[a-b-c]", "a", None), ("[", "a", None), ("[^", "a", None), ("[^bc", "a", None), ("a[", "ab", None),
    ("*x", "xxx", True), ("star[[]1].txt", "star[1].txt", True),
]


@pytest.mark.parametrize("pattern, name, matches", GO_MATCH)
def test_wildcards_match_as_go(pattern, name, matches):
    regexp = _match_regexp(pattern)
    if matches is None:
        assert regexp is None
    else:
        assert (regexp.fullmatch(name) is not None) == matches


def test_a_wildcard_matches_whole_paths_never_the_root(context):
    assert [s.name for s in plan_copy(str(context), ["*"], "/x/", "/").sources] == ["a.txt", "b.txt", "dir"]
    assert [s.name for s in plan_copy(str(context), ["*/?"], "/x/", "/").sources] == ["dir/y"]
    assert [s.name for s in plan_copy(str(context), ["./d*/*"], "/x/", "/").sources] == ["dir/la", "dir/sub", "dir/y"]


def test_escaped_wildcards_are_no_wildcards():
    assert _has_wildcards("a*") and _has_wildcards("x/[ab]") and _has_wildcards("a\\\\?")
    assert not _has_wildcards("a\\*") and not _has_wildcards("plain/name")


@pytest.mark.parametrize("workdir, dest, target", [
    ("/w", "rel/", "/w/rel/"), ("/w", ".", "/w"), ("/w", "./", "/w/"), ("", "x", "/x"), ("/w", "../up", "/up"),
    ("/w", "/abs/../x/", "/abs/../x/"), ("w2", "f", "/w2/f"),
])
def test_relative_destinations_are_under_workdir(workdir, dest, target):
    assert _normalize_dest(workdir, dest) == target


@pytest.fixture
def context(tmp_path):
    ctx = tmp_path / "ctx"
    (ctx / "dir/sub").mkdir(parents=True)
    for name, text in {"a.txt": "hello\n", "b.txt": "bee\n", "dir/y": "y\n", "dir/sub/x": "x\n"}.items():
        (ctx / name).write_text(text)
    os.symlink("../a.txt", ctx / "dir/la")
    return ctx


def test_checksums_name_the_kind_and_history_reads_as_dockerd(context):
    assert plan_copy(str(context), ["a.txt"], "/a.txt", "/").checksum.startswith("file:")
    assert plan_copy(str(context), ["dir"], "/d/", "/").checksum.startswith("dir:")
    multi = plan_copy(str(context), ["a.txt", "b.txt"], "./", "/w")
    assert multi.checksum.startswith("multi:") and multi.target == "/w/"
    assert plan_copy(str(context), ["b.txt", "a.txt"], "./", "/w").checksum != multi.checksum
    assert multi.history("1:2") == f"COPY --chown=1:2{multi.checksum} in ./ "
    wild = plan_copy(str(context), ["*.txt"], "/m/", "/", instruction="ADD")
    assert wild.history() == f"ADD {multi.checksum} in /m/ "


def _checksums(context):
    return [plan_copy(str(context), sources, "/d/", "/").checksum for sources in (["a.txt"], ["dir"], ["."])]


@pytest.mark.parametrize("change, misses", [
    (lambda ctx: os.utime(ctx / "a.txt", (1, 1)), [False, False, False]),
    (lambda ctx: (ctx / "dir/y").write_text("y\n"), [False, False, False]),
    (lambda ctx: (ctx / "dir/y").write_text("Y\n"), [False, True, True]),
    (lambda ctx: (ctx / "dir/sub/x").chmod(0o600), [False, True, True]),
    (lambda ctx: (ctx / "a.txt").write_text("changed\n"), [True, True, True]),  # dir/la resolves to it
    (lambda ctx: (ctx / "dir/y").rename(ctx / "dir/z"), [False, True, True]),
    (lambda ctx: (ctx / "b.txt").unlink(), [False, False, True]),
])
def test_the_checksum_follows_contents_and_metadata_not_mtimes(context, change, misses):
    before = _checksums(context)
    change(context)
    assert [b != a for b, a in zip(before, _checksums(context))] == misses


@pytest.mark.root
def test_the_checksum_sees_owners(context):
    before = _checksums(context)
    os.lchown(context / "dir/sub/x", 5, 5)
    assert [b != a for b, a in zip(before, _checksums(context))] == [False, True, True]


@pytest.mark.parametrize("sources, dest, message", [
    (["nope"], "/x", "COPY failed: file not found in build context or excluded by .dockerignore: "
                     "stat nope: file does not exist"),
    (["./dir/nope"], "/x", "COPY failed: file not found in build context or excluded by .dockerignore: "
                           "stat dir/nope: file does not exist"),
    (["../x"], "/x", "COPY failed: forbidden path outside the build context: ../x ()"),
    (["a.txt/x"], "/x", "COPY failed: forbidden path outside the build context: a.txt/x ()"),
    (["l*"], "/x/", "COPY failed: forbidden path outside the build context: loop ()"),
    (["a.txt", "b.txt"], "/d", "When using COPY with more than one source file, "
                               "the destination must be a directory and end with a /"),
    (["*.txt"], "/d", "When using COPY with more than one source file, "
                      "the destination must be a directory and end with a /"),
    (["*.none"], "/d/", "COPY failed: no source files were specified"),
    (["https://example.com/f"], "/d", "COPY failed: source can't be a URL for COPY"),
])
def test_source_errors_in_dockerds_words(context, sources, dest, message):
    (context / "loop").symlink_to("loop")
    with pytest.raises(CopyError) as err:
        plan_copy(str(context), sources, dest, "/")
    assert str(err.value) == message


def test_an_unreadable_source_is_a_copy_error(context, monkeypatch):
    def failing_read(fd, buffers):
        raise OSError(errno.EIO, os.strerror(errno.EIO), str(context / "dir/y"))

    monkeypatch.setattr(os, "readv", failing_read)
    with pytest.raises(CopyError) as err:
        plan_copy(str(context), ["dir"], "/d/", "/")
    assert str(err.value) == "COPY failed: /dir/y: input/output error"


def test_a_url_for_add_is_a_clear_error(context):
    with pytest.raises(CopyError, match=r'^ADD failed: Get "http://example.com/f": .*no network'):
        plan_copy(str(context), ["a.txt", "http://example.com/f"], "/d/", "/", instruction="ADD", archives=True)


def test_archives_are_known_by_their_contents(tmp_path):
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tf:
        info = tarfile.TarInfo("f")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"x"))
    (tmp_path / "plain").write_bytes(data.getvalue())
    (tmp_path / "zipped.txt").write_bytes(gzip.compress(data.getvalue()))
    (tmp_path / "text.tar").write_text("not a tar\n" * 100)
    (tmp_path / "gz-not-tar.tgz").write_bytes(gzip.compress(b"hello" * 200))
    (tmp_path / "zeros.tar").write_bytes(bytes(1024))
    (tmp_path / "small-blocks").write_bytes(bz2.compress(data.getvalue(), compresslevel=1))
    (tmp_path / "x").write_bytes(lzma.compress(data.getvalue()))
    assert [is_archive(str(tmp_path / n)) for n in ("plain", "zipped.txt", "text.tar", "gz-not-tar.tgz",
                                                    "zeros.tar", "small-blocks", "x")] == \
        [True, True, False, False, False, True, True]


def _write_passwd(root):
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\nuser:x:1000:\nstaff:x:50:\n")


@pytest.mark.parametrize("spec, ids", [
    ("1:2", (1, 2)), ("7", (7, 7)), ("user", (1000, 1000)), ("user:staff", (1000, 50)), ("+5:50", (5, 50)),
    ("0:staff", (0, 50)), ("4294967296:-2", (0, 4294967294)),
])
def test_chown_names_and_numbers(tmp_path, spec, ids):
    _write_passwd(tmp_path)
    assert resolve_chown(str(tmp_path), spec) == ids


def test_chown_errors_in_dockerds_words(tmp_path):
    _write_passwd(tmp_path)
    prefix = "unable to convert uid/gid chown string to host mapping: "
    for spec, message in [("nobody", "can't find uid for user nobody: no such user: nobody"),
                          ("1:nogroup", "can't find gid for group nogroup: no such group: nogroup"),
                          ("1:2:3", "invalid chown string format: 1:2:3"),
                          ("99999999999999999999", "can't find uid for user 99999999999999999999: "
                                                   "no such user: 99999999999999999999")]:
        with pytest.raises(CopyError) as err:
            resolve_chown(str(tmp_path), spec)
        assert str(err.value) == prefix + message
    with pytest.raises(CopyError) as err:
        resolve_chown(str(tmp_path / "nothing"), "user")
    assert str(err.value) == prefix + "can't find uid for user user: open /etc/passwd: no such file or directory"


def test_chown_reads_the_images_passwd_through_its_links(tmp_path):
    _write_passwd(tmp_path / "real")
    (tmp_path / "etc").mkdir()
    os.symlink("/real/etc/passwd", tmp_path / "etc/passwd")
    os.symlink("../real/etc/group", tmp_path / "etc/group")
    assert resolve_chown(str(tmp_path), "user:staff") == (1000, 50)


def _entry(path):
    st = os.lstat(path)
    return stat.filemode(st.st_mode), st.st_uid, st.st_gid, int(st.st_mtime)


@pytest.mark.root
def test_files_are_root_owned_unless_chown_or_from(tmp_path, context):
    os.chown(context / "dir/y", 5, 6)
    os.chmod(context / "dir/y", 0o4755)
    os.utime(context / "dir/y", (1000.7, 1000.7))
    root = tmp_path / "root"
    root.mkdir()
    perform_copy(plan_copy(str(context), ["dir"], "/plain/", "/"), str(root))
    perform_copy(plan_copy(str(context), ["dir"], "/kept/n/", "/", preserve_ownership=True), str(root))
    perform_copy(plan_copy(str(context), ["dir/y"], "/chowned/y", "/"), str(root), (7, 8))
    assert _entry(root / "plain/y") == ("-rwxr-xr-x", 0, 0, 1000)  # the chown clears setuid, as dockerd's
    assert _entry(root / "kept/n/y") == ("-rwsr-xr-x", 5, 6, 1000)
    assert _entry(root / "kept")[1:3] == (0, 0)
    assert _entry(root / "chowned/y")[:3] == ("-rwxr-xr-x", 7, 8)
    assert _entry(root / "chowned")[:3] == ("drwxr-xr-x", 7, 8)  # a file's new parents take its owner
    assert os.readlink(root / "plain/la") == "../a.txt"


@pytest.mark.root
def test_a_directory_copy_replaces_what_is_in_its_way(tmp_path, context):
    root = tmp_path / "root"
    (root / "d/y").mkdir(parents=True)
    (root / "d/y/old").write_text("old")
    os.symlink("/etc", root / "d/sub")
    (root / "d/keep").write_text("keep")
    perform_copy(plan_copy(str(context), ["dir"], "/d", "/"), str(root))
    assert (root / "d/y").read_text() == "y\n" and (root / "d/keep").read_text() == "keep"
    assert not (root / "d/sub").is_symlink() and (root / "d/sub/x").read_text() == "x\n"


@pytest.mark.root
def test_destination_links_stay_inside_the_root(tmp_path, context):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(f"../../../../../../../..{outside}", root / "up")
    os.symlink(str(outside), root / "abs")
    perform_copy(plan_copy(str(context), ["a.txt"], "/up/x", "/"), str(root))
    perform_copy(plan_copy(str(context), ["dir"], "/abs/", "/"), str(root))
    assert os.listdir(outside) == []
    assert (root / str(outside).lstrip("/") / "x").read_text() == "hello\n"
    assert (root / str(outside).lstrip("/") / "sub/x").read_text() == "x\n"


@pytest.mark.root
def test_archive_members_stay_inside_the_destination(tmp_path):
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as tf:
        for name, kind, target in [("esc", tarfile.SYMTYPE, "/"), ("esc/in-esc", tarfile.REGTYPE, ""),
                                   ("../../up", tarfile.REGTYPE, ""), ("/abs/f", tarfile.REGTYPE, ""),
                                   ("hard", tarfile.LNKTYPE, "../../up")]:
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.mtime, info.uid = kind, target, 12345, 3
            tf.addfile(info, io.BytesIO(b"") if kind == tarfile.REGTYPE else None)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "a.bin").write_bytes(data.getvalue())
    root = tmp_path / "root"
    root.mkdir()
    perform_copy(plan_copy(str(ctx), ["a.bin"], "/x", "/", instruction="ADD", archives=True), str(root), (9, 9))
    assert sorted(os.listdir(root / "x")) == ["abs", "esc", "hard", "in-esc", "up"]
    assert os.lstat(root / "x/up").st_nlink == 2 and _entry(root / "x/up")[1:] == (3, 0, 12345)
    assert sorted(os.listdir(root)) == ["x"]


@pytest.mark.root
def test_a_damaged_archive_is_a_copy_error(tmp_path):
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as tf:
        for n in range(50):
            info = tarfile.TarInfo(f"f{n}")
            info.size = 4096
            tf.addfile(info, io.BytesIO(os.urandom(4096)))
    (tmp_path / "cut.tgz").write_bytes(data.getvalue()[:len(data.getvalue()) // 2])
    (tmp_path / "root").mkdir()
    with pytest.raises(CopyError, match="^failed to copy files: Error processing tar file: "):
        perform_copy(plan_copy(str(tmp_path), ["cut.tgz"], "/x/", "/", instruction="ADD", archives=True),
                     str(tmp_path / "root"))


@pytest.mark.root
def test_copy_errors_name_the_path_in_the_image(tmp_path, context):
    root = tmp_path / "root"
    root.mkdir()
    (root / "f").write_text("file")
    with pytest.raises(CopyError) as err:
        perform_copy(plan_copy(str(context), ["dir"], "/f", "/"), str(root))
    assert str(err.value) == "failed to copy files: failed to copy directory: mkdir /f: not a directory"
    with pytest.raises(CopyError) as err:
        perform_copy(plan_copy(str(context), ["a.txt"], "/f/", "/"), str(root))
    assert str(err.value) == "failed to copy files: failed to create new directory: mkdir /f: not a directory"
