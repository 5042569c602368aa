"""Validation of names (namespaces, leases) with containerd's identifier rules."""
import os
import re

from . import errors
from .errors import q

MAX_LENGTH = 76
_PATTERN = re.compile(r"^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$")


def validate(value: str) -> None:
    if not value:
        raise errors.InvalidArgument("identifier must not be empty")
    if len(value) > MAX_LENGTH:
        raise errors.InvalidArgument(f"identifier {q(value)} greater than maximum length ({MAX_LENGTH} characters)")
    if not _PATTERN.match(value):
        raise errors.InvalidArgument(f"identifier {q(value)} must match {_PATTERN.pattern}")


def random_uuid() -> str:
    """A version 4 UUID, as str(uuid.uuid4()) writes it: the uuid module
    (with platform, which it imports) is ~0.2 MiB a daemon keeps for one id."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
