"""Content digests (`algorithm:hex`); only sha256 is produced and accepted."""
import re

from . import errors
from .errors import q

_SHA256 = re.compile(r"^sha256:[a-f0-9]{64}$")


def validate(digest: str) -> str:
    if not _SHA256.match(digest or ""):
        if digest and ":" in digest and not digest.startswith("sha256:"):
            raise errors.InvalidArgument(f"unsupported digest algorithm: {digest}")
        raise errors.InvalidArgument(f"invalid digest {q(digest)}")
    return digest


def hex_of(digest: str) -> str:
    return validate(digest).split(":", 1)[1]
