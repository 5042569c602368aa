"""A build context received as dockerd's remotecontext receives it: any
compression, streamed into a fresh directory, hostile members kept inside
it, the Dockerfile found (and .dockerignore applied to it) as Detect does."""
import bz2
import gzip
import io
import lzma
import os
import tarfile

import pytest

from engine.builder.context import receive_context
from engine.errors import InvalidParameter, System

pytestmark = pytest.mark.root  # entries keep their owners, as dockerd extracts them

DOCKERFILE = b"FROM busybox\n"


def member(name, data=b"", **fields) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in fields.items():
        setattr(info, key, value)
    return info, data


def tar(*members) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for item in members:
            info, data = item if isinstance(item[0], tarfile.TarInfo) else member(*item)
            tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return out.getvalue()


class Body:
    """A request body: read(n) as the API's Inflow gives it, counting the largest read."""

    def __init__(self, data: bytes):
        self.stream, self.largest = io.BytesIO(data), 0

    def read(self, n: int) -> bytes:
        self.largest = max(self.largest, n)
        return self.stream.read(n)


def receive(tmp_path, data: bytes, dockerfile="Dockerfile"):
    return receive_context(Body(data).read, str(tmp_path), dockerfile)


def files(root) -> dict[str, bytes | str]:
    found = {}
    for directory, dirs, names in os.walk(root):
        for name in names + [d for d in dirs if os.path.islink(os.path.join(directory, d))]:
            path = os.path.join(directory, name)
            rel = os.path.relpath(path, root)
            found[rel] = "-> " + os.readlink(path) if os.path.islink(path) else open(path, "rb").read()
    return found


@pytest.mark.parametrize("compress", [lambda b: b, gzip.compress, bz2.compress, lzma.compress],
                         ids=["plain", "gzip", "bzip2", "xz"])
def test_every_compression_is_detected(tmp_path, compress):
    data = tar(member("Dockerfile", DOCKERFILE, mode=0o600, mtime=1234), member("d/a.txt", b"a", uid=7, gid=8))
    with receive(tmp_path, compress(data)) as context:
        assert context.dockerfile_text == DOCKERFILE.decode() and context.dockerfile_name == "Dockerfile"
        assert files(context.root) == {"Dockerfile": DOCKERFILE, "d/a.txt": b"a"}
        st = os.stat(os.path.join(context.root, "Dockerfile"))
        assert (oct(st.st_mode & 0o777), st.st_mtime) == ("0o600", 1234)
        assert os.stat(os.path.join(context.root, "d/a.txt"))[4:6] == (7, 8)
        root = context.root
    assert not os.path.exists(root)


def test_the_body_is_streamed_not_read_whole(tmp_path):
    body = Body(tar(("Dockerfile", DOCKERFILE), ("big", os.urandom(8 << 20))))
    receive_context(body.read, str(tmp_path), "Dockerfile").close()
    assert body.largest <= 1 << 20


def test_the_directory_for_contexts_is_made_when_missing(tmp_path):
    with receive(tmp_path / "tmp", tar(("Dockerfile", DOCKERFILE))) as context:
        assert os.path.dirname(context.root) == str(tmp_path / "tmp")
    (tmp_path / "file").write_text("")
    with pytest.raises(System, match=f"^making a directory for the build context in {tmp_path}/file/tmp: "):
        receive(tmp_path / "file" / "tmp", tar(("Dockerfile", DOCKERFILE)))


def test_close_is_idempotent_and_leaves_nothing(tmp_path):
    context = receive(tmp_path, tar(("Dockerfile", DOCKERFILE)))
    context.close()
    context.close()
    assert os.listdir(tmp_path) == []


