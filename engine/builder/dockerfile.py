"""A Dockerfile parsed as dockerd 20.10's legacy builder parses it: pure,
no I/O, no substitution (that happens per step, with the scope of the
moment: see instructions.Instruction.expand).

Two layers, as in buildkit's parser that dockerd vendors: lines -> nodes
(directives, comments, continuations, the JSON or shell form, builder
flags), then nodes -> typed instructions grouped into stages
(engine.builder.instructions). Errors carry dockerd's wording: a node error
is `failed to parse Dockerfile: ...`, an instruction error
`dockerfile parse error line N: ...`.
"""
import dataclasses
import json
import re
from dataclasses import dataclass, field

from engine.builder import instructions
from engine.builder.shell_words import go_quote
from engine.errors import InvalidParameter

_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_KNOWN_DIRECTIVES = ("escape", "syntax")
_WHITESPACE = re.compile(r"[\t\v\f\r ]+")
_NOT_STRINGS = "when using JSON array syntax, arrays must be comprised of strings only"
_EMPTY_CONTINUATION_END = "[WARNING]: Empty continuation lines will become errors in a future release."


def _no_constant(name: str):
    raise ValueError(f"{name} is no JSON to Go")


_GO_JSON = json.JSONDecoder(parse_constant=_no_constant)


class ParseError(InvalidParameter):
    """A Dockerfile dockerd refuses before running any step."""


@dataclass
class Dockerfile:
    """The parse result: ARGs before the first FROM, the stages, and what the
    build prints before its first step (the empty-continuation warnings)."""
    meta_args: list
    stages: list
    escape: str = "\\"
    syntax: str | None = None
    warnings: list[str] = field(default_factory=list)

    def up_to(self, target: str) -> "Dockerfile":
        """The build `--target` asks for: the stages up to the one named TARGET (any case)."""
        for index, stage in enumerate(self.stages):
            if stage.name == target.lower():
                return dataclasses.replace(self, stages=self.stages[:index + 1])
        raise InvalidParameter(f"failed to reach build target {target} in Dockerfile")

    @property
    def total_steps(self) -> int:
        """The M of `Step N/M`: meta ARGs, FROMs and every instruction."""
        return len(self.meta_args) + sum(1 + len(stage.instructions) for stage in self.stages)


@dataclass
class Node:
    """One logical line: the instruction word (lower case), its leading
    --flags, its arguments, whether they came as a JSON array, and its text."""
    keyword: str
    flags: list[str]
    args: list[str]
    json: bool
    original: str
    line: int = 0
    end_line: int = 0


class _NodeError(Exception):
    """A line the node layer refuses (dockerd: `failed to parse Dockerfile: ...`)."""


class _Directives:
    """`# escape=` and `# syntax=`, read only before the first other line."""

    def __init__(self):
        self.syntax, self.done, self.seen = None, False, set()
        self._set_escape("\\")

    def _set_escape(self, token: str):
        if token not in ("`", "\\"):
            raise _NodeError(f"invalid escape token '{token}' does not match ` or \\")
        self.escape, escape = token, re.escape(token)
        # an escaped escape token at the end (`a\\`) ends the line, as in dockerd 20.10
        self.continuation = re.compile(f"([^{escape}]){escape}[ \t]*$|^{escape}[ \t]*$")

    def consider(self, line: str):
        if self.done:
            return
        match = _DIRECTIVE.match(line)
        key = match.group(1).lower() if match else None
        if key not in _KNOWN_DIRECTIVES:
            self.done = True
            return
        if key in self.seen:
            raise _NodeError(f"only one {key} parser directive can be used")
        self.seen.add(key)
        if key == "escape":
            self._set_escape(match.group(2))
        else:
            self.syntax = match.group(2)


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def parse(text: str) -> Dockerfile:
    """The Dockerfile TEXT as stages of typed instructions, or a ParseError."""
    try:
        nodes, directives, warnings = _nodes(text)
    except _NodeError as err:
        raise ParseError(f"failed to parse Dockerfile: {err}") from None
    meta_args, stages = instructions.group(nodes)
    return Dockerfile(meta_args, stages, directives.escape, directives.syntax, warnings)


