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
    """Parse a JSON document; ValueError (json.JSONDecodeError) on bad input."""
    text = text.strip(_WHITESPACE)
    try:
        value, end = _scan(text, 0)
    except StopIteration as e:
        raise ValueError(f"expecting a value at character {e.value}") from None
    if end != len(text):
        raise ValueError(f"extra data at character {end}")
    return value


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
