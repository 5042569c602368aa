"""The text each metadata instruction leaves in its image's ContainerConfig
Cmd and history (`/bin/sh -c #(nop)  CMD ["cat" "/a"]`), written as
dockerd's dispatchers write it with Go's fmt verbs (%q of a string slice,
of a HEALTHCHECK's struct, %v of a slice). The cache compares these Cmds,
so they must be what dockerd writes for the same instruction."""
from engine.builder.shell_words import go_quote
from engine.timestamps import go_duration



def nop_cmd(shell: list[str], comment: str) -> list[str]:
    """withCmdComment: a metadata step's Cmd."""
    return [*shell, "#(nop) ", comment]


def nop_cmd_string(shell: list[str], comment: str) -> list[str]:
    """withCmdCommentString: the Cmd of COPY, ADD and WORKDIR."""
    return [*shell, "#(nop) " + comment]


def quoted_list(words: list[str]) -> str:
    """Go's %q of a []string: ["a" "b"]."""
    return "[" + " ".join(go_quote(word) for word in words) + "]"


def plain_list(words: list[str]) -> str:
    """Go's %v of a []string: [a b]."""
    return "[" + " ".join(words) + "]"


def go_quote_rune(number: int) -> str:
    """Go's %q of an int (strconv.QuoteRune): '\\x03', 'A'."""
    special = {7: "\\a", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v", 39: "\\'", 92: "\\\\"}
    if number in special:
        return f"'{special[number]}'"
    if 32 <= number < 127:
        return f"'{chr(number)}'"
    if number < 128:
        return f"'\\x{number:02x}'"
    if 0 <= number <= 0xFFFF:
        return f"'\\u{number:04x}'" if not chr(number).isprintable() else f"'{chr(number)}'"
    return f"'\\U{number:08x}'" if number <= 0x10FFFF and not chr(number).isprintable() else \
        (f"'{chr(number)}'" if number <= 0x10FFFF else "'\\ufffd'")


def healthcheck(test: list[str], interval: int, timeout: int, start_period: int, retries: int) -> str:
    """%q of the *HealthConfig: &{["CMD-SHELL" "x"] "5s" "0s" "0s" '\\x03'}."""
    return "&{" + " ".join([quoted_list(test), *(go_quote(go_duration(d)) for d in (interval, timeout, start_period)),
                            go_quote_rune(retries)]) + "}"
