import json

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


def test_unknown_types_are_refused():
    with pytest.raises(TypeError):
        fastjson.dumps({"a": object()})
