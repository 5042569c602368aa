"""Image references as dockerd reads and shows them (docker/distribution's
reference package): `busybox` is `docker.io/library/busybox`, shown back as
`busybox`; its errors are dockerd's words, which clients print as they are.
"""
import re
from dataclasses import dataclass

from containerd_py.reference import DOCKER_HUB, Reference
from engine.errors import InvalidParameter

DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]*)"
_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]+)?"
_NAME = rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(rf"^({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?$")
_TAG_ONLY = re.compile(rf"^{_TAG}$")
_IDENTIFIER = re.compile(r"^[a-f0-9]{64}$")

INVALID_FORMAT = "invalid reference format"


@dataclass(frozen=True)
class Named(Reference):
    """A normalised reference: host/repository, with a tag, a digest, both or neither
    (containerd_py's Reference, which the transfer code pulls, with docker's forms on top)."""

    @property
    def familiar_name(self) -> str:
        if self.host != DOCKER_HUB:
            return self.name
        path = self.repository
        return path.removeprefix("library/") if path.count("/") == 1 else path

    def familiar(self) -> str:
        """How dockerd shows it: `busybox:latest`, `127.0.0.1:5000/x@sha256:...`."""
        return self.familiar_name + str(self)[len(self.name):]

    def tag_name_only(self) -> "Named":
        """With `latest` when it has neither tag nor digest (reference.TagNameOnly)."""
        return self if self.tag or self.digest else Named(self.host, self.repository, DEFAULT_TAG)

    def with_tag(self, tag: str) -> "Named":
        if not _TAG_ONLY.match(tag):
            raise InvalidParameter("invalid tag format")
        return Named(self.host, self.repository, tag)

    def trimmed(self) -> "Named":
        return Named(self.host, self.repository)


def parse_normalized(text: str) -> Named:
    """reference.ParseNormalizedNamed, with its errors (all InvalidParameter)."""
    if _IDENTIFIER.match(text):
        raise InvalidParameter(f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings")
    slash = text.find("/")
    if slash == -1 or (not any(c in text[:slash] for c in ".:") and text[:slash] != "localhost"):
        domain, remainder = DOCKER_HUB, text
    else:
        domain, remainder = text[:slash], text[slash + 1:]
    if domain == "index.docker.io":
        domain = DOCKER_HUB
    if domain == DOCKER_HUB and "/" not in remainder:
        remainder = "library/" + remainder
    remote_name = remainder.partition(":")[0]
    if remote_name.lower() != remote_name:
        raise InvalidParameter(f"{INVALID_FORMAT}: repository name must be lowercase")
    return _parse(f"{domain}/{remainder}")


def _parse(text: str) -> Named:
    match = _REFERENCE.match(text)
    if match is None:
        if not text:
            raise InvalidParameter(f"{INVALID_FORMAT}: repository name must have at least one component")
        if _REFERENCE.match(text.lower()):
            raise InvalidParameter(f"{INVALID_FORMAT}: repository name must be lowercase")
        raise InvalidParameter(INVALID_FORMAT)
    name, tag, digest = match.group(1), match.group(2) or "", match.group(3) or ""
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidParameter(f"repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")
    domain, _, path = name.partition("/")
    return Named(domain, path, tag, digest)


def parse_any(text: str) -> Named | str:
    """reference.ParseAnyReference: a bare 64-hex ID is the digest `sha256:ID`
    (returned as a string); anything else a Named."""
    if _IDENTIFIER.match(text):
        return "sha256:" + text
    return parse_normalized(text)


def familiar_match(pattern: str, ref: Named) -> bool:
    """reference.FamiliarMatch: Go's path.Match against the familiar string, then the familiar name."""
    return go_path_match(pattern, ref.familiar()) or go_path_match(pattern, ref.familiar_name)


def go_path_match(pattern: str, name: str) -> bool:
    """Go's path.Match: `*` and `?` stop at `/`; `[^...]` negates. A bad pattern is InvalidParameter."""
    return re.fullmatch(_go_pattern(pattern), name, re.DOTALL) is not None


def _go_pattern(pattern: str) -> str:
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\":
            if i + 1 == len(pattern):
                raise InvalidParameter("syntax error in pattern")
            i += 1
            out.append(re.escape(pattern[i]))
        elif c == "[":
            end = pattern.find("]", i + 2)
            if end == -1:
                raise InvalidParameter("syntax error in pattern")
            body = pattern[i + 1:end]
            negate = body.startswith("^")
            body = body[1:] if negate else body
            out.append("[" + ("^" if negate else "") + body.replace("\\", "\\\\").replace("[", "\\[") + "]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)
