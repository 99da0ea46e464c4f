import pytest

from zerotrust import Headers, InvalidRequest, RequestContext
from zerotrust.credentials import AuthorizationExtractor, HeaderKeyExtractor


def req(*headers):
    return RequestContext(method="GET", path="/", headers=Headers(headers))


def test_bearer_token_extracted():
    (cred,) = AuthorizationExtractor().extract(req(("Authorization", "Bearer abc.def-ghi_j~k+l/m=")))
    assert (cred.kind, cred.value, cred.source) == ("bearer", "abc.def-ghi_j~k+l/m=", "authorization")


def test_scheme_is_case_insensitive():
    (cred,) = AuthorizationExtractor().extract(req(("authorization", "bEaReR tok")))
    assert cred.value == "tok"


def test_other_schemes_are_not_ours():
    assert AuthorizationExtractor().extract(req(("Authorization", "Basic dXNlcjpwYXNz"))) == []


@pytest.mark.parametrize("value", ["Bearer a,Bearer b", "Bearer a b", "Bearer", "Bearer ", 'Bearer "x"',
                                   "Bearer a\x00", "Bearer " + "a" * 20000,
                                   "Bearer a=b", "Bearer ==", "Bearer t\u00e9", "Bearer a;b",
                                   # the scheme must be followed by SP: an upstream might read a token in these
                                   "Bearer\ttok", "Bearer,tok", "Bearer:tok", "Bearer=tok", "Bearer\t tok",
                                   "bearer\x0btok", "Bearer\u00a0tok"])
def test_malformed_bearer_is_invalid_request(value):
    with pytest.raises(InvalidRequest) as exc:
        AuthorizationExtractor().extract(req(("Authorization", value)))
    assert exc.value.status == 400
    assert exc.value.challenge("r") .startswith('Bearer realm="r", error="invalid_request"')


def test_two_authorization_headers_rejected():
    with pytest.raises(InvalidRequest):
        AuthorizationExtractor().extract(req(("Authorization", "Bearer a"), ("Authorization", "Bearer b")))


def test_api_key_header():
    (cred,) = HeaderKeyExtractor("X-API-Key").extract(req(("x-api-key", "zt_abc")))
    assert (cred.kind, cred.value, cred.source) == ("api_key", "zt_abc", "x-api-key")
    with pytest.raises(InvalidRequest):
        HeaderKeyExtractor().extract(req(("x-api-key", "a"), ("X-Api-Key", "b")))
    with pytest.raises(InvalidRequest):
        HeaderKeyExtractor().extract(req(("x-api-key", "a b")))


def test_query_token_is_never_a_credential():
    r = RequestContext(method="GET", path="/", query="access_token=abc", headers=Headers())
    assert AuthorizationExtractor().extract(r) == [] and HeaderKeyExtractor().extract(r) == []


def test_headers_repr_never_shows_values():
    assert "secret" not in repr(Headers([("Authorization", "Bearer secret")]))


def test_credential_repr_hides_value():
    (cred,) = AuthorizationExtractor().extract(req(("Authorization", "Bearer topsecret")))
    assert "topsecret" not in repr(cred) and len(cred.fingerprint) == 12


@pytest.mark.parametrize("token", ["abc", "a.b.c", "AZaz09-._~+/", "abc==", "x="])
def test_b64token_accepts_rfc6750_alphabet(token):
    (cred,) = AuthorizationExtractor().extract(req(("Authorization", f"Bearer {token}")))
    assert cred.value == token


@pytest.mark.parametrize("value", ["Basic dXNlcjpwYXNz", "Digest username=x", "Token abc", "BearerX abc", "JWT a.b.c"])
def test_other_schemes_pass_as_not_ours(value):
    assert AuthorizationExtractor().extract(req(("Authorization", value))) == []
