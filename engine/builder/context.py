"""A build's context: the request's body, a tar (plain, gzip, bzip2 or xz),
extracted as it streams in into a directory of its own, then its Dockerfile
found and read as moby's builder/remotecontext (Detect, FromArchive) does.

Extraction is containerd_py's layer writer with a build context's rules
instead of a layer's: every name, `..` and symlink met is resolved inside
the directory (so nothing lands outside it, as dockerd's chrooted untar
ensures), device nodes are skipped (the context lies on the host) and
`.wh.` names are no whiteouts but left out, as dockerd's context lacks them.
Errors are dockerd's words ("Cannot locate specified Dockerfile: x",
"archive/tar: invalid tar header").
"""
import bz2
import io
import lzma
import os
import posixpath
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Callable

from containerd_py import errors as cerrors
from containerd_py.diff.compression import decompress
from containerd_py.diff.layer import WHITEOUT_PREFIX, LayerWriter
from engine.builder import tarsum
from engine.builder.dockerignore import build_files_to_remove, read_patterns
from engine.containerd.archive import Readable
from engine.errors import InvalidParameter, System
from engine.oci.host import scoped_path

DEFAULT_DOCKERFILE = "Dockerfile"
_READ_SIZE = 1 << 20
_BZIP2_MAGIC, _XZ_MAGIC = b"BZh", b"\xfd7zXZ\x00"
_UNTAR = "Error processing tar file(exit status 1): "
# Python's tarfile's words for a stream that is no tar -> Go's archive/tar's, as dockerd reports them
_TAR_ERRORS = {"truncated header": "unexpected EOF", "bad checksum": "archive/tar: invalid tar header",
               "invalid header": "archive/tar: invalid tar header",
               "unexpected end of data": _UNTAR + "unexpected EOF"}


class BuildContext:
    """The extracted context (`root`) and its Dockerfile; `close()` removes
    the directory (also as a context manager's exit)."""

    def __init__(self, root: str, dockerfile_text: str = "", dockerfile_name: str = DEFAULT_DOCKERFILE):
        self.root = root
        self.dockerfile_text = dockerfile_text
        self.dockerfile_name = dockerfile_name
        self.sums: dict[str, str] = {}  # each member's tarsum (builder/tarsum.py), by its normalized path

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "BuildContext":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def receive_context(read: Callable[[int], bytes], tmp_dir: str, dockerfile: str) -> BuildContext:
    """The context `read(n)` yields (b"" at its end) in a fresh directory
    under tmp_dir, with the Dockerfile named by the `dockerfile` option; the
    directory is gone again if anything is wrong."""
    try:
        os.makedirs(tmp_dir, exist_ok=True)
        context = BuildContext(tempfile.mkdtemp(prefix="docker-builder", dir=tmp_dir))
    except OSError as err:
        raise System(f"making a directory for the build context in {tmp_dir}: {err.strerror.lower()}") from None
    try:
        context.sums = _extract(read, context.root)
        context.dockerfile_name, context.dockerfile_text = _read_dockerfile(context.root, dockerfile or
                                                                            DEFAULT_DOCKERFILE)
        _remove_build_files(context.root, context.dockerfile_name)
    except BaseException:
        context.close()
        raise
    return context


