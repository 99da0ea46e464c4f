import json
from pathlib import Path

import jsonschema
import pytest

from zerotrust.policy.output import MalformedDecision, parse_decision

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "policy-output.schema.json").read_text())

VALID = [
    True,
    False,
    {"allow": True},
    {"allow": False, "reason": "write:scope", "required_scopes": ["api:write"]},
    {"allow": True, "reason": "rbac:viewer", "obligations": {"headers": {"X-Auth-Role": "viewer"}}},
    {"allow": False, "reason": "abac:step_up",
     "obligations": {"step_up": {"acr_values": "urn:zerotrust:acr:mfa", "max_age": 600}}},
    {"allow": False, "obligations": {"status": 404, "headers": None, "step_up": None}},
    {"allow": False, "reason": "x", "required_scopes": None, "obligations": None, "future_field": [1]},
]

# Each of these would reach an HTTP header, a challenge or a log line if accepted.
INVALID = [
    None, "allow", 1, [], {"reason": "no allow"}, {"allow": "true"}, {"allow": 1},
    {"allow": False, "reason": "two words"}, {"allow": False, "reason": "line\nbreak"}, {"allow": False, "reason": ""},
    {"allow": False, "reason": "x" * 201}, {"allow": False, "reason": 7},
    {"allow": False, "required_scopes": "api:write"}, {"allow": False, "required_scopes": ["api write"]},
    {"allow": False, "required_scopes": ['a"b']}, {"allow": False, "required_scopes": ["a\\b"]},
    {"allow": False, "required_scopes": [1]}, {"allow": False, "required_scopes": ["s"] * 33},
    {"allow": True, "obligations": []},
    {"allow": True, "obligations": {"headers": {"X-A": "ok\r\nSet-Cookie: pwn=1"}}},
    {"allow": True, "obligations": {"headers": {"X-A\r\nX-B": "v"}}},
    {"allow": True, "obligations": {"headers": {"X A": "v"}}},
    {"allow": True, "obligations": {"headers": {"Content-Length": "0"}}},
    {"allow": True, "obligations": {"headers": {"transfer-encoding": "chunked"}}},
    {"allow": True, "obligations": {"headers": {"X-A": "nul\x00"}}},
    {"allow": True, "obligations": {"headers": {"X-A": 1}}},
    {"allow": True, "obligations": {"headers": [["X-A", "v"]]}},
    {"allow": False, "obligations": {"step_up": {}}},
    {"allow": False, "obligations": {"step_up": {"max_age": -1}}},
    {"allow": False, "obligations": {"step_up": {"max_age": "300"}}},
    {"allow": False, "obligations": {"step_up": {"max_age": True}}},
    {"allow": False, "obligations": {"step_up": {"acr_values": "a\r\nb"}}},
    {"allow": False, "obligations": {"step_up": "mfa"}},
    {"allow": False, "obligations": {"status": 200}},
    {"allow": False, "obligations": {"status": 302}},
    {"allow": False, "obligations": {"status": "403"}},
]


@pytest.mark.parametrize("doc", VALID)
def test_valid_decisions_parse_and_match_the_schema(doc):
    jsonschema.validate(doc, SCHEMA)
    result = parse_decision(doc, engine="t", revision="r", input_hash="h")
    assert result.allow is (doc if isinstance(doc, bool) else doc["allow"])
    assert (result.engine, result.revision, result.input_hash) == ("t", "r", "h")


@pytest.mark.parametrize("doc", INVALID)
def test_malformed_decisions_are_rejected(doc):
    with pytest.raises(MalformedDecision):
        parse_decision(doc, engine="t")


def test_obligations_map_onto_policy_result():
    r = parse_decision(VALID[5], engine="t")
    assert r.step_up == {"acr_values": "urn:zerotrust:acr:mfa", "max_age": 600}
    r = parse_decision(VALID[4], engine="t")
    assert r.headers == (("X-Auth-Role", "viewer"),)
    r = parse_decision(VALID[3], engine="t")
    assert r.required_scopes == ("api:write",) and r.reason == "write:scope"
    assert parse_decision(VALID[6], engine="t").status == 404
    assert parse_decision(True, engine="t").reason == "allow"


@pytest.mark.parametrize("doc", INVALID)
def test_the_schema_rejects_them_too(doc):
    if doc == {"allow": True, "obligations": {"headers": {"Content-Length": "0"}}}:
        pytest.skip("JSON Schema regexes have no case-insensitive flag: only the parser refuses this one")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SCHEMA)
