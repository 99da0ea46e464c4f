import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from zerotrust import ConfigError, load_config, parse_config
from zerotrust.config import Config, json_schema

ROOT = Path(__file__).resolve().parents[2]
PEPPER = "p" * 32

MINIMAL = f"""
api_keys:
  pepper: {PEPPER}
policy:
  rules:
    - {{id: all, paths: ["/**"], scopes: [api:read]}}
"""


def test_minimal_config():
    cfg = parse_config(MINIMAL, env={})
    assert cfg.server.path_mode == "strict" and cfg.policy.engine == "builtin"


def test_env_substitution_with_defaults():
    text = MINIMAL + "server:\n  listen: ${LISTEN:-127.0.0.1:9000}\n  realm: ${REALM}\n"
    cfg = parse_config(text, env={"REALM": "api"})
    assert cfg.server.listen == "127.0.0.1:9000" and cfg.server.realm == "api"
    cfg = parse_config(text, env={"REALM": "api", "LISTEN": "127.0.0.1:1"})
    assert cfg.server.listen == "127.0.0.1:1"


def test_missing_env_var_is_reported_with_path():
    with pytest.raises(ConfigError) as exc:
        parse_config(MINIMAL + "server:\n  realm: ${NOPE}\n", env={})
    assert any("server.realm" in p and "NOPE" in p for p in exc.value.problems)


def test_env_values_cannot_inject_yaml():
    cfg = parse_config(MINIMAL + "server:\n  realm: ${R}\n", env={"R": "x\nadmin_listen: 0.0.0.0:1"})
    assert cfg.server.admin_listen == "127.0.0.1:9192"


def test_every_problem_reported_with_path_and_line():
    bad = """server:
  path_mode: loose
api_keys:
  pepper: short
policy:
  rules:
    - {id: r, paths: [nope]}
  surprise: 1
"""
    with pytest.raises(ConfigError) as exc:
        parse_config(bad, env={}, source="f.yaml")
    text = "\n".join(exc.value.problems)
    assert "f.yaml: line 2: server.path_mode" in text
    assert "f.yaml: line 4: api_keys.pepper" in text
    assert "line 7: policy.rules[0].paths" in text
    assert "line 8: policy.surprise" in text
    assert len(exc.value.problems) == 4


@pytest.mark.parametrize("snippet,needle", [
    ("jwt:\n  issuers:\n    - {issuer: 'http://evil.example', audience: [a]}\n", "https"),
    ("jwt:\n  issuers:\n    - {issuer: 'https://i', audience: []}\n", "audience"),
    ("jwt:\n  issuers:\n    - {issuer: 'https://i', audience: [a], algorithms: [HS256]}\n", "algorithms"),
    ("jwt:\n  issuers:\n    - {issuer: 'https://i', audience: [a], algorithms: [none]}\n", "algorithms"),
    ("jwt:\n  issuers:\n    - {issuer: 'https://i', audience: [a], leeway: 3600}\n", "leeway"),
])
def test_dangerous_jwt_settings_refused(snippet, needle):
    with pytest.raises(ConfigError) as exc:
        parse_config(MINIMAL + snippet, env={})
    assert needle in "\n".join(exc.value.problems)


def test_no_credential_and_no_rules_refused():
    with pytest.raises(ConfigError, match="credential"):
        parse_config("policy:\n  rules: [{id: a, paths: ['/**']}]\n", env={})
    with pytest.raises(ConfigError, match="rules"):
        parse_config(f"api_keys: {{pepper: {PEPPER}}}\n", env={})


def test_not_yaml_and_not_mapping():
    with pytest.raises(ConfigError, match="line 1"):
        parse_config("a: [", env={})
    with pytest.raises(ConfigError, match="mapping"):
        parse_config("- 1\n", env={})


@pytest.mark.parametrize("name", ["quickstart.yaml", "jwt.yaml"])
def test_examples_validate_and_match_schema(name):
    env = {"ZT_ISSUER": "https://idp.example.com", "ZT_AUDIENCE": "https://api.example.com"}
    cfg = load_config(ROOT / "examples" / name, env=env)
    assert [r.id for r in cfg.policy.rules] == ["admin-read", "admin-write", "read", "write"]
    schema = json.loads(json_schema())
    jsonschema.validate(cfg.model_dump(mode="json"), schema)


def test_schema_rejects_what_the_model_rejects():
    schema = json.loads(json_schema())
    doc = yaml.safe_load(MINIMAL)
    doc["unknown"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema)
    assert Config.model_json_schema()["additionalProperties"] is False


def test_cli_validate(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(MINIMAL)
    bad = tmp_path / "bad.yaml"
    bad.write_text(MINIMAL + "server: {path_mode: x, listen: 5}\n")
    ok = subprocess.run([sys.executable, "-m", "zerotrust", "config", "validate", str(good)], capture_output=True, text=True)
    assert ok.returncode == 0 and "OK" in ok.stdout
    ko = subprocess.run([sys.executable, "-m", "zerotrust", "config", "validate", str(bad)], capture_output=True, text=True)
    assert ko.returncode == 2
    assert "server.path_mode" in ko.stderr and "server.listen" in ko.stderr and "Traceback" not in ko.stderr
    missing = subprocess.run([sys.executable, "-m", "zerotrust", "config", "validate", str(tmp_path / "none.yaml")],
                             capture_output=True, text=True)
    assert missing.returncode == 2 and "cannot read" in missing.stderr


@pytest.mark.parametrize("url,ok", [
    ("https://idp.example.com", True),
    ("http://127.0.0.1:8080/realms/x", True),
    ("http://localhost/x", True),
    ("http://[::1]:9/x", True),
    ("http://127.0.0.1.evil.example/x", False),
    ("http://localhost.evil.example", False),
    ("http://evil.example/127.0.0.1", False),
    ("https://user:pw@idp.example.com", False),
    ("ftp://idp.example.com", False),
    ("https://", False),
])
def test_issuer_and_jwks_urls_must_be_https_or_loopback(url, ok):
    snippet = f"jwt:\n  issuers:\n    - {{issuer: '{url}', audience: [a], jwks_uri: '{url}'}}\n"
    if ok:
        parse_config(MINIMAL + snippet, env={})
    else:
        with pytest.raises(ConfigError, match="https"):
            parse_config(MINIMAL + snippet, env={})


def test_rule_ids_must_be_unique():
    text = f"api_keys: {{pepper: {PEPPER}}}\npolicy:\n  rules:\n    - {{id: a, paths: ['/x']}}\n    - {{id: a, paths: ['/**']}}\n"
    with pytest.raises(ConfigError, match="repeated: a"):
        parse_config(text, env={})


def test_secrets_never_in_reprs():
    text = MINIMAL + "vault: {addr: 'http://127.0.0.1:8200', token: s.vaulttokenvalue, auth: token}\n"
    cfg = parse_config(text, env={})
    for shown in (repr(cfg), str(cfg), repr(cfg.api_keys), repr(cfg.vault)):
        assert PEPPER not in shown and "s.vaulttokenvalue" not in shown
    assert cfg.api_keys.pepper == PEPPER and cfg.vault.token == "s.vaulttokenvalue"
