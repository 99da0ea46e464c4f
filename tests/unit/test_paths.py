import pytest

from zerotrust import InvalidRequest, normalize_path, split_target

CANONICAL = ["/", "/api", "/api/", "/api/v1/items", "/.well-known/openid-configuration", "/a%20b", "/x~y"]


@pytest.mark.parametrize("path", CANONICAL)
@pytest.mark.parametrize("mode", ["strict", "normalize"])
def test_canonical_paths_pass_unchanged(path, mode):
    assert normalize_path(path, mode) == path


# (raw, what "normalize" mode judges it as); strict mode must reject every one of them.
NON_CANONICAL = [
    ("/api/../admin", "/admin"),
    ("//admin", "/admin"),
    ("/./admin", "/admin"),
    ("/api/%2e%2e/admin", "/admin"),
    ("/api/%2E%2E/admin", "/admin"),
    ("/api/.%2e/admin", "/admin"),
    ("/%61dmin", "/admin"),
    ("/admin/.", "/admin/"),
    ("/api//v1///x", "/api/v1/x"),
]


@pytest.mark.parametrize("raw,canonical", NON_CANONICAL)
def test_strict_rejects_non_canonical(raw, canonical):
    with pytest.raises(InvalidRequest) as exc:
        normalize_path(raw, "strict")
    assert exc.value.status == 400
    assert raw not in (exc.value.description or "")  # never echo attacker bytes


@pytest.mark.parametrize("raw,canonical", NON_CANONICAL)
def test_normalize_mode_judges_the_canonical_path(raw, canonical):
    assert normalize_path(raw, "normalize") == canonical


ALWAYS_REJECTED = [
    "/api/..%2fadmin", "/api/%2Fadmin", "/api%5c..%5cadmin", "/api\\..\\admin", "/a%00b", "/a\x00b", "/a b",
    "/a\tb", "/a%zz", "/a%2", "/..", "/a/../..", "relative", "", "/a#frag", "/" + "a" * 9000,
    "/public/..;/admin", "/public/.;/admin", "/public/..;x=1/admin", "/public/%2e%2e;/admin", "/public/.%2e;/admin",
    # decoded into ".." by servers that decode twice, accept overlong UTF-8 or normalise Unicode (NFKC)
    "/public/%252e%252e/admin", "/public/..%252f..%252fadmin", "/public/%c0%ae%c0%ae/admin",
    "/public/%ef%bc%8e%ef%bc%8e/admin", "/public/%ef%bc%8f..%ef%bc%8fadmin", "/a%ff", "/a%e2%82",
]


@pytest.mark.parametrize("raw", ALWAYS_REJECTED)
@pytest.mark.parametrize("mode", ["strict", "normalize"])
def test_ambiguous_paths_rejected_in_both_modes(raw, mode):
    with pytest.raises(InvalidRequest):
        normalize_path(raw, mode)


def test_reserved_escapes_are_kept_not_decoded():
    # %3F is '?', decoding it would change the meaning of the target
    assert normalize_path("/a%3Fb", "normalize") == "/a%3Fb"


def test_split_target_keeps_query_uninterpreted():
    assert split_target("/p?access_token=x&a=1") == ("/p", "access_token=x&a=1")
    assert split_target("/p") == ("/p", "")


@pytest.mark.parametrize("mode", ["strict", "normalize"])
@pytest.mark.parametrize("raw", ["/items;jsessionid=1", "/admin;x", "/items;v=2/x"])
def test_path_parameters_refused_in_both_modes(raw, mode):
    with pytest.raises(InvalidRequest):
        normalize_path(raw, mode)


@pytest.mark.parametrize("path", ["/caf%C3%A9", "/%E2%82%AC/price", "/100%25", "/a%25zz", "/%F0%9F%98%80"])
def test_legitimate_escapes_pass(path):
    assert normalize_path(path, "strict") == path
