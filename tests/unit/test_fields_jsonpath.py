import copy

import pytest

from zerotrust.crypto.jsonpath import WILDCARD, PathError, assign, binding, parse

DOC = {
    "ssn": "123",
    "a.b": 1,
    "users": [{"ssn": "u0", "n": 0}, {"n": 1}, {"ssn": "u2"}, "not-an-object"],
    "nested": {"x": {"y": [10, 20]}},
    "map": {"k1": 1, "k2": {"deep": True}},
    "nul": None,
}


@pytest.mark.parametrize("text,segments", [
    ("$.ssn", ("ssn",)),
    ("$.users[*].ssn", ("users", WILDCARD, "ssn")),
    ("$.users[0].ssn", ("users", 0, "ssn")),
    ("$.users[12]", ("users", 12)),
    ("$.users[*]", ("users", WILDCARD)),
    ("$.map.*", ("map", WILDCARD)),
    ("$['a.b']", ("a.b",)),
    ('$["a.b"].c', ("a.b", "c")),
    ("$['it\\'s']", ("it's",)),
    ("$['back\\\\slash']", ("back\\slash",)),
    ("$.snake_case-dash", ("snake_case-dash",)),
    ("$['']", ("",)),
])
def test_parse_valid(text, segments):
    assert parse(text).segments == segments


@pytest.mark.parametrize("text,message", [
    ("ssn", "must start with '$'"),
    ("", "must start with '$'"),
    ("$", "selects the whole document"),
    ("$.", "expected a member name after '.' at offset 1"),
    ("$..ssn", "expected a member name after '.' at offset 1"),  # recursive descent is not supported
    ("$.1abc", "expected a member name after '.' at offset 1"),
    ("$.a b", "unexpected ' ' at offset 3"),
    ("$.a[-1]", "at offset 4"),  # negative index
    ("$.a[01]", "at offset 4"),  # leading zero
    ("$.a[0:2]", "at offset 4"),  # slices
    ("$.a[?(@.x)]", "at offset 4"),  # filters
    ("$.a[*", "at offset 4"),
    ("$.a[", "at offset 4"),
    ("$['a'", "expected ']' at offset 5"),
    ("$['a", "unterminated quoted name starting at offset 2"),
    ("$['a\\n']", "bad escape at offset 4"),
    ("$['a\x01']", "control character at offset 4"),
    ("$.a[1234567890]", "at offset 4"),  # index bounded
    ("$" + ".a" * 600, "longer than 1024"),
])
def test_parse_rejects_with_precise_errors(text, message):
    with pytest.raises(PathError) as exc:
        parse(text)
    assert message in str(exc.value)


def test_parse_rejects_non_string():
    with pytest.raises(PathError):
        parse(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("text,found", [
    ("$.ssn", [("ssn",)]),
    ("$.users[*].ssn", [("users", 0, "ssn"), ("users", 2, "ssn")]),  # element 1 has no ssn, element 3 no object
    ("$.users[2].ssn", [("users", 2, "ssn")]),
    ("$.users[1].ssn", []),
    ("$.users[99].ssn", []),  # out of range: skipped
    ("$.users[*]", [("users", i) for i in range(4)]),
    ("$.map[*]", [("map", "k1"), ("map", "k2")]),  # wildcard on objects: every member
    ("$.nested.x.y[1]", [("nested", "x", "y", 1)]),
    ("$['a.b']", [("a.b",)]),
    ("$.missing.deeper", []),
    ("$.ssn.deeper", []),  # a string has no members
    ("$.ssn[0]", []),  # nor elements
    ("$.users.ssn", []),  # name on an array: no match (no implicit flattening)
    ("$.nul", [("nul",)]),  # null is a value and is selected
])
def test_find(text, found):
    assert list(parse(text).find(DOC)) == found


def test_binding_erases_indices_and_quotes_names():
    assert binding(("users", 3, "ssn")) == '$["users"][*]["ssn"]'
    assert binding(("users", 0, "ssn")) == binding(("users", 7, "ssn"))
    # Names that would be ambiguous in dotted form stay distinct.
    assert binding(("a.b",)) != binding(("a", "b"))
    assert binding(('a"]["b',)) != binding(("a", "b"))
    assert binding(("map", "k1")) != binding(("map", "k2"))


def test_assign_copies_only_the_changed_branch():
    original = copy.deepcopy(DOC)
    out = assign(DOC, {("users", 0, "ssn"): "X", ("nested", "x", "y", 1): "Y"})
    assert DOC == original  # the input is never modified
    assert out["users"][0]["ssn"] == "X" and out["nested"]["x"]["y"] == [10, "Y"]
    assert out["map"] is DOC["map"]  # untouched branches are shared, not copied
    assert out["users"][1] is DOC["users"][1]
    assert assign(DOC, {}) is DOC
