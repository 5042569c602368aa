"""The variable substitution of dockerd's shell lexer (buildkit's
frontend/dockerfile/shell, as vendored in dockerd 20.10): `$VAR`, `${VAR}`,
`${VAR:-word}`, `${VAR:+word}`, `${VAR:?message}`, quotes and the escape token,
applied to one word of an instruction that takes it.

dockerd 20.10 knows no `${VAR-word}` (its error: "missing ':' in
substitution"); quotes are removed whether or not a variable is in the word.
"""
from engine.errors import InvalidParameter

_SPECIAL_PARAMS = "@*#?-$!0"


class SubstitutionError(InvalidParameter):
    """A word the lexer refuses; the message is dockerd's (`failed to process "${x": ...`)."""


class _Failure(Exception):
    """The inner message, before process_word names the whole word."""


def process_word(word: str, env: list[str], escape: str = "\\") -> str:
    """WORD with its variables replaced from ENV ("k=v" strings, the first
    one of a name wins, as dockerd lists a stage's ENV before its ARGs)."""
    try:
        return _Lexer(word, env, escape).until(None)
    except _Failure as err:
        raise SubstitutionError(f"failed to process {go_quote(word)}: {err}") from None


def go_quote(text: str) -> str:
    """Go's %q for the printable text a Dockerfile holds."""
    out = ['"']
    for ch in text:
        out.append({'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(ch, ch))
    out.append('"')
    return "".join(out)


class _Lexer:
    def __init__(self, text: str, env: list[str], escape: str):
        self.text, self.pos, self.escape = text, 0, escape
        self.env = {}
        for entry in env:
            name, _, value = entry.partition("=")
            self.env.setdefault(name, value)

    def peek(self) -> str | None:
        return self.text[self.pos] if self.pos < len(self.text) else None

    def next(self) -> str | None:
        ch = self.peek()
        if ch is not None:
            self.pos += 1
        return ch

    def until(self, stop: str | None) -> str:
        """The processed text up to STOP (consumed), or to the end when STOP is None."""
        result = []
        while self.peek() is not None:
            ch = self.peek()
            if stop is not None and ch == stop:
                self.next()
                return "".join(result)
            if ch == "'":
                result.append(self.single_quoted())
            elif ch == '"':
                result.append(self.double_quoted())
            elif ch == "$":
                result.append(self.dollar())
            else:
                self.next()
                if ch == self.escape:
                    ch = self.next()
                    if ch is None:
                        break
                result.append(ch)
        if stop is not None:
            raise _Failure(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result)

    def single_quoted(self) -> str:
        """Everything up to the next ' as it is: nothing escapes inside single quotes."""
        self.next()
        end = self.text.find("'", self.pos)
        if end < 0:
            raise _Failure("unexpected end of statement while looking for matching single-quote")
        value, self.pos = self.text[self.pos:end], end + 1
        return value

    def double_quoted(self) -> str:
        """Variables are replaced; the escape token escapes only ", $ and itself."""
        self.next()
        result = []
        while True:
            ch = self.peek()
            if ch is None:
                raise _Failure("unexpected end of statement while looking for matching double-quote")
            if ch == '"':
                self.next()
                return "".join(result)
            if ch == "$":
                result.append(self.dollar())
                continue
            self.next()
            if ch == self.escape:
                following = self.peek()
                if following is None:
                    continue
                if following in ('"', "$", self.escape):
                    ch = self.next()
            result.append(ch)

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            return self.env.get(name, "") if name else "$"
        self.next()
        if self.peek() is None:
            raise _Failure("syntax error: missing '}'")
        if self.peek() in "{}:":
            raise _Failure("syntax error: bad substitution")
        name = self.name()
        ch = self.next()
        if ch == "}":
            return self.env.get(name, "")
        if ch != ":":
            raise _Failure("missing ':' in substitution")
        modifier = self.next()
        try:
            word = self.until("}")
        except _Failure:
            if self.peek() is None:
                raise _Failure("syntax error: missing '}'") from None
            raise
        value = self.env.get(name, "")
        if modifier == "+":
            return word if value else ""
        if modifier == "-":
            return value or word
        if modifier == "?":
            if name not in self.env:
                raise _Failure(f"{name}: {word or 'is not allowed to be unset'}")
            if not value:
                raise _Failure(f"{name}: {word or 'is not allowed to be empty'}")
            return value
        raise _Failure(f"unsupported modifier ({modifier}) in substitution")

    def name(self) -> str:
        """A variable name: letters, digits and _, or digits alone, or one special parameter."""
        start = self.pos
        ch = self.peek()
        if ch is None:
            return ""
        if ch.isdigit():
            while self.peek() is not None and self.peek().isdigit():
                self.pos += 1
            return self.text[start:self.pos]
        if ch in _SPECIAL_PARAMS:
            self.pos += 1
            return ch
        while self.peek() is not None and (self.peek().isalnum() or self.peek() == "_"):
            self.pos += 1
        return self.text[start:self.pos]