def parse_trigger(expression: str) -> list[instructions.Instruction]:
    """An ONBUILD trigger of the base image, as a later build runs it (dockerd
    prints its errors bare: `unknown instruction: RUNN`)."""
    try:
        nodes, _, _ = _nodes(expression)
    except _NodeError as err:
        raise ParseError(str(err)) from None
    return [instructions.trigger(node) for node in nodes]


def _nodes(text: str) -> tuple[list[Node], _Directives, list[str]]:
    """The logical lines of TEXT with their line numbers, and the directives and warnings met."""
    directives = _Directives()
    lines = text.removeprefix("\ufeff").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    lines = [line.removesuffix("\r") for line in lines]
    nodes, warnings, index = [], [], 0
    while index < len(lines):
        raw = lines[index].lstrip()
        directives.consider(raw)
        index += 1
        start = index
        if _is_comment(raw):
            continue
        line, ended = _trim_continuation(raw, directives)
        if ended and not line:
            continue
        empty_continuation = False
        while not ended and index < len(lines):
            raw = lines[index]
            directives.consider(raw)
            index += 1
            if _is_comment(raw):
                continue
            if not raw.strip():
                empty_continuation = True
                continue
            more, ended = _trim_continuation(raw, directives)
            line += more
        if empty_continuation:
            warnings.append("[WARNING]: Empty continuation line found in:\n    " + line)
        node = _node(line, directives)
        node.line, node.end_line = start, index
        nodes.append(node)
    if warnings:
        warnings.append(_EMPTY_CONTINUATION_END)
    if not nodes:
        raise _NodeError("file with no instructions")
    return nodes, directives, warnings


def _trim_continuation(line: str, directives: _Directives) -> tuple[str, bool]:
    """The line without its trailing escape token, and whether the instruction ends here."""
    trimmed = directives.continuation.sub(r"\1", line, count=1)
    return trimmed, trimmed == line


def _node(line: str, directives: _Directives) -> Node:
    """One logical line split as buildkit's parser splits it for its instruction."""
    parts = _WHITESPACE.split(line.strip(), maxsplit=1)
    keyword = parts[0].lower()
    rest, flags = _builder_flags(parts[1]) if len(parts) == 2 else ("", [])
    rest = rest.strip()
    if keyword == "onbuild":  # its trigger is parsed now, its instruction checked when it runs
        return Node(keyword, flags, [_node(rest, directives).keyword] if rest else [], False, line)
    args, is_json = _ARGUMENT_SPLITTERS.get(keyword, _ignore)(rest, directives.escape)
    return Node(keyword, flags, args, is_json, line)


def _builder_flags(text: str) -> tuple[str, list[str]]:
    """The leading `--name=value` words (quotes and backslashes removed) and the rest."""
    words, word, pos, quote, in_word, blank_ok = [], "", 0, None, False, False
    while pos <= len(text):
        ch = text[pos] if pos < len(text) else None
        if not in_word:
            if ch is None:
                break
            if ch.isspace():
                pos += 1
                continue
            if not text.startswith("--", pos):
                return text[pos:], words
            in_word = True
        if ch is None:
            if word != "--" and (blank_ok or word):
                words.append(word)
            break
        if quote is None and ch.isspace():
            if word == "--":
                return text[pos:], words
            if blank_ok or word:
                words.append(word)
            word, blank_ok, in_word = "", False, False
        elif quote is None and ch in "'\"":
            quote, blank_ok = ch, True
        elif quote is not None and ch == quote:
            quote = None
        elif ch == "\\":
            if pos + 1 == len(text):
                quote = None
            else:
                pos += 1
                word += text[pos]
        else:
            word += ch
        pos += 1
    return "", words