class _ContextWriter(LayerWriter):
    """A layer writer without a layer's whiteouts, and without device nodes."""

    def _entry(self, tf: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        if member.ischr() or member.isblk() or posixpath.basename(member.name.rstrip("/")).startswith(WHITEOUT_PREFIX):
            return
        super()._entry(tf, member)


class _Members:
    """The tar's members, for the layer writer, each hashed on its way as
    dockerd's tarsum context hashes it (header, then the contents the writer
    reads). A stream that ends inside the padding after its last member's
    data ends there: the docker CLI sends `-f`'s file from outside the
    context so (unpadded, without end blocks), and dockerd takes it."""

    def __init__(self, tf: tarfile.TarFile):
        import hashlib  # OpenSSL's sha256 only once a build receives its context
        self.tf, self.sha256 = tf, hashlib.sha256
        self.digests: dict[str, object] = {}

    def __iter__(self):
        members, last = iter(self.tf), None
        while True:
            try:
                last = next(members)
            except StopIteration:
                return
            except tarfile.ReadError as err:
                if str(err) == "unexpected end of data" and last is not None and \
                        self.tf.fileobj.tell() >= last.offset_data + last.size:
                    return
                raise
            self.digests[tarsum.normalized(last.name)] = self.sha256(tarsum.member_header(last))
            yield last

    def extractfile(self, member: tarfile.TarInfo):
        return _Hashed(self.tf.extractfile(member), self.digests[tarsum.normalized(member.name)])

    def sums(self) -> dict[str, str]:
        return {name: digest.hexdigest() for name, digest in self.digests.items()}


class _Hashed:
    """A member's contents, hashed as they are read."""

    def __init__(self, raw, digest):
        self.raw, self.digest = raw, digest

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.digest.update(data)
        return data

    def readinto(self, buffer) -> int:
        n = self.raw.readinto(buffer)
        self.digest.update(memoryview(buffer)[:n])
        return n

    def __getattr__(self, name):
        return getattr(self.raw, name)


def _extract(read: Callable[[int], bytes], root: str) -> dict[str, str]:
    """The tar into root; its members' tarsums."""
    stream = io.BufferedReader(Readable(read), _READ_SIZE)
    head = stream.peek(len(_XZ_MAGIC))
    if not head:
        return {}  # no body: an empty context (dockerd then misses the Dockerfile)
    if head.startswith(_BZIP2_MAGIC):
        stream = bz2.BZ2File(stream)
    elif head.startswith(_XZ_MAGIC):
        stream = lzma.LZMAFile(stream)
    try:
        with tarfile.open(fileobj=decompress(stream), mode="r|") as tf:
            members = _Members(tf)
            _ContextWriter(root).run(members)
            return members.sums()
    except tarfile.ReadError as err:
        if str(err) != "empty file":
            raise System(_TAR_ERRORS.get(str(err), _UNTAR + str(err))) from None
        return {}
    except EOFError:
        raise System(_UNTAR + "unexpected EOF") from None
    except (zlib.error, lzma.LZMAError, OSError, cerrors.Error) as err:
        raise System(_UNTAR + str(err)) from None


def _scoped(root: str, path: str) -> str:
    """moby's FullPath: the path joined to the root (and cleaned) must stay
    inside it; its symlinks are then followed within the root."""
    joined = posixpath.normpath(f"{root}/{path}")
    if joined != root and not joined.startswith(root + "/"):
        raise System(f"forbidden path outside the build context: {path} ()")
    return scoped_path(root, joined[len(root):] or "/")


def _read_dockerfile(root: str, name: str) -> tuple[str, str]:
    """(the name dockerd reports it by, its text): `Dockerfile` falls back to
    `dockerfile`; a missing, unreadable or empty one is dockerd's error."""
    path = _scoped(root, name)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        if name == DEFAULT_DOCKERFILE and os.path.lexists(_scoped(root, name.lower())):
            return _read_dockerfile(root, name.lower())
        raise System(f"Cannot locate specified Dockerfile: {name}") from None
    except OSError as err:
        raise System(f"unexpected error reading Dockerfile: read {path}: {err.strerror.lower()}") from None
    if not data:
        raise InvalidParameter(f"the Dockerfile ({name}) cannot be empty")
    return name, data.decode("utf-8", "replace")


def _remove_build_files(root: str, dockerfile: str) -> None:
    """moby's removeDockerfile: what .dockerignore excludes of itself and
    the Dockerfile leaves the context once the Dockerfile is read."""
    try:
        with open(_scoped(root, ".dockerignore"), "rb") as f:
            patterns = read_patterns(f.read().decode("utf-8", "replace"))
    except FileNotFoundError:
        return
    except OSError as err:
        raise System(f"reading .dockerignore: {err.strerror.lower()}") from None
    for name in build_files_to_remove(patterns, dockerfile):
        path = _scoped(root, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.unlink(path)
