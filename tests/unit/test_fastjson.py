import json
import subprocess
import sys

import pytest

from runpy_oci import fastjson

DOCS = [
    {"a": [1, 2, {"b": None, "c": True, "d": False}], "é": 'x"y\n', "e": [], "f": {}, "g": 1.5},
    [],
    "text",
    {"nested": {"deeper": [[1], [2, [3]]]}},
]


@pytest.mark.parametrize("doc", DOCS)
def test_round_trip_matches_json(doc):
    assert fastjson.loads(json.dumps(doc)) == doc
    assert fastjson.dumps(doc) == json.dumps(doc, separators=(",", ":"))
    assert fastjson.dumps(doc, indent=2) == json.dumps(doc, indent=2)


@pytest.mark.parametrize("bad", ["{", '{"a":1} x', "", "NaN", "[1,]", "{'a': 1}"])
def test_bad_documents_raise_value_error(bad):
    with pytest.raises(ValueError):
        fastjson.loads(bad)


@pytest.mark.parametrize("bad, message", [
    ('{"a": 1,}', "Expecting property name enclosed in double quotes: line 1 column 9 (char 8)"),
    ('{\n "a": [1,\n ]}', "Expecting value: line 3 column 2 (char 13)"),
    ('{"a: 1}', "Unterminated string starting at: line 1 column 2 (char 1)"),
    ('\n{"a": 1} x', "Extra data: line 2 column 10 (char 10)"),
])
def test_syntax_errors_name_line_and_column_without_json_imported(bad, message):
    # the hot verbs never import json, and _json's scanner needs json.decoder
    # for its error: without it the error was a SystemError with no message
    code = ("import sys\nfrom runpy_oci import fastjson\nassert 'json' not in sys.modules\n"
            "try:\n    fastjson.loads(sys.argv[1])\nexcept ValueError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code, bad], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == message


@pytest.mark.parametrize("deep", ["[" * 100_000 + "]" * 100_000, '{"a":' * 100_000 + "1" + "}" * 100_000])
def test_deep_nesting_is_a_value_error(deep):
    with pytest.raises(ValueError, match="nested too deeply"):
        fastjson.loads(deep)


def test_unknown_types_are_refused():
    with pytest.raises(TypeError):
        fastjson.dumps({"a": object()})