def _words(text: str, escape: str) -> list[str]:
    """Words split at unquoted blanks, quotes and escapes kept (the lexer removes them later)."""
    words, word, quote, blank_ok, in_word = [], "", None, False, False
    pos = 0
    while pos < len(text):
        ch = text[pos]
        pos += 1
        if not in_word:
            if ch.isspace():
                continue
            in_word = True
        if quote is None:
            if ch.isspace():
                if blank_ok or word:
                    words.append(word)
                word, blank_ok, in_word = "", False, False
                continue
            if ch in "'\"":
                quote, blank_ok = ch, True
            elif ch == escape:
                if pos == len(text):
                    continue
                word += ch
                ch = text[pos]
                pos += 1
            word += ch
            continue
        if ch == quote:
            quote = None
        elif ch == escape and quote != "'":
            if pos == len(text):
                quote = None
                continue
            word += ch
            ch = text[pos]
            pos += 1
        word += ch
    if in_word and (blank_ok or word):
        words.append(word)
    return words


def _json_array(text: str) -> list[str] | None:
    """The exec form: a JSON array of strings (what follows it is ignored,
    as Go's json.Decoder reads one value), or None when TEXT is no JSON array."""
    text = text.lstrip()
    if not text.startswith("["):
        return None
    try:
        value, _ = _GO_JSON.raw_decode(text)
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(item, str) for item in value):
        raise _NodeError(_NOT_STRINGS)
    return value


def _maybe_json(rest: str, escape: str):
    """RUN, CMD, ENTRYPOINT, SHELL: a JSON array, or the whole text as one shell command."""
    if not rest:
        return [], False
    value = _json_array(rest)
    return (value, True) if value is not None else ([rest], False)


def _maybe_json_list(rest: str, escape: str):
    """ADD, COPY, VOLUME: a JSON array, or words split at blanks (quotes not honoured)."""
    value = _json_array(rest)
    return (value, True) if value is not None else _whitespace_words(rest, escape)


def _whitespace_words(rest: str, escape: str):
    return (_WHITESPACE.split(rest) if rest else []), False


def _one_string(rest: str, escape: str):
    return ([rest] if rest else []), False


def _name_values(keyword: str):
    """ENV and LABEL: `k=v k2="v 2"` pairs, or the old `k value with spaces`."""
    def split(rest: str, escape: str):
        words = _words(rest, escape)
        if not words:
            return [], False
        if "=" not in words[0]:
            parts = _WHITESPACE.split(rest, maxsplit=1)
            if len(parts) < 2:
                raise _NodeError(f"{keyword} must have two arguments")
            return parts, False
        pairs = []
        for word in words:
            if "=" not in word:
                raise _NodeError(f"Syntax error - can't find = in {go_quote(word)}. Must be of the form: name=value")
            pairs.extend(word.split("=", 1))
        return pairs, False
    return split


def _arg_words(rest: str, escape: str):
    return _words(rest, escape), False


def _health(rest: str, escape: str):
    """HEALTHCHECK: its type word, then a command in the JSON or shell form."""
    parts = re.split(r"\s+", rest, maxsplit=1)
    if not rest:
        return [], False
    command, is_json = _maybe_json(parts[1] if len(parts) == 2 else "", escape)
    return [parts[0], *command], is_json


def _ignore(rest: str, escape: str):
    return [], False


_ARGUMENT_SPLITTERS = {
    "add": _maybe_json_list, "copy": _maybe_json_list, "volume": _maybe_json_list,
    "run": _maybe_json, "cmd": _maybe_json, "entrypoint": _maybe_json, "shell": _maybe_json,
    "env": _name_values("ENV"), "label": _name_values("LABEL"), "arg": _arg_words,
    "expose": _whitespace_words, "from": _whitespace_words,
    "maintainer": _one_string, "stopsignal": _one_string, "user": _one_string, "workdir": _one_string,
    "healthcheck": _health,
}
