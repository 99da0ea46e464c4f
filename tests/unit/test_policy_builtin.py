import pytest

from zerotrust import Principal, load_config
from zerotrust.policy import BuiltinPolicyEngine, compile_glob
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("glob,path,matches", [
    ("/admin/**", "/admin", True),
    ("/admin/**", "/admin/", True),
    ("/admin/**", "/admin/x/y", True),
    ("/admin/**", "/administrator", False),
    ("/admin/**", "/x/admin", False),
    ("/api/*/items", "/api/v1/items", True),
    ("/api/*/items", "/api/v1/v2/items", False),
    ("/**", "/", True),
    ("/exact", "/exact", True),
    ("/exact", "/exact/", False),
    ("/a.b", "/axb", False),  # '.' is literal
    ("/files/**/raw", "/files/a/b/raw", True),
])
def test_globs(glob, path, matches):
    assert bool(compile_glob(glob).match(path)) is matches


def principal(*scopes, subject="alice", roles=()):
    return Principal(subject=subject, issuer="https://i", kind="jwt", scopes=frozenset(scopes), roles=frozenset(roles))


@pytest.fixture(scope="module")
def engine():
    cfg = load_config(ROOT / "examples" / "quickstart.yaml", env={})
    return BuiltinPolicyEngine.from_config(cfg.policy.rules)


# The grid the quickstart promises: GET/HEAD need api:read, others api:write, /admin also api:admin.
GRID = [
    ("GET", "/x", ("api:read",), True),
    ("HEAD", "/x", ("api:read",), True),
    ("GET", "/x", ("api:write",), False),
    ("POST", "/x", ("api:write",), True),
    ("DELETE", "/x", ("api:read",), False),
    ("GET", "/admin", ("api:read",), False),
    ("GET", "/admin", ("api:read", "api:admin"), True),
    ("GET", "/admin/users", ("api:read", "api:admin"), True),
    ("PUT", "/admin/users", ("api:read", "api:admin"), False),
    ("PUT", "/admin/users", ("api:write", "api:admin"), True),
    ("GET", "/administrator", ("api:read",), True),
]


@pytest.mark.parametrize("method,path,scopes,allow", GRID)
def test_quickstart_grid(engine, method, path, scopes, allow):
    assert engine.decide_sync(method, path, principal(*scopes)).allow is allow


def test_anonymous_denied_and_required_scopes_reported(engine):
    r = engine.decide_sync("GET", "/admin/x", None)
    assert not r.allow and r.reason == "admin-read:unauthenticated"
    assert r.required_scopes == ("api:read", "api:admin")


def test_default_deny_without_matching_rule():
    cfg = load_config(ROOT / "examples" / "quickstart.yaml", env={})
    eng = BuiltinPolicyEngine.from_config([r for r in cfg.policy.rules if r.id == "read"])
    r = eng.decide_sync("POST", "/x", principal("api:read", "api:write"))
    assert not r.allow and r.reason == "no_rule"


def test_subject_role_anonymous_and_deny_rules():
    from zerotrust.config import RuleConfig

    eng = BuiltinPolicyEngine.from_config([
        RuleConfig(id="blocked", paths=["/blocked/**"], deny=True, anonymous=True),
        RuleConfig(id="public", paths=["/public/**"], anonymous=True),
        RuleConfig(id="ops", paths=["/ops/**"], roles=["ops"]),
        RuleConfig(id="bob", paths=["/bob/**"], subjects=["bob"]),
    ])
    assert eng.decide_sync("GET", "/public/a", None).allow
    assert not eng.decide_sync("GET", "/blocked/a", principal("x")).allow
    assert eng.decide_sync("GET", "/ops", principal(roles=["ops"])).allow
    assert not eng.decide_sync("GET", "/ops", principal(roles=["dev"])).allow
    assert eng.decide_sync("GET", "/bob/1", principal(subject="bob")).allow
    assert not eng.decide_sync("GET", "/bob/1", principal(subject="alice")).allow


def test_revision_changes_with_rules():
    from zerotrust.config import RuleConfig

    a = BuiltinPolicyEngine.from_config([RuleConfig(id="a", paths=["/**"], scopes=["x"])])
    b = BuiltinPolicyEngine.from_config([RuleConfig(id="a", paths=["/**"], scopes=["y"])])
    assert a.revision != b.revision and len(a.revision) == 12
