"""containerd's filter syntax, used by every List call.

A filter is `selector[,selector...]` where all selectors must match, and a
list of filters matches when any filter does. A selector is a field path
(`name`, `labels."a.b"`, `target.digest`) alone (the field must be present)
or followed by `==`, `!=` or `~=` (regular expression search) and a value,
bare or quoted ("..." or /.../).
"""
import re
from collections.abc import Callable
from dataclasses import dataclass

from . import errors
from .errors import q

# Looks a field path up in an object: returns the value, or None when absent.
Adaptor = Callable[[tuple[str, ...]], "str | None"]

_FIELD = re.compile(r'"((?:[^"\\]|\\.)*)"|([A-Za-z0-9_]+)')
_OPERATOR = re.compile(r"==|!=|~=")
_VALUE = re.compile(r'"((?:[^"\\]|\\.)*)"|/((?:[^/\\]|\\.)*)/|([^,"\s]+)')


@dataclass(frozen=True)
class Selector:
    fieldpath: tuple[str, ...]
    operator: str | None = None
    value: str = ""

    def match(self, adaptor: Adaptor) -> bool:
        actual = adaptor(self.fieldpath)
        if self.operator is None:
            return actual is not None
        if self.operator == "==":
            return actual == self.value
        if self.operator == "!=":
            return actual != self.value
        return actual is not None and re.search(self.value, actual) is not None


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _parse_one(text: str) -> list[Selector]:
    selectors = []
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        fields = []
        while True:
            m = _FIELD.match(text, pos)
            if not m:
                raise errors.InvalidArgument(f"filters: expected field at position {pos} in {q(text)}")
            fields.append(_unquote(m.group(1)) if m.group(1) is not None else m.group(2))
            pos = m.end()
            if pos < len(text) and text[pos] == ".":
                pos += 1
                continue
            break
        m = _OPERATOR.match(text, pos)
        if m:
            operator = m.group()
            v = _VALUE.match(text, m.end())
            if not v:
                raise errors.InvalidArgument(f"filters: expected value at position {m.end()} in {q(text)}")
            if v.group(1) is not None:
                value = _unquote(v.group(1))
            elif v.group(2) is not None:
                value = v.group(2).replace("\\/", "/")
            else:
                value = v.group(3)
            if operator == "~=":
                try:
                    re.compile(value)
                except re.error as e:
                    raise errors.InvalidArgument(f"filters: invalid regular expression {q(value)}: {e}") from None
            selectors.append(Selector(tuple(fields), operator, value))
            pos = v.end()
        else:
            selectors.append(Selector(tuple(fields)))
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos == len(text):
            return selectors
        if text[pos] != ",":
            raise errors.InvalidArgument(f"filters: unexpected {q(text[pos])} at position {pos} in {q(text)}")
        pos += 1


class Filter:
    """A parsed list of filters; an empty list matches everything."""

    def __init__(self, filters: list[str] | tuple[str, ...] = ()):
        self._alternatives = [_parse_one(f) for f in filters if f.strip()]

    def match(self, adaptor: Adaptor) -> bool:
        if not self._alternatives:
            return True
        return any(all(s.match(adaptor) for s in alt) for alt in self._alternatives)


def adaptor(fields: dict[str, str], labels: dict[str, str] | None = None) -> Adaptor:
    """An adaptor over plain fields (dotted paths as keys) and a label map."""
    def lookup(path: tuple[str, ...]) -> str | None:
        if path[0] == "labels" and labels is not None:
            return labels.get(".".join(path[1:])) if len(path) > 1 else None
        return fields.get(".".join(path))
    return lookup
