"""Image references, `[host[:port]/]path[:tag][@digest]`, with docker's short forms.

`busybox` means `docker.io/library/busybox:latest`, as the docker CLI reads
it; a full reference is kept exactly as written, as ctr keeps it.
"""
import re
from dataclasses import dataclass

from . import digest as digests
from . import errors
from .errors import q

DOCKER_HUB = "docker.io"
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_HOST = re.compile(r"^(?:[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$")


@dataclass(frozen=True)
class Reference:
    host: str
    repository: str  # the path inside the registry, e.g. library/busybox
    tag: str = ""
    digest: str = ""

    @property
    def name(self) -> str:
        return f"{self.host}/{self.repository}"

    @property
    def object(self) -> str:
        """What to ask the registry's manifests endpoint for: the digest when pinned, else the tag."""
        return self.digest or self.tag

    def __str__(self) -> str:
        return self.name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")


def parse(ref: str) -> Reference:
    """Parses and normalises a reference; InvalidArgument names what is wrong."""
    rest, _, dgst = ref.partition("@")
    if dgst:
        try:
            digests.validate(dgst)
        except errors.InvalidArgument as e:
            raise errors.InvalidArgument(f"reference {q(ref)}: {e}") from None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    tag = ""
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1:]
        if not _TAG.match(tag):
            raise errors.InvalidArgument(f"reference {q(ref)}: invalid tag {q(tag)}")
    first, sep, path = rest.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        if not _HOST.match(first):
            raise errors.InvalidArgument(f"reference {q(ref)}: invalid host {q(first)}")
        host = first
    else:
        host, path = DOCKER_HUB, rest
    if host == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    for component in path.split("/"):
        if not _COMPONENT.match(component):
            raise errors.InvalidArgument(f"reference {q(ref)}: invalid repository path component {q(component)}")
    if not tag and not dgst:
        tag = "latest"
    return Reference(host, path, tag, dgst)
