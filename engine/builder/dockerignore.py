"""`.dockerignore` as Docker reads and applies it (docker 20.10's
builder/dockerignore and pkg/fileutils): comments, `!` exceptions, leading
`/` and `./` cleaned away, `*` and `?` within one path element, `**` across
any number of them, and a path excluded when its parent directory is.

The CLI applies the patterns while it packs the context, re-including the
Dockerfile and .dockerignore; the daemon then removes those two from the
context when the patterns exclude them (`build_files_to_remove`), so that
`COPY . .` does not see them.
"""
import posixpath
import re

from engine.errors import InvalidParameter


def read_patterns(text: str) -> list[str]:
    """The patterns of a .dockerignore's TEXT, cleaned as dockerignore.ReadAll cleans them."""
    patterns = []
    for line in text.removeprefix("\ufeff").splitlines():
        if line.startswith("#"):
            continue
        pattern = line.strip()
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = go_clean(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        patterns.append("!" + pattern if invert else pattern)
    return patterns


def go_clean(path: str) -> str:
    """Go's filepath.Clean ("" is ".", one leading slash kept)."""
    cleaned = posixpath.normpath(path) if path else "."
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


class _Pattern:
    def __init__(self, text: str):
        self.exclusion = text.startswith("!")
        if self.exclusion:
            if len(text) == 1:
                raise InvalidParameter('illegal exclusion pattern: "!"')
            text = text[1:]
        self.dirs = len(text.split("/"))
        try:
            self.regexp = re.compile(_regexp(text))
        except re.error:
            raise InvalidParameter("syntax error in pattern") from None

    def match(self, path: str) -> bool:
        return self.regexp.match(path) is not None


def _regexp(pattern: str) -> str:
    """The pattern as fileutils compiles it: Go regexp syntax passes through,
    except the glob characters and the `.` and `$` filepath.Match treats literally."""
    out, pos = ["^"], 0
    while pos < len(pattern):
        ch = pattern[pos]
        pos += 1
        if ch == "*":
            if pattern.startswith("*", pos):
                pos += 1
                if pattern.startswith("/", pos):
                    pos += 1
                out.append(".*" if pos == len(pattern) else "(.*/)?")
            else:
                out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch in ".$":
            out.append("\\" + ch)
        elif ch == "\\":
            if pos < len(pattern):
                out.append("\\" + pattern[pos])
                pos += 1
            else:
                out.append("\\")
        else:
            out.append(ch)
    out.append("$")
    return "".join(out)


class PatternMatcher:
    """Whether a context path is excluded: the last pattern that matches
    decides; `!` ones re-include."""

    def __init__(self, patterns: list[str]):
        self.patterns = []
        for text in patterns:
            text = text.strip()
            if text:
                self.patterns.append(_Pattern(go_clean(text)))

    def matches(self, path: str) -> bool:
        path = go_clean(path)
        if path == ".":
            return False  # Docker never excludes the context itself
        parent = posixpath.dirname(path) or "."
        parent_dirs = parent.split("/")
        matched = False
        for pattern in self.patterns:
            hit = pattern.match(path)
            if not hit and parent != "." and pattern.dirs <= len(parent_dirs):
                hit = pattern.match("/".join(parent_dirs[:pattern.dirs]))
            if hit:
                matched = not pattern.exclusion
        return matched


def keep_build_files(patterns: list[str], dockerfile: str, dockerfile_from_stdin: bool = False) -> list[str]:
    """The patterns the CLI packs the context with: the Dockerfile and
    .dockerignore re-included when the user's patterns exclude them."""
    matcher = PatternMatcher(patterns)
    patterns = list(patterns)
    if matcher.matches(".dockerignore"):
        patterns.append("!.dockerignore")
    if matcher.matches(dockerfile) and not dockerfile_from_stdin:
        patterns.append("!" + dockerfile)
    return patterns


def build_files_to_remove(patterns: list[str], dockerfile: str) -> list[str]:
    """Of .dockerignore and the Dockerfile, those the daemon removes from a
    received context once it has read the Dockerfile: the ones the patterns exclude."""
    matcher = PatternMatcher(patterns)
    return [name for name in (".dockerignore", dockerfile) if matcher.matches(name)]
