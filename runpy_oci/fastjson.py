"""JSON without the ``json`` package: it imports ``re`` and compiles patterns,
a few milliseconds every hot runtime verb would pay. The C scanner and string
encoder of ``_json`` do the real work here."""
import _json


class _Context:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo = {}

    @staticmethod
    def parse_constant(name):
        raise ValueError(f"{name} is not valid JSON")


_scan = _json.make_scanner(_Context())
_WHITESPACE = " \t\n\r"


def loads(text):
    """Parse a JSON document; ValueError naming the problem and where on bad input."""
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _scan(text, start)
        if not text[end:].strip(_WHITESPACE):
            return value
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except (StopIteration, SystemError):
        # _json builds its error from json.decoder, which only ``json`` imports:
        # without it the scanner fails with SystemError and no message.
        pass
    return _loads_with_json(text)


def _loads_with_json(text):
    """The json package parses what the scanner refused, so the error names
    the problem with its line and column; imported only on this error path."""
    import json

    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None


_quote = _json.encode_basestring_ascii


def dumps(value, indent=None):
    """Serialize dicts, lists, strings, numbers, booleans and None."""
    parts = []
    _encode(value, parts, indent, 0)
    return "".join(parts)


def _encode(value, out, indent, level):
    if isinstance(value, str):
        out.append(_quote(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, (int, float)):
        out.append(repr(value) if isinstance(value, float) else str(value))
    elif isinstance(value, dict):
        _encode_items(
            [(k, v) for k, v in value.items()], "{", "}", out, indent, level, keyed=True
        )
    elif isinstance(value, (list, tuple)):
        _encode_items(list(value), "[", "]", out, indent, level, keyed=False)
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def _encode_items(items, opener, closer, out, indent, level, keyed):
    if not items:
        out.append(opener + closer)
        return
    if indent is None:
        sep, key_sep, inner, outer = ",", ":", "", ""
    else:
        inner = "\n" + " " * (indent * (level + 1))
        outer = "\n" + " " * (indent * level)
        sep, key_sep = ",", ": "
    out.append(opener)
    for i, item in enumerate(items):
        if i:
            out.append(sep)
        out.append(inner)
        if keyed:
            key, item = item
            out.append(_quote(str(key)))
            out.append(key_sep)
        _encode(item, out, indent, level + 1)
    out.append(outer + closer)
