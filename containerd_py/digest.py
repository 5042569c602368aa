"""Content digests (`algorithm:hex`); only sha256 is produced and accepted."""
import re

from . import errors
from .errors import q

try:
    # CPython's own sha256, for a few KiB (a manifest, a config, a chain ID):
    # hashlib's is OpenSSL's, six times faster on a layer but ~3.5 MiB of
    # libcrypto mapped into a process that hashes nothing bigger (the engine).
    from _sha256 import sha256 as small_sha256
except ImportError:  # a CPython built without it
    from hashlib import sha256 as small_sha256

_SHA256 = re.compile(r"^sha256:[a-f0-9]{64}$")


def validate(digest: str) -> str:
    if not _SHA256.match(digest or ""):
        if digest and ":" in digest and not digest.startswith("sha256:"):
            raise errors.InvalidArgument(f"unsupported digest algorithm: {digest}")
        raise errors.InvalidArgument(f"invalid digest {q(digest)}")
    return digest


def of_small(data: bytes) -> str:
    """The digest of bytes held in memory (small_sha256: no OpenSSL for them)."""
    return "sha256:" + small_sha256(data).hexdigest()


def hex_of(digest: str) -> str:
    return validate(digest).split(":", 1)[1]
