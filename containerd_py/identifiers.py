"""Validation of names (namespaces, leases) with containerd's identifier rules."""
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
