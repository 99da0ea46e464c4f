"""Claim rules per issuer: profiles, required claims, time windows with leeway, audience, Principal mapping."""

from __future__ import annotations

import pytest

from zerotrust.credentials.jwt_claims import IssuerPolicy
from zerotrust.credentials.jwt_principal import _by_constructor, make_principal, principal_from_claims
from zerotrust.errors import InvalidToken

from .jwt_forge import AUDIENCE, ISSUER_A, NOW, base_claims


def policy(**kw: object) -> IssuerPolicy:
    return IssuerPolicy(ISSUER_A, [AUDIENCE], ["RS256"], **kw)  # type: ignore[arg-type]


def reason(p: IssuerPolicy, claims: dict, now: float = NOW) -> str:
    with pytest.raises(InvalidToken) as info:
        p.validate(claims, now)
    return info.value.reason


def test_principal_mapping() -> None:
    claims = base_claims(scope="a  b c", acr="urn:mace:incommon:iap:silver", amr=["pwd", "hwk"], auth_time=NOW - 5,
                         roles=["admin", "ops"], tid="t-1")
    principal, not_before, not_after = policy().validate(claims, NOW)
    assert principal.subject == "user-1" and principal.issuer == ISSUER_A and principal.kind == "jwt"
    assert principal.scopes == {"a", "b", "c"}
    assert principal.acr == "urn:mace:incommon:iap:silver"
    assert principal.amr == ("pwd", "hwk")
    assert principal.auth_time == NOW - 5
    assert principal.expires_at == NOW + 300
    assert principal.client_id == "web"
    assert principal.roles == {"admin", "ops"}
    assert principal.credential_id == "jti-1"
    assert principal.tenant == "t-1"
    assert principal.claims is claims
    assert (not_before, not_after) == (float("-inf"), NOW + 300)


def test_scp_array_and_tenant_precedence() -> None:
    claims = base_claims(scp=["x", "y"], tenant="named", tid="ignored")
    del claims["scope"]
    p, _, _ = policy().validate(claims, NOW)
    assert p.scopes == {"x", "y"} and p.tenant == "named"
    claims = base_claims(tenant=5, tid="t")
    assert policy().validate(claims, NOW)[0].tenant == "t"  # a non-string tenant is ignored, not trusted
    claims = base_claims(tenant={"id": 1})
    assert policy().validate(claims, NOW)[0].tenant is None


def test_scope_splits_on_space_only() -> None:
    p, _, _ = policy().validate(base_claims(scope="read\twrite admin"), NOW)
    assert p.scopes == {"read\twrite", "admin"}


def test_fast_principal_equals_constructor() -> None:
    claims = base_claims(amr=["pwd"], roles=["r"], auth_time=NOW, acr="1", tid="t")
    fast = principal_from_claims(ISSUER_A, claims)
    args = [getattr(fast, f) for f in ("subject", "issuer", "kind", "scopes", "claims", "acr", "amr", "auth_time",
                                       "expires_at", "client_id", "roles", "credential_id", "tenant")]
    assert fast == _by_constructor(*args)
    assert make_principal is not _by_constructor  # the slot path is active for today's Principal
    with pytest.raises(AttributeError):
        fast.subject = "x"  # type: ignore[misc]


@pytest.mark.parametrize("exp_offset,ok", [(-31, False), (-30, False), (-29, True), (300, True)])
def test_exp_leeway_edges(exp_offset: int, ok: bool) -> None:
    claims = base_claims(exp=NOW + exp_offset, iat=NOW - 100)
    if ok:
        _, _, not_after = policy(leeway=30).validate(claims, NOW)
        assert not_after == NOW + exp_offset  # the cache never extends past exp, leeway or not
    else:
        assert reason(policy(leeway=30), claims) == "deny.jwt.expired"


def test_zero_leeway_is_exact() -> None:
    p = policy(leeway=0)
    assert reason(p, base_claims(exp=NOW)) == "deny.jwt.expired"
    p.validate(base_claims(exp=NOW + 1), NOW)
    assert reason(p, base_claims(nbf=NOW + 1)) == "deny.jwt.not_yet_valid"
    assert reason(p, base_claims(iat=NOW + 1)) == "deny.jwt.issued_in_future"
    p.validate(base_claims(nbf=NOW, iat=NOW), NOW)


def test_nbf_window_is_returned_for_the_cache() -> None:
    _, not_before, _ = policy(leeway=10).validate(base_claims(nbf=NOW + 5), NOW)
    assert not_before == NOW - 5


def test_max_token_age() -> None:
    p = policy(leeway=30, max_token_age=600)
    assert reason(p, base_claims(iat=NOW - 630, exp=NOW + 300)) == "deny.jwt.too_old"
    _, _, not_after = p.validate(base_claims(iat=NOW - 629, exp=NOW + 300), NOW)
    assert not_after == NOW + 1  # bounded by age, not only by exp
    compat = policy(profile="compat", max_token_age=600)
    claims = base_claims()
    del claims["iat"]
    assert reason(compat, claims) == "deny.jwt.missing_claim"  # an age limit needs iat


def test_configured_required_claims() -> None:
    p = policy(required_claims=["acr", "tenant"])
    assert reason(p, base_claims(acr="1")) == "deny.jwt.missing_claim"
    assert reason(p, base_claims(acr="1", tenant=None)) == "deny.jwt.missing_claim"
    p.validate(base_claims(acr="1", tenant="t"), NOW)


@pytest.mark.parametrize("profile,claim", [(p, c) for p, cs in
                                           (("rfc9068", ("exp", "aud", "sub", "client_id", "iat", "jti")),
                                            ("compat", ("exp", "aud", "sub"))) for c in cs])
def test_profile_required_claims(profile: str, claim: str) -> None:
    claims = base_claims()
    del claims[claim]
    assert reason(policy(profile=profile), claims) == "deny.jwt.missing_claim"


def test_compat_profile_does_not_require_rfc9068_claims() -> None:
    claims = {"iss": ISSUER_A, "sub": "s", "aud": AUDIENCE, "exp": NOW + 60}
    assert policy(profile="compat").validate(claims, NOW)[0].client_id is None


def test_typ_per_profile() -> None:
    strict, compat = policy(), policy(profile="compat")
    for typ in ("at+jwt", "application/at+jwt", "At+JWT"):
        strict.check_header({"alg": "RS256", "typ": typ})
        compat.check_header({"alg": "RS256", "typ": typ})
    for header in ({"alg": "RS256"}, {"alg": "RS256", "typ": "JWT"}):
        with pytest.raises(InvalidToken):
            strict.check_header(header)
        compat.check_header(header)
    with pytest.raises(InvalidToken):
        compat.check_header({"alg": "RS256", "typ": "secevent+jwt"})


def test_hmac_and_none_can_never_be_allowed() -> None:
    p = IssuerPolicy(ISSUER_A, [AUDIENCE], ["RS256", "HS256", "none", "HS512"])
    assert p.algorithms == {"RS256"}


def test_audience_forms() -> None:
    p = IssuerPolicy(ISSUER_A, [AUDIENCE, "urn:b"], ["RS256"])
    p.validate(base_claims(aud="urn:b"), NOW)
    p.validate(base_claims(aud=["x", "urn:b"]), NOW)
    assert reason(p, base_claims(aud="urn:c")) == "deny.jwt.audience"
    assert reason(p, base_claims(aud=AUDIENCE + "/")) == "deny.jwt.audience"
    assert reason(p, base_claims(aud={"a": AUDIENCE})) == "deny.jwt.claim_type"