def test_hostile_members_stay_inside_the_context(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    data = tar(("Dockerfile", DOCKERFILE), ("../../evil", b"e"), ("/abs/f", b"a"), ("./ok/../../x", b"x"),
               member("up", type=tarfile.SYMTYPE, linkname=str(outside)), ("up/through-link", b"l"),
               member("rel", type=tarfile.SYMTYPE, linkname="../../.."), ("rel/climbed", b"c"),
               member("hard", type=tarfile.LNKTYPE, linkname="../../evil"),
               member("null", type=tarfile.CHRTYPE, devmajor=1, devminor=3),
               member("disk", type=tarfile.BLKTYPE, devmajor=8, devminor=0),
               ("d/.wh.a", b""), (".wh..wh..opq", b""), ("d/a", b"kept"))
    (tmp_path / "contexts").mkdir()
    with receive(tmp_path / "contexts", data) as context:
        got = files(context.root)
    assert got == {"Dockerfile": DOCKERFILE, "evil": b"e", "abs/f": b"a", "x": b"x", "up": f"-> {outside}",
                   f"{str(outside)[1:]}/through-link": b"l", "rel": "-> ../../..", "climbed": b"c", "hard": b"e",
                   "d/a": b"kept"}
    assert os.listdir(outside) == []


@pytest.mark.parametrize("data, message", [
    (b"hello world this is not a tar" * 10, "unexpected EOF"),
    (b"hello world this is not a tar" * 100, "archive/tar: invalid tar header"),
    (tar(("Dockerfile", DOCKERFILE), ("big", b"x" * 100000))[:5000], "Error processing tar file(exit status 1): "
                                                                      "unexpected EOF"),
    (gzip.compress(b"not a tar"), "unexpected EOF"),
    (b"", "Cannot locate specified Dockerfile: Dockerfile"),
    (b"\0" * 1024, "Cannot locate specified Dockerfile: Dockerfile"),
    (tar(("a.txt", b"x")), "Cannot locate specified Dockerfile: Dockerfile"),
    (tar(member("Dockerfile", type=tarfile.SYMTYPE, linkname="/etc/hostname")),
     "Cannot locate specified Dockerfile: Dockerfile"),
])
def test_a_broken_or_dockerfileless_context_is_dockerds_error(tmp_path, data, message):
    with pytest.raises(System) as err:
        receive(tmp_path, data)
    assert str(err.value) == message
    assert os.listdir(tmp_path) == []


def test_an_empty_dockerfile_is_refused(tmp_path):
    with pytest.raises(InvalidParameter, match=r"^the Dockerfile \(Dockerfile\) cannot be empty$"):
        receive(tmp_path, tar(("Dockerfile", b"")))


def test_dockerfile_option_paths_as_dockerd_resolves_them(tmp_path):
    data = tar(("sub/Dockerfile.dev", b"FROM dev\n"), ("Dockerfile", DOCKERFILE),
               member("link", type=tarfile.SYMTYPE, linkname="/sub/Dockerfile.dev"))
    for option, text in (("sub/Dockerfile.dev", "FROM dev\n"), ("/sub/Dockerfile.dev", "FROM dev\n"),
                         ("sub/../Dockerfile", "FROM busybox\n"), ("./Dockerfile", "FROM busybox\n"),
                         ("link", "FROM dev\n")):
        with receive(tmp_path, data, option) as context:
            assert (context.dockerfile_name, context.dockerfile_text) == (option, text)
    with pytest.raises(System, match=r"^forbidden path outside the build context: \.\./x \(\)$"):
        receive(tmp_path, data, "../x")
    with pytest.raises(System, match="^Cannot locate specified Dockerfile: /etc/passwd$"):
        receive(tmp_path, data, "/etc/passwd")
    with pytest.raises(System, match="^unexpected error reading Dockerfile: read .*/sub: is a directory$"):
        receive(tmp_path, data, "sub")


def test_a_lowercase_dockerfile_is_found_for_the_default_only(tmp_path):
    data = tar(("dockerfile", DOCKERFILE))
    with receive(tmp_path, data) as context:
        assert context.dockerfile_name == "dockerfile"
    with pytest.raises(System, match="^Cannot locate specified Dockerfile: Dockerfile.x$"):
        receive(tmp_path, tar(("dockerfile.x", DOCKERFILE)), "Dockerfile.x")


def test_dockerignore_removes_the_build_files_it_excludes(tmp_path):
    data = tar(("Dockerfile", DOCKERFILE), (".dockerignore", b"Dockerfile\n.dockerignore\n"), ("a", b"a"))
    with receive(tmp_path, data) as context:
        assert context.dockerfile_text == DOCKERFILE.decode() and files(context.root) == {"a": b"a"}
    data = tar(("Dockerfile", DOCKERFILE), (".dockerignore", b"*.md\n"), ("a", b"a"))
    with receive(tmp_path, data) as context:
        assert set(files(context.root)) == {"Dockerfile", ".dockerignore", "a"}


def test_the_clis_dockerfile_from_outside_the_context(tmp_path):
    """The CLI adds -f's file as .dockerfile.<random> and excludes it in .dockerignore."""
    name = ".dockerfile.0123456789abcdef0123"
    data = tar(("a", b"a"), (name, b"FROM outside\n"), (".dockerignore", f".dockerignore\n{name}\n".encode()))
    with receive(tmp_path, data, name) as context:
        assert (context.dockerfile_name, context.dockerfile_text) == (name, "FROM outside\n")
        assert files(context.root) == {"a": b"a"}


def test_a_tar_ending_in_its_last_padding_is_whole_as_the_cli_sends_it(tmp_path):
    """-f's file from outside the context comes last, unpadded, without end blocks."""
    data = tar(("Dockerfile", DOCKERFILE), ("last", b"47 bytes" * 6))
    unpadded = data[:data.index(b"47 bytes") + 48]
    with receive(tmp_path, unpadded) as context:
        assert files(context.root) == {"Dockerfile": DOCKERFILE, "last": b"47 bytes" * 6}
    with pytest.raises(System, match=r"^Error processing tar file\(exit status 1\): unexpected EOF$"):
        receive(tmp_path, unpadded[:-1])


def test_a_bad_dockerignore_pattern_is_refused_and_cleaned_up(tmp_path):
    with pytest.raises(InvalidParameter, match='illegal exclusion pattern: "!"'):
        receive(tmp_path, tar(("Dockerfile", DOCKERFILE), (".dockerignore", b"!\n")))
    assert os.listdir(tmp_path) == []
