from pathlib import Path

import pytest

from zerotrust.config import load_config, parse_config
from zerotrust.errors import ConfigError
from zerotrust.factory import build_policy
from zerotrust.policy.builtin import BuiltinPolicyEngine
from zerotrust.policy.cache import DecisionCache
from zerotrust.policy.opa import OPAPolicyEngine
from zerotrust.policy.shadow import ShadowPolicyEngine

ROOT = Path(__file__).resolve().parents[2]
ENV = {"ZT_OPA_URL": "http://127.0.0.1:8281", "ZT_ISSUER": "https://idp.example.com",
       "ZT_AUDIENCE": "https://api.example.com"}
BASE = """
version: 1
api_keys: {pepper: "0123456789abcdef0123456789abcdef", header: X-Key}
policy:
"""


def config(policy_yaml: str):
    return parse_config(BASE + "\n".join("  " + line for line in policy_yaml.strip().splitlines()), env={})


async def test_builtin_is_not_cached():
    engine = build_policy(config("rules: [{id: all, paths: ['/**'], anonymous: true}]"))
    assert isinstance(engine, BuiltinPolicyEngine)


async def test_opa_example_is_cached_opa():
    engine = build_policy(load_config(ROOT / "examples" / "opa.yaml", env=ENV))
    assert isinstance(engine, DecisionCache) and isinstance(engine.inner, OPAPolicyEngine)
    assert engine.inner.url == "http://127.0.0.1:8281" and engine.inner.decision_path == "zerotrust/authz/decision"
    assert engine.ttl == 30
    await engine.aclose()


async def test_rego_example_builds_from_the_repository_root(monkeypatch):
    pytest.importorskip("regopy")
    monkeypatch.chdir(ROOT)
    engine = build_policy(load_config(ROOT / "examples" / "rego.yaml", env=ENV))
    assert isinstance(engine, DecisionCache) and engine.inner.name == "rego"
    await engine.aclose()


async def test_cache_can_be_disabled_and_shadow_wraps_outermost():
    engine = build_policy(config("""
engine: opa
cache: {enabled: false}
rules: [{id: all, paths: ['/**'], anonymous: true}]
shadow:
  - {id: strict, engine: builtin, rules: [{id: none, paths: ['/**'], deny: true}], paths: ['/admin/**']}
  - {id: remote, engine: opa, opa: {url: 'http://127.0.0.1:9999', decision_path: 'zerotrust/examples/rbac/decision'}}
"""))
    assert isinstance(engine, ShadowPolicyEngine) and isinstance(engine.inner, OPAPolicyEngine)
    strict, remote = engine.candidates
    assert strict.selects("/admin") and not strict.selects("/x")
    assert remote.engine.url == "http://127.0.0.1:9999" and remote.selects("/x")
    await engine.aclose()


def test_credential_headers_cannot_reach_the_policy():
    with pytest.raises(ConfigError):
        build_policy(config("engine: opa\ninput_headers: [Authorization]"))
    with pytest.raises(ConfigError):  # the configured API-key header
        build_policy(config("engine: opa\ninput_headers: [x-key]"))


def test_bad_opa_url_is_a_config_error():
    with pytest.raises(ConfigError):
        build_policy(config("engine: opa\nopa: {url: 'unix:///tmp/opa.sock'}"))
