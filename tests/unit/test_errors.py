from zerotrust.errors import (
    DependencyError,
    InsufficientScope,
    InsufficientUserAuthentication,
    InvalidRequest,
    InvalidToken,
    MissingCredential,
    bearer_challenge,
)


def test_missing_credential_is_bare_bearer():
    # RFC 6750 section 3.1: no error code when the request had no authentication information
    err = MissingCredential()
    assert err.status == 401
    assert err.challenge() == "Bearer"
    assert err.challenge("api") == 'Bearer realm="api"'


def test_invalid_token_challenge():
    err = InvalidToken("The token is expired")
    assert err.status == 401
    assert err.challenge("api") == 'Bearer realm="api", error="invalid_token", error_description="The token is expired"'


def test_invalid_request_is_400():
    assert InvalidRequest().status == 400 and InvalidRequest().error_code == "invalid_request"


def test_insufficient_scope_lists_scopes():
    err = InsufficientScope(["api:read", "api:admin"])
    assert err.status == 403
    assert 'error="insufficient_scope"' in err.challenge()
    assert 'scope="api:read api:admin"' in err.challenge()


def test_rfc9470_step_up_challenge():
    # RFC 9470 section 3 example shape
    err = InsufficientUserAuthentication("A different authentication level is required",
                                         acr_values="myACR", max_age=5)
    assert err.status == 401
    assert err.challenge() == ('Bearer error="insufficient_user_authentication", '
                               'error_description="A different authentication level is required", '
                               'acr_values="myACR", max_age="5"')


def test_dependency_error_has_no_challenge():
    assert DependencyError().status == 503 and DependencyError().challenge() is None


def test_challenge_quoting_cannot_be_broken():
    c = bearer_challenge("r", error_description='a"b\\c\r\nX-Injected: 1')
    assert "\r" not in c and "\n" not in c
    assert c == 'Bearer realm="r", error_description="a\\"b\\\\cX-Injected: 1"'


def test_detail_not_in_description():
    err = InvalidToken(detail="kid abc not found")
    assert err.description == "The access token is invalid"
    assert "abc" not in err.challenge()
